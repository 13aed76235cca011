"""Dispatch's commands and reads for the map: upload a grid, rate a zone, set the zone rule,
read the map as of a moment. Each command changes the state and emits its event in one
transaction (through the outbox)."""

from datetime import datetime

from services.dispatch.adapters import repository, zones_store
from services.dispatch.domain import geo, refusals
from services.dispatch.domain.model import Community
from services.dispatch.domain.zones import (
    GridSet,
    RateZone,
    Rating,
    SetZoneRule,
    ZoneRule,
    grid_key,
    map_as_of,
    may_rate,
    may_read_map,
    may_set_rule,
)
from shared.auth import Principal
from shared.clock import utcnow
from shared.events.catalogue import GridUploaded, ZoneLevel, ZoneRated, ZoneRuleSet
from shared.http.problems import not_found
from shared.ids import new_id
from shared.store.mongo import Database
from shared.store.unit_of_work import Tx


async def _community(db: Database, community_id: str, tx: Tx | None = None) -> Community:
    community = await repository.get_community(db, community_id, tx)
    if community is None:
        raise not_found("community", community_id)
    return community


async def upload_grid(
    tx: Tx, community_id: str, upload: geo.GridUpload, actor: Principal
) -> GridSet:
    """The admin's upload replaces the community's grid; ratings stay in the history."""
    await _community(tx.db, community_id, tx)
    previous = await zones_store.get_grid_set(tx.db, community_id, tx)
    stored = upload.stored()
    grid_set = GridSet(
        community_id=community_id,
        version=(previous.version if previous else 0) + 1,
        uploaded_at=repository.stored(utcnow()),
        uploaded_by=actor.sub,
        grid_ids=tuple(grid.properties.id for grid in upload.grids),
        buildings=len(upload.buildings),
        digest=geo.digest(stored),
        geojson=stored,
    )
    await zones_store.save_grid_set(tx, previous, grid_set)
    data = GridUploaded(
        community_id=community_id,
        version=grid_set.version,
        grid_ids=grid_set.grid_ids,
        buildings=grid_set.buildings,
        digest=grid_set.digest,
    )
    tx.emit(data, subject=community_id)
    return grid_set


async def rate_zone(
    tx: Tx, community_id: str, grid_id: str, command: RateZone, actor: Principal
) -> Rating:
    community = await _community(tx.db, community_id, tx)
    if not may_rate(actor, community):
        raise refusals.NotYours(
            f"only the secretary of community '{community_id}' or its street rates its grids"
        )
    grids = await zones_store.grid_ids(tx.db, community_id, tx)
    if grids is None or grid_id not in grids:
        raise not_found("grid", grid_key(community_id, grid_id))
    rating = Rating(
        id=new_id("zr"),
        community_id=community_id,
        grid_id=grid_id,
        level=command.level,
        reason=command.reason.strip(),
        rated_by=actor.sub,
        rated_at=repository.stored(utcnow()),
        version=await zones_store.current_version(tx, community_id, grid_id) + 1,
    )
    await zones_store.save_rating(tx, rating)
    data = ZoneRated(
        community_id=community_id,
        grid_id=grid_id,
        level=rating.level,
        reason=rating.reason,
        rated_by=rating.rated_by,
        rated_at=rating.rated_at,
        version=rating.version,
    )
    tx.emit(data, subject=grid_key(community_id, grid_id), correlation=community_id)
    return rating


async def set_zone_rule(
    tx: Tx, community_id: str, command: SetZoneRule, actor: Principal
) -> ZoneRule:
    community = await _community(tx.db, community_id, tx)
    if not may_set_rule(actor, community):
        raise refusals.NotYours(
            f"only the staff of street '{community.street}' set the zone rule of its communities"
        )
    previous = await zones_store.get_rule(tx.db, community_id, tx)
    rule = ZoneRule(
        community_id=community_id,
        version=(previous.version if previous else 0) + 1,
        exposure_by_level=dict(command.exposure_by_level),
        set_by=actor.sub,
        set_at=repository.stored(utcnow()),
    )
    await zones_store.save_rule(tx, previous, rule)
    data = ZoneRuleSet(
        community_id=community_id,
        version=rule.version,
        exposure_by_level=rule.exposure_by_level,
    )
    tx.emit(data, subject=community_id)
    return rule


async def readable_community(db: Database, community_id: str, principal: Principal) -> Community:
    community = await _community(db, community_id)
    if not may_read_map(principal, community):
        raise refusals.NotYours(f"the map of community '{community_id}' is not yours to read")
    return community


async def zones_as_of(db: Database, community_id: str, moment: datetime | None) -> list[Rating]:
    """The rating in force per grid at `moment` (None: now), for the grids of the grid in
    force now (a grid dropped by a later upload is not on the map)."""
    grids = await zones_store.grid_ids(db, community_id) or set()
    ratings = await zones_store.ratings(db, community_id, until=moment)
    held = map_as_of(ratings, moment)
    return [held[grid] for grid in sorted(held) if grid in grids]


async def demand_levels(db: Database, grids: list[tuple[str, str | None]]) -> dict[str, ZoneLevel]:
    """The current level of the grids demands name, by `grid_key`."""
    return await zones_store.levels_of(
        db, [(community, grid) for community, grid in grids if grid is not None]
    )


async def check_demand_grid(tx: Tx, community_id: str, grid_id: str | None) -> None:
    """A demand's grid must be one of its community's, once the community has a grid."""
    if grid_id is None:
        return
    grids = await zones_store.grid_ids(tx.db, community_id, tx)
    if grids is not None and grid_id not in grids:
        raise refusals.UnknownGrid(community_id, grid_id)
