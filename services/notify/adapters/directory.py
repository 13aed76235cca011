"""Notify's own copy of communities, units, volunteers, demands and claims, from events.

Updates that carry counts or a status are applied only if they are not older than what is
stored (`as_of`), so a late redelivery of an old event cannot roll the copy back.
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument, UpdateOne

from services.notify.domain.model import Claim, Community, Demand, DemandStatus, Unit, Volunteer
from shared.clock import as_utc, utcnow
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

COMMUNITIES = "communities"
UNITS = "units"
VOLUNTEERS = "volunteers"
DEMANDS = "demands"
CLAIMS = "claims"
ALERTS = "alerts"
COMMUNITY_GUARDS = "community_guards"


async def ensure_indexes(db: Database) -> None:
    await db[UNITS].create_index("communities")
    await db[VOLUNTEERS].create_index("community_id")
    await db[CLAIMS].create_index("demand_id")
    await db[ALERTS].create_index("demand_id")
    await db[DEMANDS].create_index([("community_id", 1), ("published_at", 1)])


def _document(model: Community | Unit | Volunteer | Demand | Claim) -> Document:
    document = model.model_dump(mode="python")
    document["_id"] = document.pop("id")
    return document


def _model[M: (Community, Unit, Volunteer, Demand, Claim)](model: type[M], document: Document) -> M:
    values = {
        key: value
        for key, value in document.items()
        if key not in ("_id", "as_of", "touched_at", "version")
    }
    return model.model_validate({**values, "id": document["_id"]})


async def _replace(tx: Tx, collection: str, document: Document) -> None:
    await tx.db[collection].replace_one(
        {"_id": document["_id"]}, document, upsert=True, session=tx.session
    )


async def save_community(tx: Tx, community: Community) -> None:
    await _replace(tx, COMMUNITIES, _document(community))


async def save_unit(tx: Tx, unit: Unit, *, version: int = 1) -> None:
    await _replace(tx, UNITS, {**_document(unit), "version": version})


async def save_volunteer(tx: Tx, volunteer: Volunteer, *, version: int = 1) -> None:
    await _replace(tx, VOLUNTEERS, {**_document(volunteer), "version": version})


async def newer_registry_version(tx: Tx, kind: str, identifier: str, version: int) -> bool:
    """True unless the stored copy is already at this version or later (a late update)."""
    collection = UNITS if kind == "unit" else VOLUNTEERS
    document = await tx.db[collection].find_one(
        {"_id": identifier}, {"version": 1}, session=tx.session
    )
    return document is None or int(document.get("version", 1)) < version


async def forget_volunteer(tx: Tx, volunteer_id: str) -> None:
    await tx.db[VOLUNTEERS].delete_one({"_id": volunteer_id}, session=tx.session)
    await tx.db[ALERTS].delete_many({"volunteer_id": volunteer_id}, session=tx.session)


async def _all[M: (Community, Unit, Volunteer, Demand, Claim)](
    tx: Tx, collection: str, model: type[M], query: Document
) -> list[M]:
    cursor = tx.db[collection].find(query, session=tx.session).sort("_id", 1)
    return [_model(model, document) async for document in cursor]


async def units_serving(tx: Tx, community_id: str) -> list[Unit]:
    return await _all(tx, UNITS, Unit, {"communities": community_id})


async def volunteers_of(tx: Tx, community_id: str) -> list[Volunteer]:
    return await _all(tx, VOLUNTEERS, Volunteer, {"community_id": community_id})


async def touch_community(tx: Tx, community_id: str) -> None:
    """Write the community's guard document (see `on_unit_registered`)."""
    await tx.db[COMMUNITY_GUARDS].update_one(
        {"_id": community_id},
        {"$set": {"touched_at": utcnow()}},
        upsert=True,
        session=tx.session,
    )


# --- demands -------------------------------------------------------------------------------


async def save_demand(tx: Tx, demand: Demand, as_of: datetime) -> None:
    await _replace(tx, DEMANDS, {**_document(demand), "as_of": as_utc(as_of)})


def _published(document: Document | None) -> bool:
    # A document touched by a claim before the demand's publication arrived has no title.
    return document is not None and "title" in document


async def get_demand(tx: Tx, demand_id: str) -> Demand | None:
    return demand_in(await tx.db[DEMANDS].find_one({"_id": demand_id}, session=tx.session))


