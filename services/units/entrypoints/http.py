"""Units' HTTP side: thin, it parses, authorises by role and calls a handler."""

import base64
import json
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from services.units import handlers, reach, refusals
from services.units.adapters import repository
from services.units.config import UnitsSettings
from services.units.domain import rules
from services.units.domain.model import Claim, Community, Demand
from services.units.entrypoints.arrivals import communities_arrived
from services.units.entrypoints.gate import KeyedGate
from services.units.entrypoints.patience import patiently
from services.units.entrypoints.schemas import (
    CheckInCodeOut,
    CheckInIn,
    ClaimIn,
    ClaimOut,
    ClaimsOut,
    CommunityOut,
    CompleteIn,
    OpenDemandOut,
    OpenDemandsOut,
    UnitIn,
    UnitOut,
    UnitPatch,
    UnitWithSecretOut,
    VolunteerIn,
    VolunteerOut,
    VolunteerPatch,
    VolunteerWithSecretOut,
    WebhookSecretOut,
    WithdrawIn,
)
from services.units.metrics import CLAIMS_DECIDED
from shared.auth import CurrentPrincipal, Principal, Role, forbidden, require_roles
from shared.clock import utcnow
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse, create_once
from shared.http.problems import ProblemError
from shared.ids import new_id
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

router = APIRouter(prefix="/v1", tags=["units"])

_log = structlog.get_logger("whistle.units")


Admin = Annotated[Principal, require_roles()]
Secretary = Annotated[Principal, require_roles(Role.SECRETARY)]
Claimer = Annotated[Principal, require_roles(Role.UNIT, Role.VOLUNTEER)]


def week_zone_of(request: Request) -> ZoneInfo:
    settings: UnitsSettings = request.app.state.settings
    return settings.week_zone


_claims_per_demand = KeyedGate()
WeekZone = Annotated[ZoneInfo, Depends(week_zone_of)]


# --- registry -------------------------------------------------------------------------------


@router.post("/units", status_code=201, response_model=UnitWithSecretOut)
async def register_unit(
    body: UnitIn, request: Request, principal: Admin, runtime: Runtime
) -> JSONResponse:
    request_id = new_id("req")
    await communities_arrived(runtime.db, body.communities)  # the handler decides after it

    async def create(tx: Tx) -> StoredResponse:
        unit = await handlers.register_unit(tx, body, principal, request_id)
        return StoredResponse(
            201,
            UnitWithSecretOut.of(unit).model_dump(mode="json"),
            {"Location": f"/v1/units/{unit.id}"},
        )

    return await patiently(
        lambda: create_once(
            runtime.idempotency,
            runtime.uow,
            request=request,
            scope=principal.scope_key,
            create=create,
        )
    )


@router.get("/units/{unit_id}", response_model=UnitOut)
async def get_unit(unit_id: str, principal: CurrentPrincipal, runtime: Runtime) -> UnitOut:
    unit = await repository.get_unit(runtime.db, unit_id)
    if unit is None:
        raise refusals.not_found("unit", unit_id)
    if not (
        principal.role in (Role.ADMIN, Role.AUDITOR)
        or principal.unit == unit.id
        or (principal.role is Role.SECRETARY and principal.community in unit.communities)
    ):
        raise forbidden("a unit's record is for its members and its communities' secretaries")
    return UnitOut.of(unit, admin=principal.is_admin)


