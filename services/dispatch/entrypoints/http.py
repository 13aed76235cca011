"""Dispatch's HTTP side: each route parses, authorises by role, runs its command (or read)
and presents the answer."""

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.dispatch.adapters import repository
from services.dispatch.config import DispatchSettings
from services.dispatch.domain import refusals
from services.dispatch.domain.commands import (
    CancelDemand,
    ChangeCommunityLimits,
    CompleteDemand,
    Expected,
    UpdateDemand,
)
from services.dispatch.domain.model import Demand, Status
from services.dispatch.domain.zones import grid_key
from services.dispatch.entrypoints.schemas import (
    CancelIn,
    CommunityIn,
    CommunityOut,
    CommunityPatch,
    CompleteIn,
    DemandIn,
    DemandOut,
    DemandPage,
    DemandPatch,
)
from services.dispatch.handlers import commands, queries, zones
from shared.auth import CurrentPrincipal, Principal, Role, require_roles
from shared.events.catalogue import DemandKind, Level, Priority
from shared.http.commands import execute
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse
from shared.http.negotiation import ENTITY_TAGS, entity_tags, weak_match
from shared.http.problems import not_found
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

router = APIRouter(prefix="/v1", tags=["dispatch"])

Admin = Annotated[Principal, require_roles()]
Secretary = Annotated[Principal, require_roles(Role.SECRETARY)]
IfMatch = Annotated[str | None, Header(max_length=1000, pattern=ENTITY_TAGS)]
IfNoneMatch = Annotated[str | None, Header(max_length=1000, pattern=ENTITY_TAGS)]


def _demand_answer(demand: Demand) -> StoredResponse:
    return StoredResponse.of(DemandOut.of(demand), headers={"ETag": f'"{demand.version}"'})


async def _changing(
    runtime: ServiceRuntime,
    request: Request,
    principal: Principal,
    work: Callable[[Tx], Awaitable[Demand]],
) -> JSONResponse:
    """Run a command that changes one demand; the answer is the demand with its ETag (a
    retry with the same Idempotency-Key gets the first answer, not a 409)."""
    return await execute(runtime, request, principal, work, present=_demand_answer)


def _new_demand_answer(demand: Demand) -> StoredResponse:
    return StoredResponse.of(DemandOut.of(demand), 201, {"Location": f"/v1/demands/{demand.id}"})


@router.post("/communities", status_code=201, response_model=CommunityOut)
async def register_community(
    body: CommunityIn, request: Request, principal: Admin, runtime: Runtime
) -> JSONResponse:
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: commands.register_community(tx, body, principal),
        present=lambda community: StoredResponse.of(
            CommunityOut.of(community), 201, {"Location": f"/v1/communities/{community.id}"}
        ),
    )


@router.patch("/communities/{community_id}", response_model=CommunityOut)
async def change_community_limits(
    community_id: str, body: CommunityPatch, request: Request, principal: Admin, runtime: Runtime
) -> JSONResponse:
    """New fatigue limits for the community's volunteers (admin); `community.updated`."""
    command = ChangeCommunityLimits(community_id=community_id, **body.model_dump())
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: commands.change_community_limits(tx, command, principal),
        present=lambda community: StoredResponse.of(CommunityOut.of(community)),
    )


@router.get("/communities/{community_id}", response_model=CommunityOut)
async def get_community(community_id: str, _: CurrentPrincipal, runtime: Runtime) -> CommunityOut:
    community = await repository.get_community(runtime.db, community_id)
    if community is None:
        raise not_found("community", community_id)
    return CommunityOut.of(community)


@router.post("/demands", status_code=201, response_model=DemandOut)
async def publish_demand(
    body: DemandIn, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: commands.publish_demand(tx, body, principal),
        present=_new_demand_answer,
    )


