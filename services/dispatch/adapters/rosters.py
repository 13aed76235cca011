"""Dispatch's relay rosters and its projection of the units that may serve in them.

`known_units` follows units' registry (`unit.registered`, then `unit.updated` by version: a
late, older correction never wins), so a roster is drawn up from what units last said.
"""

from collections.abc import Sequence
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.dispatch.domain.roster_model import KnownUnit, Roster
from shared.store.mongo import Database
from shared.store.unit_of_work import RetryTransaction, Tx

ROSTERS = "rosters"
KNOWN_UNITS = "known_units"


async def ensure_indexes(db: Database) -> None:
    await db[ROSTERS].create_index([("community_id", 1), ("_id", -1)])
    await db[KNOWN_UNITS].create_index([("communities", 1)])


def _document(model: KnownUnit | Roster) -> dict[str, Any]:
    document = model.model_dump(mode="json") if isinstance(model, Roster) else model.model_dump()
    document["_id"] = document.pop("id")
    return document


def _model[M: (KnownUnit, Roster)](model: type[M], document: dict[str, Any]) -> M:
    document = dict(document)
    document["id"] = document.pop("_id")
    return model.model_validate(document)


async def record_unit(tx: Tx, unit: KnownUnit) -> bool:
    """Keep the unit as said, unless a newer version is already kept (then False)."""
    existing = await tx.db[KNOWN_UNITS].find_one({"_id": unit.id}, session=tx.session)
    if existing is not None and existing.get("version", 1) >= unit.version:
        return False
    await tx.db[KNOWN_UNITS].replace_one(
        {"_id": unit.id}, _document(unit), upsert=True, session=tx.session
    )
    return True


async def set_kind(tx: Tx, unit_id: str, kind: str) -> None:
    await tx.db[KNOWN_UNITS].update_one(
        {"_id": unit_id}, {"$set": {"kind": kind}}, session=tx.session
    )


async def units_by_id(
    db: Database, unit_ids: Sequence[str], tx: Tx | None = None
) -> dict[str, KnownUnit]:
    cursor = db[KNOWN_UNITS].find(
        {"_id": {"$in": list(unit_ids)}}, session=tx.session if tx else None
    )
    return {document["_id"]: _model(KnownUnit, document) async for document in cursor}


async def units_serving(db: Database, community_id: str) -> list[KnownUnit]:
    documents = (
        await db[KNOWN_UNITS].find({"communities": community_id}).sort("_id", 1).to_list(1000)
    )
    return [_model(KnownUnit, document) for document in documents]


async def insert_roster(tx: Tx, roster: Roster) -> None:
    try:
        await tx.db[ROSTERS].insert_one(_document(roster), session=tx.session)
    except DuplicateKeyError:
        raise RetryTransaction(f"roster {roster.id} was stored concurrently") from None


async def get_roster(db: Database, roster_id: str, tx: Tx | None = None) -> Roster | None:
    document = await db[ROSTERS].find_one({"_id": roster_id}, session=tx.session if tx else None)
    return _model(Roster, document) if document else None


async def save_roster(tx: Tx, before: Roster, after: Roster) -> Roster:
    """Store a changed roster as `version + 1`, only if nobody changed it since it was read."""
    saved = after.model_copy(update={"version": before.version + 1})
    replaced = await tx.db[ROSTERS].replace_one(
        {"_id": before.id, "version": before.version}, _document(saved), session=tx.session
    )
    if replaced.matched_count != 1:
        raise RetryTransaction(f"roster {before.id} moved past version {before.version}")
    return saved


async def rosters_of(db: Database, community_id: str, limit: int = 50) -> list[Roster]:
    documents = (
        await db[ROSTERS].find({"community_id": community_id}).sort("_id", -1).to_list(limit)
    )
    return [_model(Roster, document) for document in documents]
