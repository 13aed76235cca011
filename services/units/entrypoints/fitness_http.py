"""`GET /v1/demands/{id}/fitness`: the volunteer's fatigue limits and this shift, before a
claim (`handlers/fitness.py`)."""

from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from services.units.config import UnitsSettings
from services.units.domain import rules
from services.units.entrypoints.problems import REFUSALS
from services.units.handlers import fitness as handle
from shared.auth import Principal, Role, require_roles
from shared.http.dependencies import Runtime
from shared.http.problems import problem_of

router = APIRouter(prefix="/v1", tags=["units"])

Volunteer = Annotated[Principal, require_roles(Role.VOLUNTEER)]


async def _zone(request: Request) -> ZoneInfo:
    settings: UnitsSettings = request.app.state.settings
    return settings.week_zone


class LimitsOut(BaseModel):
    max_hours_per_day: float  # in any 24 hours
    min_rest_hours: float  # between two working periods
    max_consecutive_days: int
    max_hours_per_week: float
    night_weight: float  # a night hour (22:00-06:00) counts this much toward the caps
    night_starts: str
    night_ends: str
    # Shifts less than this apart are one working period.
    same_period_gap_hours: float


class ShiftOut(BaseModel):
    hours: float
    weighted_hours: float
    night_hours: float


class FitnessOut(BaseModel):
    """The fatigue limits that apply to the volunteer, what this shift counts toward them,
    and `would_refuse`: the problem a claim now would be refused with (None: it would pass
    these rules; the claim itself still decides, with skills, slots and reach)."""

    volunteer_id: str
    demand_id: str
    limits: LimitsOut
    shift: ShiftOut
    would_refuse: dict[str, Any] | None


@router.get("/demands/{demand_id}/fitness", response_model=FitnessOut)
async def demand_fitness(
    demand_id: str,
    principal: Volunteer,
    runtime: Runtime,
    zone: Annotated[ZoneInfo, Depends(_zone)],
) -> FitnessOut:
    """Before claiming (the volunteer): the limits that apply to them (their own, else their
    community's), this shift's hours (night hours weighted) and why a claim now would be
    refused, if it would (the claim's own problem: `daily-hours-exceeded`,
    `rest-too-short`, `too-many-consecutive-days`, `hours-exceeded`, `overlapping-shift`,
    `not-eligible`)."""
    found = await handle.fitness(runtime.db, principal, demand_id, zone)
    problem = problem_of(found.refusal, REFUSALS) if found.refusal is not None else None
    return FitnessOut(
        volunteer_id=found.volunteer.id,
        demand_id=demand_id,
        limits=LimitsOut(
            max_hours_per_day=found.limits.max_hours_per_day,
            min_rest_hours=found.limits.min_rest_hours,
            max_consecutive_days=found.limits.max_consecutive_days,
            max_hours_per_week=found.volunteer.max_hours_per_week,
            night_weight=rules.NIGHT_WEIGHT,
            night_starts=rules.NIGHT_STARTS.strftime("%H:%M"),
            night_ends=rules.NIGHT_ENDS.strftime("%H:%M"),
            same_period_gap_hours=rules.SAME_PERIOD_GAP.total_seconds() / 3600,
        ),
        shift=ShiftOut(
            hours=found.hours, weighted_hours=found.weighted_hours, night_hours=found.night_hours
        ),
        would_refuse=problem.body() if problem is not None else None,
    )
