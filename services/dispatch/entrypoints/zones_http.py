"""Dispatch's HTTP side of the map: a community's grid (GeoJSON, uploaded by an admin), its
risk zones as of a moment, their history, a rating, and the zone rule."""

from datetime import datetime
from typing import Annotated, Any, Self

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel

from services.dispatch.adapters import zones_store
from services.dispatch.domain.geo import GridUpload
from services.dispatch.domain.zones import GridSet, RateZone, Rating, SetZoneRule, ZoneRule
from services.dispatch.handlers import zones
from shared.auth import CurrentPrincipal, Principal, Role, require_roles
from shared.clock import as_utc
from shared.events.catalogue import Exposure, ZoneLevel
from shared.http.commands import execute
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse
from shared.http.negotiation import Rfc3339
from shared.http.problems import not_found

router = APIRouter(prefix="/v1", tags=["dispatch"])


def _in_utc(moment: datetime) -> datetime:
    try:
        return as_utc(moment)
    except OverflowError:  # year 1 at +14:00 has no UTC instant
        raise ValueError("the time lies outside the calendar once in UTC") from None


Moment = Annotated[Rfc3339, AfterValidator(_in_utc)]

Admin = Annotated[Principal, require_roles()]
Staff = Annotated[Principal, require_roles(Role.SECRETARY)]


class GridOut(BaseModel):
    """What an upload keeps: the grids it names and the digest of the stored GeoJSON."""

    community_id: str
    version: int
    uploaded_at: datetime
    uploaded_by: str
    grid_ids: list[str]
    buildings: int
    digest: str

    @classmethod
    def of(cls, grid_set: GridSet) -> Self:
        return cls.model_validate(grid_set.model_dump(exclude={"geojson"}))


class GridMap(GridOut):
    """The grid in force, with its GeoJSON (positions `[lon, lat]`, WGS-84)."""

    geojson: dict[str, Any]

    @classmethod
    def of(cls, grid_set: GridSet) -> Self:
        return cls.model_validate(grid_set.model_dump())


class RatingOut(BaseModel):
    id: str
    community_id: str
    grid_id: str
    level: ZoneLevel
    reason: str
    rated_by: str
    rated_at: datetime
    version: int

    @classmethod
    def of(cls, rating: Rating) -> Self:
        return cls.model_validate(rating.model_dump())


class ZoneMap(BaseModel):
    """Each grid's level as of `as_of` (null: now); a grid not listed was not rated then."""

    community_id: str
    as_of: datetime | None
    zones: list[RatingOut]


class RatingPage(BaseModel):
    items: list[RatingOut]


class ZoneRuleOut(BaseModel):
    community_id: str
    version: int
    exposure_by_level: dict[ZoneLevel, Exposure]
    set_by: str | None = None
    set_at: datetime | None = None

    @classmethod
    def of(cls, rule: ZoneRule) -> Self:
        return cls.model_validate(rule.model_dump())


@router.put("/communities/{community_id}/grid", response_model=GridOut)
async def upload_grid(
    community_id: str, body: GridUpload, request: Request, principal: Admin, runtime: Runtime
) -> JSONResponse:
    """Replace the community's grid (admin): a GeoJSON FeatureCollection of grids (Polygon,
    MultiPolygon; `properties.kind` "grid") and buildings (Polygon, Point; "building"), each
    with `properties.id`. Other properties are dropped. `grid.uploaded` names the grids and
    carries the digest; the geometry stays here."""
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: zones.upload_grid(tx, community_id, body, principal),
        present=lambda grid_set: StoredResponse.of(GridOut.of(grid_set)),
    )


@router.get("/communities/{community_id}/grid", response_model=GridMap)
async def get_grid(community_id: str, principal: CurrentPrincipal, runtime: Runtime) -> GridMap:
    """The grid in force, its GeoJSON included (the community's secretary, its street and
    district, auditors, admins)."""
    await zones.readable_community(runtime.db, community_id, principal)
    grid_set = await zones_store.get_grid_set(runtime.db, community_id)
    if grid_set is None:
        raise not_found("grid of community", community_id)
    return GridMap.of(grid_set)


@router.get("/communities/{community_id}/zones", response_model=ZoneMap)
async def get_zones(
    community_id: str,
    principal: CurrentPrincipal,
    runtime: Runtime,
    as_of: Annotated[
        Moment | None, Query(description="the map as it stood then (default: now)")
    ] = None,
) -> ZoneMap:
    """Each grid's level as it stood at `as_of` (default now): its last rating by then."""
    await zones.readable_community(runtime.db, community_id, principal)
    moment = as_of
    found = await zones.zones_as_of(runtime.db, community_id, moment)
    return ZoneMap(community_id=community_id, as_of=moment, zones=[RatingOut.of(r) for r in found])


@router.get("/communities/{community_id}/zones/history", response_model=RatingPage)
async def zone_history(
    community_id: str,
    principal: CurrentPrincipal,
    runtime: Runtime,
    limit: Annotated[int, Query(ge=1, le=zones_store.HISTORY_LIMIT)] = 100,
) -> RatingPage:
    """Every rating, newest first: how the map changed."""
    await zones.readable_community(runtime.db, community_id, principal)
    found = await zones_store.history(runtime.db, community_id, limit)
    return RatingPage(items=[RatingOut.of(r) for r in found])


@router.post(
    "/communities/{community_id}/zones/{grid_id}/ratings",
    status_code=201,
    response_model=RatingOut,
)
async def rate_zone(
    community_id: str,
    grid_id: str,
    body: RateZone,
    request: Request,
    principal: Staff,
    runtime: Runtime,
) -> JSONResponse:
    """The community's secretary or its street rates a grid 红 red / 橙 orange / 黄 yellow /
    蓝 blue / 绿 green (high to low), with a reason; `zone.rated`."""
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: zones.rate_zone(tx, community_id, grid_id, body, principal),
        present=lambda rating: StoredResponse.of(RatingOut.of(rating), 201),
    )


@router.get("/communities/{community_id}/zone-rule", response_model=ZoneRuleOut)
async def get_zone_rule(
    community_id: str, principal: CurrentPrincipal, runtime: Runtime
) -> ZoneRuleOut:
    """The community's zone rule (version 0 and no levels: none set)."""
    await zones.readable_community(runtime.db, community_id, principal)
    rule = await zones_store.get_rule(runtime.db, community_id)
    if rule is None:
        return ZoneRuleOut(community_id=community_id, version=0, exposure_by_level={})
    return ZoneRuleOut.of(rule)


@router.put("/communities/{community_id}/zone-rule", response_model=ZoneRuleOut)
async def set_zone_rule(
    community_id: str, body: SetZoneRule, request: Request, principal: Staff, runtime: Runtime
) -> JSONResponse:
    """Tighten eligibility by zone (the street's staff, or an admin): e.g. `{"red": "high",
    "orange": "high"}` makes every demand in a 红 or 橙 grid count as `high` exposure, which
    units keeps from volunteers aged 60+ or with a risk factor; `zone.rule_set`."""
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: zones.set_zone_rule(tx, community_id, body, principal),
        present=lambda rule: StoredResponse.of(ZoneRuleOut.of(rule)),
    )