@router.post("/volunteers", status_code=201, response_model=VolunteerWithSecretOut)
async def register_volunteer(
    body: VolunteerIn, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    request_id = new_id("req")
    await communities_arrived(runtime.db, [body.community_id])  # the handler decides after it

    async def create(tx: Tx) -> StoredResponse:
        volunteer = await handlers.register_volunteer(tx, body, principal, request_id)
        return StoredResponse(
            201,
            VolunteerWithSecretOut.of(volunteer).model_dump(mode="json"),
            {"Location": f"/v1/volunteers/{volunteer.id}"},
        )

    return await patiently(
        lambda: create_once(
            runtime.idempotency,
            runtime.uow,
            request=request,
            scope=principal.scope_key,
            create=create,
        )
    )


@router.patch("/units/{unit_id}", response_model=UnitWithSecretOut)
async def correct_unit(
    unit_id: str, body: UnitPatch, principal: Admin, runtime: Runtime
) -> UnitWithSecretOut:
    """Correct a unit's record (admin). A webhook URL set for the first time gets a secret,
    shown in this answer only."""
    request_id = new_id("req")

    async def work(tx: Tx) -> UnitWithSecretOut:
        before = await repository.get_unit(tx.db, unit_id, tx)
        unit = await handlers.correct_unit(tx, unit_id, body, principal, request_id)
        out = UnitWithSecretOut.of(unit)
        if before is not None and before.webhook_secret == unit.webhook_secret:
            out = out.model_copy(update={"webhook_secret": None})  # shown once only
        return out

    return await patiently(lambda: runtime.uow.run(work))


@router.post("/units/{unit_id}/webhook-secret", response_model=WebhookSecretOut)
async def rotate_unit_webhook_secret(
    unit_id: str, principal: CurrentPrincipal, runtime: Runtime
) -> WebhookSecretOut:
    """A new webhook secret (admin or the unit); deliveries are signed with it at once."""
    request_id = new_id("req")

    async def work(tx: Tx) -> WebhookSecretOut:
        unit = await handlers.rotate_unit_secret(tx, unit_id, principal, request_id)
        assert unit.webhook_secret is not None
        return WebhookSecretOut(id=unit.id, webhook_secret=unit.webhook_secret)

    return await patiently(lambda: runtime.uow.run(work))


@router.patch("/volunteers/{volunteer_id}", response_model=VolunteerWithSecretOut)
async def correct_volunteer(
    volunteer_id: str, body: VolunteerPatch, principal: CurrentPrincipal, runtime: Runtime
) -> VolunteerWithSecretOut:
    """Correct a volunteer's record (admin, or their community's secretary)."""
    request_id = new_id("req")

    async def work(tx: Tx) -> VolunteerWithSecretOut:
        before = await repository.get_volunteer(tx.db, volunteer_id, tx)
        volunteer = await handlers.correct_volunteer(tx, volunteer_id, body, principal, request_id)
        out = VolunteerWithSecretOut.of(volunteer)
        if before is not None and before.webhook_secret == volunteer.webhook_secret:
            out = out.model_copy(update={"webhook_secret": None})  # shown once only
        return out

    return await patiently(lambda: runtime.uow.run(work))


@router.post("/volunteers/{volunteer_id}/webhook-secret", response_model=WebhookSecretOut)
async def rotate_volunteer_webhook_secret(
    volunteer_id: str, principal: CurrentPrincipal, runtime: Runtime
) -> WebhookSecretOut:
    request_id = new_id("req")

    async def work(tx: Tx) -> WebhookSecretOut:
        volunteer = await handlers.rotate_volunteer_secret(tx, volunteer_id, principal, request_id)
        assert volunteer.webhook_secret is not None
        return WebhookSecretOut(id=volunteer.id, webhook_secret=volunteer.webhook_secret)

    return await patiently(lambda: runtime.uow.run(work))


@router.delete("/volunteers/{volunteer_id}", status_code=204)
async def erase_volunteer(
    volunteer_id: str, principal: CurrentPrincipal, runtime: Runtime, zone: WeekZone
) -> Response:
    """Erase a volunteer (admin, or their community's secretary): their name, building and
    contact leave every service; their open places are given back; `volunteer.erased` says
    so in the history, by id only. Repeating it answers 204 again."""
    request_id = new_id("req")

    async def work(tx: Tx) -> bool:
        return await handlers.erase_volunteer(tx, volunteer_id, principal, request_id, zone)

    await patiently(lambda: runtime.uow.run(work))
    return Response(status_code=204)


@router.get("/volunteers/{volunteer_id}", response_model=VolunteerOut)
async def get_volunteer(
    volunteer_id: str, principal: CurrentPrincipal, runtime: Runtime
) -> VolunteerOut:
    volunteer = await repository.get_volunteer(runtime.db, volunteer_id)
    if volunteer is None:
        if await repository.get_erased_volunteer(runtime.db, volunteer_id) is not None:
            raise refusals.erased(volunteer_id)
        raise refusals.not_found("volunteer", volunteer_id)
    if not (
        principal.role in (Role.ADMIN, Role.AUDITOR)
        or principal.volunteer == volunteer.id
        or principal.is_secretary_of(volunteer.community_id)
    ):
        raise forbidden("a volunteer's record is for them and their community's secretary")
    return VolunteerOut.of(volunteer)


@router.get("/communities/{community_id}", response_model=CommunityOut)
async def get_community(community_id: str, _: CurrentPrincipal, runtime: Runtime) -> CommunityOut:
    """Units' copy of a community (from `community.registered`)."""
    community = await repository.get_community(runtime.db, community_id)
    if community is None:
        raise refusals.not_found("community", community_id)
    return CommunityOut.model_validate(community.model_dump())


# --- open demands ---------------------------------------------------------------------------


def _encode_cursor(key: repository.OpenDemandsKey) -> str:
    rank, fill_by, demand_id = key
    raw = json.dumps([rank, fill_by.isoformat(), demand_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> repository.OpenDemandsKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        rank, fill_by, demand_id = json.loads(raw)
        if isinstance(rank, int) and isinstance(demand_id, str):
            return rank, datetime.fromisoformat(fill_by), demand_id
    except (ValueError, TypeError):
        pass
    raise ProblemError(
        400, "invalid-cursor", "Invalid cursor", "the cursor is not one this service gave"
    )


# A page of claimable demands is filtered after the query (skills, claims held): scan at
# most this many candidates per request, then hand back a cursor where the scan stopped.
OPEN_DEMANDS_SCAN = 1000


@router.get("/open-demands", response_model=OpenDemandsOut)
async def open_demands(
    principal: CurrentPrincipal,
    runtime: Runtime,
    community_id: Annotated[str | None, Query(max_length=64)] = None,
    skill: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> OpenDemandsOut:
    """Demands that still need people within the caller's reach, most urgent first; a
    claimant sees what it may claim, without the exact place until its claim is accepted."""
    skill = rules.normalise_skills([skill])[0] if skill and skill.strip() else None
    after = _decode_cursor(cursor) if cursor else None
    claimant = principal.role in (Role.UNIT, Role.VOLUNTEER)
    served = await _served(runtime, principal) if claimant else []
    scopes = await reach.scopes_for(runtime.db, principal, served, community_id)
    found: list[Demand] = []
    next_key: repository.OpenDemandsKey | None = None
    scanned = 0
    batch_size = limit + 1
    while True:
        batch = await repository.open_demands(
            runtime.db,
            scopes=scopes,
            community_ids=[community_id] if community_id else None,
            skill=skill,
            now=utcnow(),
            after=after,
            limit=batch_size,
        )
        candidates = [demand for demand, _ in batch]
        kept = (
            {demand.id for demand in await _claimable(runtime, principal, candidates)}
            if claimant
            else {demand.id for demand in candidates}
        )
        full = False
        for demand, key in batch:
            if demand.id in kept:
                if len(found) == limit:
                    full = True  # one more exists: the next page starts after the last kept
                    break
                found.append(demand)
                next_key = key
            after = key
        scanned += len(batch)
        if full:
            break
        if len(batch) < batch_size:
            next_key = None  # the end of the list
            break
        if scanned >= OPEN_DEMANDS_SCAN:
            next_key = after  # scan budget spent: go on from there next time
            break
    # The private details (`demand.details`) only for readers who may see them.
    details = (
        await repository.demand_details(runtime.db, [demand.id for demand in found])
        if not claimant
        else {}
    )
    return OpenDemandsOut(
        items=[
            OpenDemandOut.of(demand, details.get(demand.id), full=not claimant) for demand in found
        ],
        next_cursor=_encode_cursor(next_key) if next_key else None,
    )


async def _served(runtime: ServiceRuntime, principal: Principal) -> list[Community]:
    async def look(tx: Tx) -> list[Community]:
        _, profile = await handlers.claimant_of(tx, principal)
        return await repository.get_communities(tx.db, handlers.communities_served(profile), tx)

    return await runtime.uow.run(look)


async def _claimable(
    runtime: ServiceRuntime, principal: Principal, demands: list[Demand]
) -> list[Demand]:
    async def look(tx: Tx) -> list[Demand]:
        return await handlers.claimable_for(tx, principal, demands)

    return await runtime.uow.run(look)


# --- claims ---------------------------------------------------------------------------------


@router.post("/demands/{demand_id}/claims", status_code=201, response_model=ClaimOut)
async def claim_demand(
    demand_id: str,
    body: ClaimIn,
    request: Request,
    principal: Claimer,
    runtime: Runtime,
    zone: WeekZone,
) -> JSONResponse:
    request_id = new_id("req")

    async def create(tx: Tx) -> StoredResponse:
        claim = await handlers.claim(tx, demand_id, body, principal, request_id, zone)
        return StoredResponse(
            201 if claim.status == "accepted" else 202,
            ClaimOut.of(claim).model_dump(mode="json"),
            {"Location": f"/v1/claims/{claim.id}"},
        )

    try:
        async with _claims_per_demand.hold(demand_id):
            response = await patiently(
                lambda: create_once(
                    runtime.idempotency,
                    runtime.uow,
                    request=request,
                    scope=principal.scope_key,
                    create=create,
                )
            )
    except ProblemError as refusal:
        CLAIMS_DECIDED.labels(refusal.slug).inc()
        raise
    CLAIMS_DECIDED.labels("accepted" if response.status_code == 201 else "waitlisted").inc()
    return response


@router.post("/claims/{claim_id}/withdraw", response_model=ClaimOut)
async def withdraw_claim(
    claim_id: str,
    principal: CurrentPrincipal,
    runtime: Runtime,
    zone: WeekZone,
    body: WithdrawIn | None = None,
) -> ClaimOut:
    request_id = new_id("req")
    command = body or WithdrawIn()

    async def work(tx: Tx) -> Claim:
        return await handlers.withdraw(tx, claim_id, command, principal, request_id, zone)

    # A withdrawal writes the demand's count too: it queues with the demand's claims.
    found = await repository.get_claim(runtime.db, claim_id)
    async with _claims_per_demand.hold(found.demand_id if found else claim_id):
        return ClaimOut.of(await patiently(lambda: runtime.uow.run(work)))


@router.post("/claims/{claim_id}/check-in", response_model=ClaimOut)
async def check_in(
    claim_id: str, body: CheckInIn, principal: CurrentPrincipal, runtime: Runtime
) -> ClaimOut:
    request_id = new_id("req")

    async def work(tx: Tx) -> Claim:
        return await handlers.check_in(tx, claim_id, body, principal, request_id)

    return ClaimOut.of(await patiently(lambda: runtime.uow.run(work)))


@router.post("/claims/{claim_id}/complete", response_model=ClaimOut)
async def complete_claim(
    claim_id: str, body: CompleteIn, principal: CurrentPrincipal, runtime: Runtime
) -> ClaimOut:
    request_id = new_id("req")

    async def work(tx: Tx) -> Claim:
        return await handlers.complete(tx, claim_id, body, principal, request_id)

    return ClaimOut.of(await patiently(lambda: runtime.uow.run(work)))


def _visibility(principal: Principal) -> dict[str, Any]:
    """Who reads which claims: their own, their community's, or (auditor, admin) all."""
    if principal.role is Role.UNIT:
        return {"claimant_key": f"unit:{principal.unit}"}
    if principal.role is Role.VOLUNTEER:
        return {"claimant_key": f"volunteer:{principal.volunteer}"}
    if principal.role is Role.SECRETARY:
        return {"community_id": principal.community}
    return {}


@router.get("/claims", response_model=ClaimsOut)
async def list_claims(
    principal: CurrentPrincipal,
    runtime: Runtime,
    demand_id: Annotated[str | None, Query(max_length=200)] = None,
    claimant_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ClaimsOut:
    query = _visibility(principal)
    if demand_id:
        query["demand_id"] = demand_id
    if claimant_id:
        query["claimant.id"] = claimant_id
    claims = await repository.list_claims(runtime.db, query, limit)
    return ClaimsOut(items=[ClaimOut.of(claim) for claim in claims])


@router.get("/claims/{claim_id}", response_model=ClaimOut)
async def get_claim(claim_id: str, principal: CurrentPrincipal, runtime: Runtime) -> ClaimOut:
    claims = await repository.list_claims(
        runtime.db, {**_visibility(principal), "_id": claim_id}, 1
    )
    if not claims:
        raise refusals.not_found("claim", claim_id)
    return ClaimOut.of(claims[0])


# --- the on-site check-in code ---------------------------------------------------------------


def _code_out(demand: Demand, code: str) -> CheckInCodeOut:
    return CheckInCodeOut(
        demand_id=demand.id,
        code=code,
        opens_at=demand.starts_at - rules.CHECK_IN_OPENS_BEFORE,
        closes_at=demand.ends_at,
    )


@router.get("/demands/{demand_id}/check-in-code", response_model=CheckInCodeOut)
async def get_check_in_code(
    demand_id: str, principal: Secretary, runtime: Runtime
) -> CheckInCodeOut:
    async def read(tx: Tx) -> CheckInCodeOut:
        demand = await handlers.visible_code_demand(tx, demand_id, principal)
        code = await repository.get_check_in_code(tx.db, demand.id, tx)
        assert code is not None  # every demand gets one when units first hears of it
        return _code_out(demand, code)

    return await runtime.uow.run(read)


@router.post("/demands/{demand_id}/check-in-code/rotate", response_model=CheckInCodeOut)
async def rotate_check_in_code(
    demand_id: str, principal: Secretary, runtime: Runtime
) -> CheckInCodeOut:
    async def rotate(tx: Tx) -> CheckInCodeOut:
        demand, code = await handlers.rotate_check_in_code(tx, demand_id, principal)
        return _code_out(demand, code)

    return await patiently(lambda: runtime.uow.run(rotate))
