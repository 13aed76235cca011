"""Dispatch's HTTP side: thin, it parses, authorises by role and calls a handler."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from services.dispatch import handlers
from services.dispatch.adapters import repository
from services.dispatch.entrypoints.schemas import CommunityIn, CommunityOut, DemandIn, DemandOut
from shared.auth import CurrentPrincipal, Principal, Role, require_roles
from shared.http.idempotency_keys import StoredResponse, create_once
from shared.http.problems import ProblemError
from shared.ids import new_id
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

router = APIRouter(prefix="/v1", tags=["dispatch"])

Admin = Annotated[Principal, require_roles()]
Secretary = Annotated[Principal, require_roles(Role.SECRETARY)]


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


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
        runtime.idempotency, runtime.uow, request=request, scope=principal.sub, create=create
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
        runtime.idempotency, runtime.uow, request=request, scope=principal.sub, create=create
    )


@router.get("/demands/{demand_id}", response_model=DemandOut)
async def get_demand(demand_id: str, _: CurrentPrincipal, runtime: Runtime) -> DemandOut:
    demand = await repository.get_demand(runtime.db, demand_id)
    if demand is None:
        raise ProblemError(404, "not-found", "Not found", f"no demand '{demand_id}'")
    return DemandOut.of(demand)
