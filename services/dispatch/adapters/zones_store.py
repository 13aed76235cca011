"""Dispatch's collections for the map: the grid in force per community, every zone rating
(the history), each grid's current level, and the communities' zone rules."""

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.dispatch.domain.zones import GridSet, Rating, ZoneRule, grid_key
from shared.events.catalogue import ZoneLevel
from shared.store.mongo import Database
from shared.store.unit_of_work import RetryTransaction, Tx

GRIDS = "grids"
ZONE_RATINGS = "zone_ratings"
ZONE_LEVELS = "zone_levels"
ZONE_RULES = "zone_rules"
# The history a map page shows at most (newest first).
HISTORY_LIMIT = 500


async def ensure_indexes(db: Database) -> None:
    await db[ZONE_RATINGS].create_index([("community_id", 1), ("rated_at", 1)])


def _plain(document: dict[str, Any] | None) -> dict[str, Any] | None:
    if document is None:
        return None
    return {key: value for key, value in document.items() if key != "_id"}


async def get_grid_set(db: Database, community_id: str, tx: Tx | None = None) -> GridSet | None:
    session = tx.session if tx else None
    found = _plain(await db[GRIDS].find_one({"_id": community_id}, session=session))
    return GridSet.model_validate(found) if found else None


async def grid_ids(db: Database, community_id: str, tx: Tx | None = None) -> set[str] | None:
    """The community's grid ids (None: it has no grid uploaded), without the geometry."""
    session = tx.session if tx else None
    found = await db[GRIDS].find_one({"_id": community_id}, {"grid_ids": 1}, session=session)
    return set(found["grid_ids"]) if found else None


async def save_grid_set(tx: Tx, previous: GridSet | None, grid_set: GridSet) -> None:
    """Store the new upload, if nobody uploaded since `previous` was read."""
    document = {"_id": grid_set.community_id, **grid_set.model_dump(mode="python")}
    if previous is None:
        try:
            await tx.db[GRIDS].insert_one(document, session=tx.session)
        except DuplicateKeyError:
            raise RetryTransaction(f"a grid of {grid_set.community_id} came at once") from None
        return
    replaced = await tx.db[GRIDS].replace_one(
        {"_id": grid_set.community_id, "version": previous.version}, document, session=tx.session
    )
    if replaced.matched_count != 1:
        raise RetryTransaction(f"the grid of {grid_set.community_id} moved on")


async def current_version(tx: Tx, community_id: str, grid_id: str) -> int:
    found = await tx.db[ZONE_LEVELS].find_one(
        {"_id": grid_key(community_id, grid_id)}, session=tx.session
    )
    return int(found["version"]) if found else 0


async def save_rating(tx: Tx, rating: Rating) -> None:
    """Keep the rating in the history and as the grid's current level (conditional on the
    version read, so two ratings at once are ordered, not lost)."""
    await tx.db[ZONE_RATINGS].insert_one(
        {"_id": rating.id, **rating.model_dump(exclude={"id"})}, session=tx.session
    )
    key = grid_key(rating.community_id, rating.grid_id)
    level = {
        "community_id": rating.community_id,
        "grid_id": rating.grid_id,
        "level": rating.level,
        "version": rating.version,
    }
    if rating.version == 1:
        try:
            await tx.db[ZONE_LEVELS].insert_one({"_id": key, **level}, session=tx.session)
        except DuplicateKeyError:
            raise RetryTransaction(f"grid {key} was rated at once") from None
        return
    moved = await tx.db[ZONE_LEVELS].update_one(
        {"_id": key, "version": rating.version - 1}, {"$set": level}, session=tx.session
    )
    if moved.matched_count != 1:
        raise RetryTransaction(f"grid {key} was rated at once")


async def ratings(db: Database, community_id: str, until: datetime | None = None) -> list[Rating]:
    """The community's ratings in time order (up to `until`, when given)."""
    query: dict[str, Any] = {"community_id": community_id}
    if until is not None:
        query["rated_at"] = {"$lte": until}
    documents = await db[ZONE_RATINGS].find(query).sort("rated_at", 1).to_list(None)
    return [Rating.model_validate({**doc, "id": doc["_id"]}) for doc in documents]


async def history(db: Database, community_id: str, limit: int) -> list[Rating]:
    documents = (
        await db[ZONE_RATINGS]
        .find({"community_id": community_id})
        .sort("rated_at", -1)
        .to_list(min(limit, HISTORY_LIMIT))
    )
    return [Rating.model_validate({**doc, "id": doc["_id"]}) for doc in documents]


async def levels_of(db: Database, grids: Iterable[tuple[str, str]]) -> dict[str, ZoneLevel]:
    """The current level of each (community, grid) rated so far, by `grid_key`."""
    keys = sorted({grid_key(community, grid) for community, grid in grids})
    if not keys:
        return {}
    found = db[ZONE_LEVELS].find({"_id": {"$in": keys}}, {"level": 1})
    return {str(doc["_id"]): doc["level"] async for doc in found}


async def get_rule(db: Database, community_id: str, tx: Tx | None = None) -> ZoneRule | None:
    session = tx.session if tx else None
    found = _plain(await db[ZONE_RULES].find_one({"_id": community_id}, session=session))
    return ZoneRule.model_validate(found) if found else None


async def save_rule(tx: Tx, previous: ZoneRule | None, rule: ZoneRule) -> None:
    document = {"_id": rule.community_id, **rule.model_dump(mode="python")}
    if previous is None:
        try:
            await tx.db[ZONE_RULES].insert_one(document, session=tx.session)
        except DuplicateKeyError:
            raise RetryTransaction(f"two zone rules of {rule.community_id} at once") from None
        return
    replaced = await tx.db[ZONE_RULES].replace_one(
        {"_id": rule.community_id, "version": previous.version}, document, session=tx.session
    )
    if replaced.matched_count != 1:
        raise RetryTransaction(f"the zone rule of {rule.community_id} moved on")
