"""Units' copy of the risk zones: each grid's current level and each community's zone rule,
from dispatch's `zone.rated` and `zone.rule_set` (the highest version wins: events may come
out of order)."""

from typing import Any

from shared.events.catalogue import Exposure, ZoneLevel
from shared.store.mongo import Database
from shared.store.unit_of_work import Tx

ZONE_LEVELS = "zone_levels"
ZONE_RULES = "zone_rules"


def grid_key(community_id: str, grid_id: str) -> str:
    return f"{community_id}/{grid_id}"


async def _keep_newest(tx: Tx, collection: str, key: str, fields: dict[str, Any]) -> bool:
    """Store `fields` under `key` unless a version as high is already there."""
    found = await tx.db[collection].find_one({"_id": key}, session=tx.session)
    if found is not None and int(found["version"]) >= int(fields["version"]):
        return False
    await tx.db[collection].replace_one(
        {"_id": key}, {"_id": key, **fields}, upsert=True, session=tx.session
    )
    return True


async def save_level(
    tx: Tx, community_id: str, grid_id: str, level: ZoneLevel, version: int
) -> bool:
    return await _keep_newest(
        tx, ZONE_LEVELS, grid_key(community_id, grid_id), {"level": level, "version": version}
    )


async def save_rule(
    tx: Tx, community_id: str, exposure_by_level: dict[ZoneLevel, Exposure], version: int
) -> bool:
    fields = {"exposure_by_level": dict(exposure_by_level), "version": version}
    return await _keep_newest(tx, ZONE_RULES, community_id, fields)


async def level_of(
    db: Database, community_id: str, grid_id: str | None, tx: Tx | None = None
) -> ZoneLevel | None:
    if grid_id is None:
        return None
    session = tx.session if tx else None
    key = grid_key(community_id, grid_id)
    found = await db[ZONE_LEVELS].find_one({"_id": key}, session=session)
    return found["level"] if found else None


async def rule_of(
    db: Database, community_id: str, tx: Tx | None = None
) -> dict[ZoneLevel, Exposure]:
    session = tx.session if tx else None
    found = await db[ZONE_RULES].find_one({"_id": community_id}, session=session)
    return dict(found["exposure_by_level"]) if found else {}
