"""How to reach each unit and volunteer: their contact and webhook secret, kept apart from
the directory because they arrive by the private exchange (`unit.details`,
`volunteer.details`), in any order with the audited registry events.

One document per owner (`unit:<id>`, `volunteer:<id>`) with the registry's `version`: an
older update never overwrites a newer one. Erasure leaves a tombstone holding no personal
data, so a private update still on its way cannot bring the details back.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict

from services.notify.adapters.batches import find_by_ids
from shared.clock import utcnow
from shared.events.catalogue import Contact
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import Tx

CONTACTS = "contacts"

Outcome = Literal["first", "updated", "stale", "erased"]


class Reach(BaseModel):
    model_config = ConfigDict(frozen=True)

    owner: str
    version: int
    contact: Contact = Contact()
    webhook_secret: str | None = None


async def save(
    tx: Tx, owner: str, version: int, contact: Contact, webhook_secret: str | None
) -> Outcome:
    existing = await tx.db[CONTACTS].find_one({"_id": owner}, session=tx.session)
    if existing is not None and existing.get("erased"):
        return "erased"
    if existing is not None and existing["version"] >= version:
        return "stale"
    await tx.db[CONTACTS].replace_one(
        {"_id": owner},
        {
            "_id": owner,
            "version": version,
            "contact": contact.model_dump(mode="json"),
            "webhook_secret": webhook_secret,
        },
        upsert=True,
        session=tx.session,
    )
    return "first" if existing is None else "updated"


async def get(db: Database, owner: str, tx: Tx | None = None) -> Reach | None:
    document = await db[CONTACTS].find_one(
        {"_id": owner}, session=tx.session if tx is not None else None
    )
    if document is None or document.get("erased"):
        return None
    return _reach(owner, document)


def _reach(owner: str, document: Document) -> Reach:
    return Reach(
        owner=owner,
        version=document["version"],
        contact=Contact.model_validate(document["contact"]),
        webhook_secret=document.get("webhook_secret"),
    )


@dataclass(frozen=True)
class Known:
    """What the contacts say of some owners, from one read: how to reach each, who is erased."""

    reach: Mapping[str, Reach]
    erased: frozenset[str]


async def known(tx: Tx, owners: Iterable[str]) -> Known:
    wanted = sorted(set(owners))
    if not wanted:
        return Known({}, frozenset())
    cursor = find_by_ids(tx.db, CONTACTS, wanted, session=tx.session)
    reach: dict[str, Reach] = {}
    erased: set[str] = set()
    async for document in cursor:
        if document.get("erased"):
            erased.add(document["_id"])
        else:
            reach[document["_id"]] = _reach(document["_id"], document)
    return Known(reach, frozenset(erased))


async def is_erased(tx: Tx, owner: str) -> bool:
    document = await tx.db[CONTACTS].find_one({"_id": owner}, {"erased": 1}, session=tx.session)
    return bool(document and document.get("erased"))


async def erase(tx: Tx, owner: str) -> None:
    await tx.db[CONTACTS].replace_one(
        {"_id": owner},
        {"_id": owner, "erased": True, "erased_at": utcnow()},
        upsert=True,
        session=tx.session,
    )
