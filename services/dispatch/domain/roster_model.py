"""Relay rosters as dispatch keeps them (issue 14): the secretary's request, the proposed
rotation, and once confirmed the demand of each turn. Plain data and the command's checks.
"""

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from services.dispatch.domain.commands import (
    Identifier,
    LocationIn,
    Skills,
    Slots,
    Title,
)
from services.dispatch.domain.roster import ExclusionReason, UnassignedReason
from shared.events.catalogue import Exposure, Priority, UnitKind

RosterStatus = Literal["proposed", "confirmed"]
# A month of "one branch a day" and then some; bounds the demands one confirmation publishes.
MAX_ROSTER_DAYS = 92
MAX_ROSTER_UNITS = 200
DEFAULT_ZONE = "Asia/Shanghai"


class KnownUnit(BaseModel):
    """A unit as dispatch projects it from units' registry events (no contact: none is in
    them): what a roster needs to choose it."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    kind: UnitKind
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()
    version: int = 1


class BlockedDays(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    unit_id: Identifier
    days: Annotated[list[date], Field(max_length=MAX_ROSTER_DAYS)]


class ProposeRoster(BaseModel):
    """A relay: one of `units` per day from `first_day` to `last_day`, each turn a demand of
    `people_per_turn` from `shift_start` to `shift_end` (local time in `timezone`; an end at
    or before the start is the next morning)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    community_id: Identifier
    title: Title = "Relay duty"
    units: Annotated[list[Identifier], Field(min_length=1, max_length=MAX_ROSTER_UNITS)]
    first_day: date
    last_day: date
    shift_start: time
    shift_end: time
    timezone: Annotated[str, Field(max_length=64)] = DEFAULT_ZONE
    people_per_turn: Slots
    skills: Skills = []
    blocked: Annotated[list[BlockedDays], Field(max_length=MAX_ROSTER_UNITS)] = []
    priority: Priority = "routine"
    exposure: Exposure = "low"
    location: LocationIn = LocationIn()
    description: Annotated[str, Field(max_length=4000)] | None = None
    # How long before its start a turn's demand is due to be filled: a turn handed back
    # later than this climbs the escalation ladder at once.
    fill_lead_hours: Annotated[float, Field(ge=0, le=14 * 24)] = 24

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @field_validator("shift_start", "shift_end")
    @classmethod
    def _naive_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a shift time is local to `timezone`: give it without an offset")
        return value

    @model_validator(mode="after")
    def _days_in_order(self) -> Self:
        if self.last_day < self.first_day:
            raise ValueError("last_day must not be before first_day")
        if (self.last_day - self.first_day).days + 1 > MAX_ROSTER_DAYS:
            raise ValueError(f"a roster covers at most {MAX_ROSTER_DAYS} days")
        listed = set(self.units)
        for entry in self.blocked:
            if entry.unit_id not in listed:
                raise ValueError(f"blocked names unit '{entry.unit_id}', which is not in units")
        return self

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The turn's start and end on `day`, in UTC."""
        zone = ZoneInfo(self.timezone)
        starts = datetime.combine(day, self.shift_start, zone)
        ends = datetime.combine(day, self.shift_end, zone)
        if ends <= starts:
            ends = datetime.combine(day + timedelta(days=1), self.shift_end, zone)
        return starts.astimezone(UTC), ends.astimezone(UTC)

    def blocked_of(self, unit_id: str) -> frozenset[date]:
        return frozenset(
            day for entry in self.blocked if entry.unit_id == unit_id for day in entry.days
        )


class RosterTurn(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: date
    unit_id: str
    starts_at: datetime
    ends_at: datetime
    demand_id: str | None = None  # once confirmed


class RosterGap(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: date
    reason: UnassignedReason


class RosterExclusion(BaseModel):
    model_config = ConfigDict(frozen=True)

    unit_id: str
    reason: ExclusionReason
    missing: tuple[str, ...] = ()


class Roster(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    request: ProposeRoster
    status: RosterStatus
    turns: tuple[RosterTurn, ...]
    unassigned: tuple[RosterGap, ...] = ()
    excluded: tuple[RosterExclusion, ...] = ()
    load: dict[str, int]
    created_at: datetime
    created_by: str
    confirmed_at: datetime | None = None
    confirmed_by: str | None = None
    version: int = 1
