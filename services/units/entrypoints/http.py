"""Units' HTTP side: each route parses, authorises, executes and presents.

Authorising is two steps: the role here (`require_roles`), then the record itself, which the
handler reads in its transaction and puts to `domain/access.py`. Every command runs through
`shared.http.commands.execute` (idempotency, the unit of work, serialisation on a demand).
"""

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from services.units.adapters import repository
from services.units.adapters.metrics import CLAIMS_DECIDED
from services.units.config import UnitsSettings
from services.units.domain import access, rules
from services.units.domain import commands as do
from services.units.domain.model import Claim, Demand
from services.units.entrypoints.problems import REFUSALS
from services.units.entrypoints.schemas import (
    CheckInCodeOut,
    CheckInIn,
    ClaimIn,
    ClaimOut,
    ClaimsOut,
    CommunityOut,
    CompleteIn,
    EligibilityOverrideIn,
    EligibilityOverrideOut,
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
from services.units.handlers import commands as handle
from services.units.handlers import queries
from shared.auth import CurrentPrincipal, Principal, Role, require_roles
from shared.http.commands import execute
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse
from shared.http.problems import ProblemError, problem_of
from shared.store.mongo import Database

router = APIRouter(prefix="/v1", tags=["units"])

Admin = Annotated[Principal, require_roles()]
Secretary = Annotated[Principal, require_roles(Role.SECRETARY)]
Claimer = Annotated[Principal, require_roles(Role.UNIT, Role.VOLUNTEER)]


async def week_zone_of(request: Request) -> ZoneInfo:
    settings: UnitsSettings = request.app.state.settings
    return settings.week_zone


WeekZone = Annotated[ZoneInfo, Depends(week_zone_of)]


async def _communities_arrived(
    request: Request, db: Database, community_ids: Sequence[str]
) -> None:
    """Wait (bounded) for communities dispatch registered a moment ago; the command decides."""
    settings: UnitsSettings = request.app.state.settings
    await queries.communities_arrived(db, community_ids, within_s=settings.community_arrival_s)


def _created(out: UnitWithSecretOut | VolunteerWithSecretOut, kind: str) -> StoredResponse:
    return StoredResponse.of(out, 201, {"Location": f"/v1/{kind}/{out.id}"})


# --- registry -------------------------------------------------------------------------------


@router.post("/units", status_code=201, response_model=UnitWithSecretOut)
async def register_unit(
    body: UnitIn, request: Request, principal: Admin, runtime: Runtime
) -> JSONResponse:
    command = do.RegisterUnit.model_validate(body.model_dump())
    await _communities_arrived(request, runtime.db, command.communities)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.register_unit(tx, command, principal),
        present=lambda recorded: _created(UnitWithSecretOut.recorded(recorded), "units"),
    )


@router.get("/units/{unit_id}", response_model=UnitOut)
async def get_unit(unit_id: str, principal: CurrentPrincipal, runtime: Runtime) -> UnitOut:
    unit = await queries.unit_for(runtime.db, unit_id, principal)
    return UnitOut.of(unit, admin=principal.is_admin)


@router.post("/volunteers", status_code=201, response_model=VolunteerWithSecretOut)
async def register_volunteer(
    body: VolunteerIn, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    command = do.RegisterVolunteer.model_validate(body.model_dump())
    await _communities_arrived(request, runtime.db, [command.community_id])
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.register_volunteer(tx, command, principal),
        present=lambda recorded: _created(VolunteerWithSecretOut.recorded(recorded), "volunteers"),
    )


@router.patch("/units/{unit_id}", response_model=UnitWithSecretOut)
async def correct_unit(
    unit_id: str, body: UnitPatch, request: Request, principal: Admin, runtime: Runtime
) -> JSONResponse:
    """Correct a unit's record (admin). A webhook URL set for the first time gets a secret,
    shown in this answer only."""
    command = do.CorrectUnit(unit_id=unit_id, **body.model_dump(exclude_unset=True))
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.correct_unit(tx, command, principal),
        present=lambda recorded: StoredResponse.of(UnitWithSecretOut.recorded(recorded)),
    )