def demand_in(document: Document | None) -> Demand | None:
    """The demand a stored document holds, if its publication has arrived."""
    return _model(Demand, document) if document is not None and _published(document) else None


async def open_demands_since(tx: Tx, community_id: str, since: datetime) -> list[Demand]:
    """Demands of the community published after `since` that still seek people."""
    cursor = tx.db[DEMANDS].find(
        {
            "community_id": community_id,
            "published_at": {"$gt": as_utc(since)},
            "status": {"$nin": ["cancelled", "completed", "expired"]},
        },
        session=tx.session,
    )
    demands = [_model(Demand, document) async for document in cursor if _published(document)]
    return [demand for demand in demands if demand.unfilled]


async def touch_demand(tx: Tx, demand_id: str) -> Document:
    """Write to the demand's document, even before it is known.

    Events are consumed concurrently: a claim and its demand's publication may be handled
    side by side, each missing the other. Both writing this document makes their
    transactions conflict, so one is retried and sees what the other did. Returns the
    document as it now stands (a bare one when the publication has not arrived): the same
    command reads it.
    """
    document = await tx.db[DEMANDS].find_one_and_update(
        {"_id": demand_id},
        {"$set": {"touched_at": utcnow()}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    if document is None:
        raise RetryTransaction("demand document not returned")
    return document


async def update_demand(
    tx: Tx,
    demand_id: str,
    as_of: datetime,
    *,
    filled: int | None = None,
    slots: int | None = None,
    status: DemandStatus | None = None,
    current: Document | None = None,
) -> Demand | None:
    """Move the copy forward (never back); returns the demand as it now stands, if known.

    `current`: the document as this transaction last read or wrote it (saves reading it)."""
    document = current or await tx.db[DEMANDS].find_one({"_id": demand_id}, session=tx.session)
    if document is None or not _published(document):
        return None
    stored_as_of = document.get("as_of")
    closed = document.get("status") in ("cancelled", "completed", "expired")
    changes: dict[str, Any] = {}
    if stored_as_of is None or as_utc(stored_as_of) <= as_utc(as_of):
        if filled is not None:
            changes["filled"] = filled
        if slots is not None:
            changes["slots"] = slots
        if status is not None and not (closed and status in ("open", "filled")):
            changes["status"] = status
        changes["as_of"] = as_utc(as_of)
    elif status in ("cancelled", "completed", "expired"):
        changes["status"] = status  # an ending is final whatever arrives out of order
    if changes:
        await tx.db[DEMANDS].update_one({"_id": demand_id}, {"$set": changes}, session=tx.session)
        document = {**document, **changes}
    return _model(Demand, document)


# --- claims --------------------------------------------------------------------------------


async def save_claim(tx: Tx, claim: Claim, as_of: datetime) -> None:
    existing = await tx.db[CLAIMS].find_one({"_id": claim.id}, {"as_of": 1}, session=tx.session)
    if existing is not None and as_utc(existing["as_of"]) > as_utc(as_of):
        return
    await _replace(tx, CLAIMS, {**_document(claim), "as_of": as_utc(as_of)})


async def get_claim(tx: Tx, claim_id: str) -> Claim | None:
    document = await tx.db[CLAIMS].find_one({"_id": claim_id}, session=tx.session)
    return _model(Claim, document) if document else None


async def claims_of(tx: Tx, demand_id: str) -> list[Claim]:
    return await _all(tx, CLAIMS, Claim, {"demand_id": demand_id})


# --- alerts (how often each volunteer was called for a demand) -------------------------------


async def alert_counts(tx: Tx, demand_id: str) -> dict[str, int]:
    cursor = tx.db[ALERTS].find({"demand_id": demand_id}, session=tx.session)
    return {document["volunteer_id"]: document["count"] async for document in cursor}


async def count_alerts(tx: Tx, demand_id: str, volunteer_ids: Iterable[str]) -> None:
    """One more alert for each volunteer, in one command whatever their number."""
    updates = [
        UpdateOne(
            {"_id": f"{demand_id}:{volunteer_id}"},
            {
                "$inc": {"count": 1},
                "$setOnInsert": {"demand_id": demand_id, "volunteer_id": volunteer_id},
            },
            upsert=True,
        )
        for volunteer_id in dict.fromkeys(volunteer_ids)
    ]
    if updates:
        await tx.db[ALERTS].bulk_write(updates, ordered=False, session=tx.session)
