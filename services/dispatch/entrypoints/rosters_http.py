"""Dispatch's relay-roster routes (issue 14): the units a roster may choose from, a proposal
for review, its confirmation into demands."""

from datetime import date, datetime
from typing import Annotated, Self

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from services.dispatch.adapters import rosters
from services.dispatch.domain import access, refusals
from services.dispatch.domain.roster_model import (
    KnownUnit,
    ProposeRoster,
    Roster,
    RosterExclusion,
    RosterGap,
    RosterStatus,
    RosterTurn,
)
from services.dispatch.handlers import rosters as handle
from shared.auth import Principal, Role, require_roles
from shared.events.catalogue import UnitKind
from shared.http.commands import execute
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse

router = APIRouter(prefix="/v1", tags=["dispatch"])

Secretary = Annotated[Principal, require_roles(Role.SECRETARY)]
Reader = Annotated[Principal, require_roles(Role.SECRETARY, Role.AUDITOR)]


class KnownUnitOut(BaseModel):
    id: str
    name: str
    kind: UnitKind
    communities: list[str]
    skills: list[str]

    @classmethod
    def of(cls, unit: KnownUnit) -> Self:
        return cls.model_validate(unit.model_dump(exclude={"version"}))


class KnownUnitsOut(BaseModel):
    items: list[KnownUnitOut]


class RosterOut(BaseModel):
    id: str
    community_id: str
    status: RosterStatus
    title: str
    first_day: date
    last_day: date
    people_per_turn: int
    skills: list[str]
    turns: list[RosterTurn]
    unassigned: list[RosterGap]
    excluded: list[RosterExclusion]
    # Turns per unit that may serve (0 included), in the order the units were listed.
    load: dict[str, int]
    request: ProposeRoster
    created_at: datetime
    created_by: str
    confirmed_at: datetime | None
    confirmed_by: str | None

    @classmethod
    def of(cls, roster: Roster) -> Self:
        request = roster.request
        return cls.model_validate(
            roster.model_dump()
            | {
                "title": request.title,
                "first_day": request.first_day,
                "last_day": request.last_day,
                "people_per_turn": request.people_per_turn,
                "skills": request.skills,
            }
        )


class RostersOut(BaseModel):
    items: list[RosterOut]


@router.get("/communities/{community_id}/units", response_model=KnownUnitsOut)
async def units_serving(community_id: str, principal: Secretary, runtime: Runtime) -> KnownUnitsOut:
    """The units serving the community, as units last said (a roster chooses among them)."""
    if not access.may_manage(principal, community_id):
        raise refusals.NotYours(f"only the secretary of community '{community_id}' lists its units")
    found = await rosters.units_serving(runtime.db, community_id)
    return KnownUnitsOut(items=[KnownUnitOut.of(unit) for unit in found])


@router.post("/rosters", status_code=201, response_model=RosterOut)
async def propose_roster(
    body: ProposeRoster, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    """Propose a relay roster (the community's secretary): one of `units` per day, the load
    spread evenly over those that serve the community, hold the skills and have not blocked
    the day; days no unit can serve are listed in `unassigned`. Stored for review as
    `proposed`; nothing is published until it is confirmed."""
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.propose_roster(tx, body, principal),
        present=lambda roster: StoredResponse.of(
            RosterOut.of(roster), 201, {"Location": f"/v1/rosters/{roster.id}"}
        ),
    )


@router.get("/rosters", response_model=RostersOut)
async def list_rosters(
    principal: Reader,
    runtime: Runtime,
    community_id: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> RostersOut:
    """A community's rosters, newest first (its secretary, an auditor or an admin)."""
    if not (access.may_manage(principal, community_id) or principal.role is Role.AUDITOR):
        raise refusals.NotYours(
            f"only the secretary of community '{community_id}' lists its rosters"
        )
    found = await rosters.rosters_of(runtime.db, community_id, limit)
    return RostersOut(items=[RosterOut.of(roster) for roster in found])


@router.get("/rosters/{roster_id}", response_model=RosterOut)
async def get_roster(roster_id: str, principal: Reader, runtime: Runtime) -> RosterOut:
    roster = await handle.roster_for(runtime.db, roster_id, principal)
    return RosterOut.of(roster)


@router.post("/rosters/{roster_id}/confirm", response_model=RosterOut)
async def confirm_roster(
    roster_id: str, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    """Confirm a proposed roster: one demand per turn is published, committed to its unit
    (units records the unit's claim on its behalf, which the unit accepts or hands back),
    then `roster.confirmed`. A roster is confirmed once (409 `roster-not-proposed`)."""
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handle.confirm_roster(tx, roster_id, principal),
        present=lambda roster: StoredResponse.of(RosterOut.of(roster)),
        serialise_on=roster_id,
    )
