"""Dispatch's MongoDB collections: communities, demands and the claim ledger.

The claim ledger holds one record per claim on a demand (`_id` = "<demand>:<claim>", so a
fact about a claim reads its record by key); the demand keeps only the totals.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.dispatch.domain.claims import ClaimRecord
from services.dispatch.domain.model import Community, Demand
from shared.clock import as_utc
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

COMMUNITIES = "communities"
DEMANDS = "demands"
CLAIM_LEDGER = "claim_ledger"
# One namespace for community, street and district ids: `_id` is the id, `kind` what it
# names. A community with a street's id would read that street's escalations.
PLACES = "places"


class AlreadyExists(Exception):
    pass


def stored(moment: datetime) -> datetime:
    """The instant as MongoDB keeps it (UTC, milliseconds): answer and compare what is stored."""
    moment = as_utc(moment)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def ensure_indexes(db: Database) -> None:
    await db[DEMANDS].create_index([("community_id", 1), ("_id", -1)])
    await db[DEMANDS].create_index([("street", 1), ("_id", -1)])
    await db[DEMANDS].create_index([("district", 1), ("_id", -1)])
    await db[DEMANDS].create_index([("status", 1), ("_id", -1)])
    await _record_existing_places(db)


async def _record_existing_places(db: Database) -> None:
    """Communities registered before the place namespace existed: record their ids (the
    first to name an id keeps it; a clash already stored is logged, not undone)."""
    if await db[PLACES].estimated_document_count() > 0:
        return
    async for community in db[COMMUNITIES].find({}, {"street": 1, "district": 1}):
        for place, kind in (
            (community["_id"], "community"),
            (community["street"], "street"),
            (community["district"], "district"),
        ):
            await db[PLACES].update_one(
                {"_id": place}, {"$setOnInsert": {"kind": kind}}, upsert=True
            )


def _to_document(model: Community | Demand) -> dict[str, Any]:
    document = model.model_dump()
    document["_id"] = document.pop("id")
    if isinstance(model, Demand):
        document["ledger"].pop("claims")  # they live in CLAIM_LEDGER
    return document


def _record_key(demand_id: str, claim_id: str) -> str:
    return f"{demand_id}:{claim_id}"


async def get_claim_record(tx: Tx, demand_id: str, claim_id: str) -> ClaimRecord | None:
    document = await tx.db[CLAIM_LEDGER].find_one(
        {"_id": _record_key(demand_id, claim_id)}, session=tx.session
    )
    if document is None:
        return None
    return ClaimRecord.model_validate({k: v for k, v in document.items() if k != "_id"})


async def save_claim_records(tx: Tx, demand_id: str, records: Sequence[ClaimRecord]) -> None:
    for record in records:
        await tx.db[CLAIM_LEDGER].replace_one(
            {"_id": _record_key(demand_id, record.id)},
            {**record.model_dump(), "demand_id": demand_id},
            upsert=True,
            session=tx.session,
        )


def _from_document[M: (Community, Demand)](model: type[M], document: dict[str, Any]) -> M:
    document = dict(document)
    document["id"] = document.pop("_id")
    return model.model_validate(document)


async def insert_community(tx: Tx, community: Community) -> None:
    try:
        await tx.db[COMMUNITIES].insert_one(_to_document(community), session=tx.session)
    except DuplicateKeyError:
        raise AlreadyExists(community.id) from None


async def claim_place(tx: Tx, place_id: str, kind: str) -> str | None:
    """Record `place_id` as a `kind`; the kind it already names when that is another one."""
    existing = await tx.db[PLACES].find_one({"_id": place_id}, session=tx.session)
    if existing is not None:
        return None if existing["kind"] == kind else str(existing["kind"])
    try:
        await tx.db[PLACES].insert_one({"_id": place_id, "kind": kind}, session=tx.session)
    except DuplicateKeyError:
        raise RetryTransaction(f"place {place_id} was recorded concurrently") from None
    return None


async def get_community(db: Database, community_id: str, tx: Tx | None = None) -> Community | None:
    session = tx.session if tx else None
    document = await db[COMMUNITIES].find_one({"_id": community_id}, session=session)
    return _from_document(Community, document) if document else None


async def replace_community(tx: Tx, before: Community, after: Community) -> None:
    """Store a changed community, if still at the version it was read at."""
    replaced = await tx.db[COMMUNITIES].replace_one(
        {"_id": before.id, "version": {"$in": [before.version, None]}},
        _to_document(after),
        session=tx.session,
    )
    if replaced.matched_count != 1:
        raise RetryTransaction(f"community {before.id} moved past version {before.version}")


async def insert_demand(tx: Tx, demand: Demand) -> None:
    await tx.db[DEMANDS].insert_one(_to_document(demand), session=tx.session)


async def get_demand(db: Database, demand_id: str, tx: Tx | None = None) -> Demand | None:
    session = tx.session if tx else None
    document = await db[DEMANDS].find_one({"_id": demand_id}, session=session)
    return _from_document(Demand, document) if document else None


async def save_demand(tx: Tx, demand: Demand) -> Demand:
    """Store a changed demand as `version + 1`, only if nobody changed it since it was read.

    The claim records at hand go to the claim ledger (for a demand stored before the ledger
    moved out, that is all of them, once).
    """
    await save_claim_records(tx, demand.id, demand.ledger.claims)
    saved = demand.model_copy(
        update={"version": demand.version + 1, "ledger": demand.ledger.totals()}
    )
    replaced = await tx.db[DEMANDS].replace_one(
        {"_id": demand.id, "version": demand.version}, _to_document(saved), session=tx.session
    )
    if replaced.matched_count != 1:
        raise RetryTransaction(f"demand {demand.id} moved past version {demand.version}")
    return saved


@dataclass(frozen=True)
class DemandQuery:
    """A page of demands, newest first; `scopes` are alternatives (any one admits a demand)."""

    scopes: Sequence[Document] = ()
    community_id: str | None = None
    statuses: Sequence[str] = ()
    levels: Sequence[str] = ()
    kind: str | None = None
    priority: str | None = None
    before_id: str | None = None
    limit: int = 50

    def filter(self) -> Document:
        clauses: list[Document] = []
        if self.scopes:
            clauses.append({"$or": list(self.scopes)})
        if self.community_id is not None:
            clauses.append({"community_id": self.community_id})
        if self.statuses:
            clauses.append({"status": {"$in": list(self.statuses)}})
        if self.levels:
            clauses.append({"level": {"$in": list(self.levels)}})
        if self.kind is not None:
            clauses.append({"kind": self.kind})
        if self.priority is not None:
            clauses.append({"priority": self.priority})
        if self.before_id is not None:
            clauses.append({"_id": {"$lt": self.before_id}})
        return {"$and": clauses} if clauses else {}


async def list_demands(db: Database, query: DemandQuery) -> list[Demand]:
    """Ids are time-ordered, so `_id` descending is newest first and a stable cursor."""
    documents = await db[DEMANDS].find(query.filter()).sort("_id", -1).to_list(query.limit)
    return [_from_document(Demand, document) for document in documents]
