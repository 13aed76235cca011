"""Units' routes for roster turns and named rosters (issue 14): a unit accepts a turn a
roster committed it to or hands it back, and names the people it sends until check-in."""

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from services.units.domain import commitments as do
from services.units.domain.model import Claim
from services.units.entrypoints.http import WeekZone
from services.units.entrypoints.schemas import ClaimOut, MembersIn, Strict
from services.units.handlers import commitments as handle
from services.units.handlers import queries
from shared.auth import Principal, Role, require_roles
from shared.http.commands import execute
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse

router = APIRouter(prefix="/v1", tags=["units"])

UnitAccount = Annotated[Principal, require_roles(Role.UNIT)]
MemberName = Annotated[str, Field(min_length=1, max_length=100)]


class HandBackIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=1000)] | None = None


class SubstituteIn(Strict):
    member: MemberName  # the person named who will not come
    substitute: MemberName  # who comes in their place


def _claim_answer(claim: Claim) -> StoredResponse:
    return StoredResponse.of(ClaimOut.of(claim))


@router.post("/claims/{claim_id}/accept", response_model=ClaimOut)
async def accept_commitment(
    claim_id: str, request: Request, principal: UnitAccount, runtime: Runtime
) -> JSONResponse:
    """The unit takes on a turn a roster committed it to (`claim.commitment_accepted`)."""
    command = do.AcceptCommitment(claim_id=claim_id)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.accept_commitment(tx, command, principal),
        present=_claim_answer,
    )


@router.post("/claims/{claim_id}/hand-back", response_model=ClaimOut)
async def hand_back(
    claim_id: str,
    request: Request,
    principal: UnitAccount,
    runtime: Runtime,
    zone: WeekZone,
    body: HandBackIn | None = None,
) -> JSONResponse:
    """The unit gives a roster's turn back: the claim is withdrawn, its places reopen and the
    demand escalates as any other if nobody takes them."""
    command = do.HandBack(claim_id=claim_id, reason=(body or HandBackIn()).reason)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.hand_back(tx, command, principal, zone),
        present=_claim_answer,
        serialise_on=lambda: queries.demand_of_claim(runtime.db, claim_id),
    )


@router.put("/claims/{claim_id}/members", response_model=ClaimOut)
async def name_members(
    claim_id: str, body: MembersIn, request: Request, principal: UnitAccount, runtime: Runtime
) -> JSONResponse:
    """Name the people the unit sends (replacing those named before), at most the claim's
    headcount (422), until check-in (409 `members-fixed`). The names stay in units: the
    audited `claim.members_named` carries their count and a salted digest."""
    command = do.NameMembers(claim_id=claim_id, members=tuple(body.members))
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.name_members(tx, command, principal),
        present=_claim_answer,
    )


@router.post("/claims/{claim_id}/members/substitute", response_model=ClaimOut)
async def substitute_member(
    claim_id: str, body: SubstituteIn, request: Request, principal: UnitAccount, runtime: Runtime
) -> JSONResponse:
    """Send one person in place of another named one, until check-in (409 `members-fixed`);
    `claim.member_substituted` carries the count and digest, never a name."""
    command = do.SubstituteMember(claim_id=claim_id, member=body.member, substitute=body.substitute)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.substitute_member(tx, command, principal),
        present=_claim_answer,
    )