def _encode_cursor(demand_id: str) -> str:
    return base64.urlsafe_b64encode(demand_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        demand_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        demand_id = ""
    if not demand_id.startswith("dem_"):
        raise refusals.InvalidCursor()
    return demand_id


@router.get("/demands", response_model=DemandPage)
async def list_demands(
    principal: CurrentPrincipal,
    runtime: Runtime,
    community_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    level: Annotated[list[Level] | None, Query()] = None,
    kind: DemandKind | None = None,
    priority: Priority | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DemandPage:
    """Newest first. A secretary sees their community's demands and those escalated to them."""
    query = repository.DemandQuery(
        community_id=community_id,
        statuses=status or (),
        levels=level or (),
        kind=kind,
        priority=priority,
        before_id=_decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    page, more = await queries.demands_for(runtime.db, principal, query)
    levels = await zones.demand_levels(
        runtime.db, [(s.demand.community_id, s.demand.location.grid) for s in page]
    )
    return DemandPage(
        items=[
            DemandOut.of(shown.demand, full=shown.full, zone_level=levels.get(grid_of(shown)))
            for shown in page
        ],
        next_cursor=_encode_cursor(page[-1].demand.id) if more else None,
    )


@router.get("/demands/{demand_id}", response_model=DemandOut)
async def get_demand(
    demand_id: str,
    principal: CurrentPrincipal,
    runtime: Runtime,
    if_none_match: IfNoneMatch = None,
) -> Response:
    shown = await queries.demand_for(runtime.db, principal, demand_id)
    # The tag names the representation: a withheld view is not the full one.
    version = shown.demand.version
    etag = f'"{version}"' if shown.full else f'"{version}-w"'
    levels = await zones.demand_levels(
        runtime.db, [(shown.demand.community_id, shown.demand.location.grid)]
    )
    level = levels.get(grid_of(shown))
    # The tag is the demand's version (If-Match takes it); a rating of its grid changes the
    # answer, not the version, so a demand in a rated grid is always answered in full.
    if level is None and if_none_match is not None and weak_match(entity_tags(if_none_match), etag):
        return Response(status_code=304, headers={"ETag": etag})
    out = DemandOut.of(shown.demand, full=shown.full, zone_level=level)
    return JSONResponse(out.model_dump(mode="json"), headers={"ETag": etag})


def grid_of(shown: queries.Shown) -> str:
    """The key its grid's level is found by (`""` for a demand with no grid)."""
    grid = shown.demand.location.grid
    return grid_key(shown.demand.community_id, grid) if grid is not None else ""


def _expected_version(if_match: str | None) -> Expected:
    """`If-Match: "<version>"[, ...]` (ETags of GET) makes a change conditional on one of
    those versions, compared strongly (RFC 9110 13.1.1): a weak tag `W/"2"` matches nothing."""
    if if_match is None:
        return None
    tags = entity_tags(if_match)
    if tags is None:
        return None  # `*`: the demand exists (a 404 otherwise)
    return frozenset(
        int(tag.strip('"'))
        for tag in tags
        if not tag.startswith("W/") and tag.strip('"').isdigit() and len(tag) < 25
    )


@router.post("/demands/{demand_id}/cancel", response_model=DemandOut)
async def cancel_demand(
    demand_id: str,
    body: CancelIn,
    request: Request,
    principal: Secretary,
    runtime: Runtime,
    if_match: IfMatch = None,
) -> JSONResponse:
    command = CancelDemand(
        demand_id=demand_id, reason=body.reason, expected=_expected_version(if_match)
    )

    return await _changing(
        runtime, request, principal, lambda tx: commands.cancel_demand(tx, command, principal)
    )


@router.post("/demands/{demand_id}/complete", response_model=DemandOut)
async def complete_demand(
    demand_id: str,
    request: Request,
    principal: Secretary,
    runtime: Runtime,
    body: CompleteIn | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    command = CompleteDemand(
        demand_id=demand_id,
        summary=(body or CompleteIn()).summary,
        expected=_expected_version(if_match),
    )

    return await _changing(
        runtime, request, principal, lambda tx: commands.complete_demand(tx, command, principal)
    )


async def _settings_of(request: Request) -> DispatchSettings:
    settings = request.app.state.settings
    assert isinstance(settings, DispatchSettings)
    return settings


Settings = Annotated[DispatchSettings, Depends(_settings_of)]


@router.patch("/demands/{demand_id}", response_model=DemandOut)
async def update_demand(
    demand_id: str,
    body: DemandPatch,
    request: Request,
    principal: Secretary,
    runtime: Runtime,
    settings: Settings,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Edit a live demand (its secretary): title, slots (never below the people already
    accepted), priority, skills, `fill_by` (while it lies ahead). `If-Match` with the ETag of
    a GET makes the edit conditional on that version."""
    command = UpdateDemand(demand_id=demand_id, changes=body, expected=_expected_version(if_match))
    step = settings.escalation_step_s
    return await _changing(
        runtime, request, principal, lambda tx: commands.update_demand(tx, command, principal, step)
    )