@router.post("/units/{unit_id}/webhook-secret", response_model=WebhookSecretOut)
async def rotate_unit_webhook_secret(
    unit_id: str, request: Request, principal: CurrentPrincipal, runtime: Runtime
) -> JSONResponse:
    """A new webhook secret (admin or the unit); deliveries are signed with it at once."""
    command = do.RotateUnitSecret(unit_id=unit_id)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.rotate_unit_secret(tx, command, principal),
        present=lambda recorded: StoredResponse.of(WebhookSecretOut.recorded(recorded)),
    )


@router.patch("/volunteers/{volunteer_id}", response_model=VolunteerWithSecretOut)
async def correct_volunteer(
    volunteer_id: str,
    body: VolunteerPatch,
    request: Request,
    principal: CurrentPrincipal,
    runtime: Runtime,
) -> JSONResponse:
    """Correct a volunteer's record (admin, or their community's secretary)."""
    command = do.CorrectVolunteer(volunteer_id=volunteer_id, **body.model_dump(exclude_unset=True))
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.correct_volunteer(tx, command, principal),
        present=lambda recorded: StoredResponse.of(VolunteerWithSecretOut.recorded(recorded)),
    )


@router.post("/volunteers/{volunteer_id}/webhook-secret", response_model=WebhookSecretOut)
async def rotate_volunteer_webhook_secret(
    volunteer_id: str, request: Request, principal: CurrentPrincipal, runtime: Runtime
) -> JSONResponse:
    command = do.RotateVolunteerSecret(volunteer_id=volunteer_id)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.rotate_volunteer_secret(tx, command, principal),
        present=lambda recorded: StoredResponse.of(WebhookSecretOut.recorded(recorded)),
    )


@router.delete("/volunteers/{volunteer_id}", status_code=204)
async def erase_volunteer(
    volunteer_id: str,
    request: Request,
    principal: CurrentPrincipal,
    runtime: Runtime,
    zone: WeekZone,
) -> Response:
    """Erase a volunteer (admin, or their community's secretary): their name, building and
    contact leave every service; their open places are given back; `volunteer.erased` says
    so in the history, by id only. Repeating it answers 204 again."""
    command = do.EraseVolunteer(volunteer_id=volunteer_id)
    await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.erase_volunteer(tx, command, principal, zone),
        present=lambda _: StoredResponse(204, None, {}),
    )
    return Response(status_code=204)  # no body at all (a JSON `null` would be one)


@router.get("/volunteers/{volunteer_id}", response_model=VolunteerOut)
async def get_volunteer(
    volunteer_id: str, principal: CurrentPrincipal, runtime: Runtime
) -> VolunteerOut:
    volunteer = await queries.volunteer_for(runtime.db, volunteer_id, principal)
    shown = VolunteerOut.of(volunteer)
    if not access.may_read_health(principal, volunteer):
        shown = shown.model_copy(update={"birth_year": None, "risk_factors": []})
    return shown


@router.get("/communities/{community_id}", response_model=CommunityOut)
async def get_community(community_id: str, _: CurrentPrincipal, runtime: Runtime) -> CommunityOut:
    """Units' copy of a community (from `community.registered`)."""
    community = await queries.community(runtime.db, community_id)
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
    page = await queries.open_demands(
        runtime.db,
        principal,
        community_id=community_id,
        skill=rules.normalise_skills([skill])[0] if skill and skill.strip() else None,
        limit=limit,
        after=_decode_cursor(cursor) if cursor else None,
    )
    return OpenDemandsOut(
        items=[
            OpenDemandOut.of(demand, page.details.get(demand.id), full=not page.withheld)
            for demand in page.demands
        ],
        next_cursor=_encode_cursor(page.next_key) if page.next_key else None,
    )


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
    command = do.ClaimDemand(demand_id=demand_id, **body.model_dump())
    try:
        response = await execute(
            runtime,
            request,
            principal,
            lambda tx: handle.claim(tx, command, principal, zone),
            present=lambda claim: StoredResponse.of(
                ClaimOut.of(claim),
                201 if claim.status == "accepted" else 202,
                {"Location": f"/v1/claims/{claim.id}"},
            ),
            serialise_on=demand_id,
        )
    except Exception as error:
        problem = error if isinstance(error, ProblemError) else problem_of(error, REFUSALS)
        if problem is not None:
            CLAIMS_DECIDED.labels(problem.slug).inc()
        raise
    CLAIMS_DECIDED.labels("accepted" if response.status_code == 201 else "waitlisted").inc()
    return response


