"""Dispatch's HTTP side: thin, it parses, authorises by role and calls a handler."""

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from services.dispatch import handlers
from services.dispatch.adapters import reach, repository
from services.dispatch.domain.model import Demand, Status
from services.dispatch.entrypoints.schemas import (
    CancelIn,
    CommunityIn,
    CommunityOut,
    CompleteIn,
    DemandIn,
    DemandOut,
    DemandPage,
)
from shared.auth import CurrentPrincipal, Principal, Role, forbidden, require_roles
from shared.events.catalogue import DemandKind, Level, Priority
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse, create_once
from shared.http.negotiation import ENTITY_TAGS, entity_tags, weak_match
from shared.http.problems import ProblemError
from shared.ids import new_id
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

router = APIRouter(prefix="/v1", tags=["dispatch"])

Admin = Annotated[Principal, require_roles()]
Secretary = Annotated[Principal, require_roles(Role.SECRETARY)]


@router.post("/communities", status_code=201, response_model=CommunityOut)
async def register_community(
    body: CommunityIn, request: Request, principal: Admin, runtime: Runtime
) -> JSONResponse:
    async def create(tx: Tx) -> StoredResponse:
        community = await handlers.register_community(tx, body, principal)
        return StoredResponse(
            201,
            CommunityOut.of(community).model_dump(mode="json"),
            {"Location": f"/v1/communities/{community.id}"},
        )

    return await create_once(
        runtime.idempotency, runtime.uow, request=request, scope=principal.scope_key, create=create
    )


@router.get("/communities/{community_id}", response_model=CommunityOut)
async def get_community(community_id: str, _: CurrentPrincipal, runtime: Runtime) -> CommunityOut:
    community = await repository.get_community(runtime.db, community_id)
    if community is None:
        raise ProblemError(404, "not-found", "Not found", f"no community '{community_id}'")
    return CommunityOut.of(community)


@router.post("/demands", status_code=201, response_model=DemandOut)
async def publish_demand(
    body: DemandIn, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    request_id = new_id("req")

    async def create(tx: Tx) -> StoredResponse:
        demand = await handlers.publish_demand(tx, body, principal, request_id)
        return StoredResponse(
            201,
            DemandOut.of(demand).model_dump(mode="json"),
            {"Location": f"/v1/demands/{demand.id}"},
        )

    return await create_once(
        runtime.idempotency, runtime.uow, request=request, scope=principal.scope_key, create=create
    )


def _encode_cursor(demand_id: str) -> str:
    return base64.urlsafe_b64encode(demand_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        demand_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        demand_id = ""
    if not demand_id.startswith("dem_"):
        raise ProblemError(
            400, "invalid-cursor", "Invalid cursor", "the cursor is not one this service gave"
        )
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
    communities = await reach.communities_of(runtime.db, principal)
    await handlers.check_listing_scope(runtime.db, principal, community_id, communities)
    query = repository.DemandQuery(
        scopes=handlers.reading_scopes(principal, communities),
        community_id=community_id,
        statuses=status or (),
        levels=level or (),
        kind=kind,
        priority=priority,
        before_id=_decode_cursor(cursor) if cursor else None,
        limit=limit + 1,
    )
    demands = await repository.list_demands(runtime.db, query)
    page = demands[:limit]
    more = len(demands) > limit
    accepted = await reach.accepted_on(runtime.db, principal, (demand.id for demand in page))
    return DemandPage(
        items=[
            DemandOut.of(
                demand, full=handlers.sees_the_exact_place(principal, demand.id in accepted)
            )
            for demand in page
        ],
        next_cursor=_encode_cursor(page[-1].id) if more else None,
    )


@router.get("/demands/{demand_id}", response_model=DemandOut)
async def get_demand(
    demand_id: str,
    principal: CurrentPrincipal,
    runtime: Runtime,
    if_none_match: Annotated[str | None, Header(max_length=1000, pattern=ENTITY_TAGS)] = None,
) -> Response:
    demand = await repository.get_demand(runtime.db, demand_id)
    if demand is None:
        raise ProblemError(404, "not-found", "Not found", f"no demand '{demand_id}'")
    communities = await reach.communities_of(runtime.db, principal)
    if not handlers.may_read(principal, demand, communities):
        raise forbidden(
            f"demand '{demand_id}' belongs to community '{demand.community_id}', "
            "which is not within your reach"
        )
    accepted = demand.id in await reach.accepted_on(runtime.db, principal, [demand.id])
    full = handlers.sees_the_exact_place(principal, accepted)
    out = DemandOut.of(demand, full=full)
    # The tag names the representation: a withheld view is not the full one.
    etag = f'"{demand.version}"' if full else f'"{demand.version}-w"'
    if if_none_match is not None and weak_match(entity_tags(if_none_match), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return JSONResponse(out.model_dump(mode="json"), headers={"ETag": etag})


def _expected_version(if_match: str | None) -> handlers.Expected:
    """`If-Match: "<version>"[, ...]` (ETags of GET) makes a close conditional on one of those
    versions, compared strongly (RFC 9110 13.1.1): a weak tag `W/"2"` matches nothing."""
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


Closer = Callable[[Tx, str, handlers.Expected], Awaitable[Demand]]


async def _close(
    request: Request,
    principal: Principal,
    runtime: ServiceRuntime,
    close: Closer,
    if_match: str | None,
) -> JSONResponse:
    expected = _expected_version(if_match)
    request_id = new_id("req")

    async def closing(tx: Tx) -> StoredResponse:
        demand = await close(tx, request_id, expected)
        return StoredResponse(
            200, DemandOut.of(demand).model_dump(mode="json"), {"ETag": f'"{demand.version}"'}
        )

    # A retried close with the same Idempotency-Key gets its first answer, not a 409.
    return await create_once(
        runtime.idempotency, runtime.uow, request=request, scope=principal.scope_key, create=closing
    )


IfMatch = Annotated[str | None, Header(max_length=1000, pattern=ENTITY_TAGS)]


@router.post("/demands/{demand_id}/cancel", response_model=DemandOut)
async def cancel_demand(
    demand_id: str,
    body: CancelIn,
    request: Request,
    principal: Secretary,
    runtime: Runtime,
    if_match: IfMatch = None,
) -> JSONResponse:
    async def close(tx: Tx, request_id: str, expected: handlers.Expected) -> Demand:
        return await handlers.cancel_demand(tx, demand_id, body, principal, request_id, expected)

    return await _close(request, principal, runtime, close, if_match)


@router.post("/demands/{demand_id}/complete", response_model=DemandOut)
async def complete_demand(
    demand_id: str,
    request: Request,
    principal: Secretary,
    runtime: Runtime,
    body: CompleteIn | None = None,
    if_match: IfMatch = None,
) -> JSONResponse:
    command = body or CompleteIn()

    async def close(tx: Tx, request_id: str, expected: handlers.Expected) -> Demand:
        return await handlers.complete_demand(
            tx, demand_id, command, principal, request_id, expected
        )

    return await _close(request, principal, runtime, close, if_match)