def _claim_answer(claim: Claim) -> StoredResponse:
    return StoredResponse.of(ClaimOut.of(claim))


@router.post("/claims/{claim_id}/withdraw", response_model=ClaimOut)
async def withdraw_claim(
    claim_id: str,
    request: Request,
    principal: CurrentPrincipal,
    runtime: Runtime,
    zone: WeekZone,
    body: WithdrawIn | None = None,
) -> JSONResponse:
    command = do.WithdrawClaim(claim_id=claim_id, **(body or WithdrawIn()).model_dump())
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.withdraw(tx, command, principal, zone),
        present=_claim_answer,
        # A withdrawal writes the demand's count too: it queues with the demand's claims.
        serialise_on=lambda: queries.demand_of_claim(runtime.db, claim_id),
    )


@router.post("/claims/{claim_id}/check-in", response_model=ClaimOut)
async def check_in(
    claim_id: str, body: CheckInIn, request: Request, principal: CurrentPrincipal, runtime: Runtime
) -> JSONResponse:
    command = do.CheckIn(claim_id=claim_id, **body.model_dump())
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.check_in(tx, command, principal),
        present=_claim_answer,
    )


@router.post("/claims/{claim_id}/complete", response_model=ClaimOut)
async def complete_claim(
    claim_id: str, body: CompleteIn, request: Request, principal: CurrentPrincipal, runtime: Runtime
) -> JSONResponse:
    command = do.CompleteClaim(claim_id=claim_id, **body.model_dump())
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.complete(tx, command, principal),
        present=_claim_answer,
    )


@router.get("/claims", response_model=ClaimsOut)
async def list_claims(
    principal: CurrentPrincipal,
    runtime: Runtime,
    demand_id: Annotated[str | None, Query(max_length=200)] = None,
    claimant_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> ClaimsOut:
    claims = await queries.claims_for(
        runtime.db, principal, demand_id=demand_id, claimant_id=claimant_id, limit=limit
    )
    return ClaimsOut(items=[ClaimOut.of(claim) for claim in claims])


@router.get("/claims/{claim_id}", response_model=ClaimOut)
async def get_claim(claim_id: str, principal: CurrentPrincipal, runtime: Runtime) -> ClaimOut:
    return ClaimOut.of(await queries.claim_for(runtime.db, claim_id, principal))


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
    return _code_out(
        *await runtime.uow.run(lambda tx: queries.check_in_code(tx, demand_id, principal))
    )


@router.post("/demands/{demand_id}/check-in-code/rotate", response_model=CheckInCodeOut)
async def rotate_check_in_code(
    demand_id: str, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    command = do.RotateCheckInCode(demand_id=demand_id)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.rotate_check_in_code(tx, command, principal),
        present=lambda rotated: StoredResponse.of(_code_out(*rotated)),
    )


@router.post(
    "/demands/{demand_id}/eligibility-overrides",
    status_code=201,
    response_model=EligibilityOverrideOut,
)
async def grant_eligibility_override(
    demand_id: str,
    body: EligibilityOverrideIn,
    request: Request,
    principal: Secretary,
    runtime: Runtime,
) -> JSONResponse:
    """Let one volunteer make one claim on this demand past the eligibility rule (a
    secretary of its community, with a reason): their next claim on it consumes the grant.
    Audited as `claim.eligibility_overridden`, which names the rule, never why it applied."""
    command = do.GrantEligibilityOverride(demand_id=demand_id, **body.model_dump())
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.grant_eligibility_override(tx, command, principal),
        present=lambda override: StoredResponse.of(
            EligibilityOverrideOut.model_validate(override.model_dump()), 201
        ),
    )
