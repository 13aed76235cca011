"""Dispatch's commands, one small frozen model each, checked on the way in.

The HTTP bodies of registering a community and of the whistle are these models themselves
(`entrypoints/schemas.py`); the closing and editing commands add what the route knows: the
demand's id and the versions If-Match admits.
"""

from datetime import timedelta
from typing import Annotated, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from shared.clock import utcnow
from shared.events.catalogue import (
    DEFAULT_MAX_CONSECUTIVE_DAYS,
    DEFAULT_MAX_HOURS_PER_DAY,
    DEFAULT_MIN_REST_HOURS,
    DemandKind,
    Exposure,
    Priority,
)

# Far enough for any real shift; bounds the timers' arithmetic well inside the calendar.
MAX_AHEAD = timedelta(days=5 * 366)

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Slots = Annotated[int, Field(ge=1, le=1000)]


def normalise_skills(skills: list[str]) -> list[str]:
    # "First Aid " and "first aid" are one skill; order and duplicates carry no meaning.
    return sorted({" ".join(skill.split()).lower() for skill in skills if skill.strip()})


Skills = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=50),
    AfterValidator(normalise_skills),
]
# The versions If-Match admits (strongly matched entity tags); None: no precondition.
Expected = frozenset[int] | None


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RegisterCommunity(Command):
    id: Identifier
    name: Name
    street: Identifier
    district: Identifier
    # Seconds an unfilled demand waits at the street before the district hears of it.
    escalation_step_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] | None = None
    # Fatigue limits of its volunteers (each overridable per volunteer in units); night
    # hours (22:00-06:00) count 1.5x toward the caps.
    max_hours_per_day: Annotated[float, Field(strict=True, gt=0, le=24)] = DEFAULT_MAX_HOURS_PER_DAY
    min_rest_hours: Annotated[float, Field(strict=True, ge=0, le=72)] = DEFAULT_MIN_REST_HOURS
    max_consecutive_days: Annotated[int, Field(strict=True, ge=1, le=366)] = (
        DEFAULT_MAX_CONSECUTIVE_DAYS
    )


class ChangeCommunityLimits(Command):
    """New fatigue limits for a community's volunteers; the fields given replace the old."""

    community_id: str
    max_hours_per_day: Annotated[float, Field(strict=True, gt=0, le=24)] | None = None
    min_rest_hours: Annotated[float, Field(strict=True, ge=0, le=72)] | None = None
    max_consecutive_days: Annotated[int, Field(strict=True, ge=1, le=366)] | None = None


class LocationIn(Command):
    grid: str | None = Field(None, max_length=64)
    building: str | None = Field(None, max_length=64)
    address: str | None = Field(None, max_length=300)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class PublishDemand(Command):
    """The whistle."""

    community_id: Identifier
    kind: DemandKind
    title: Title
    description: Annotated[str, Field(max_length=4000)] | None = None
    location: LocationIn = LocationIn()
    skills: Skills = []
    slots: Slots
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    fill_by: AwareDatetime | None = None
    priority: Priority = "routine"
    # `high` is kept from volunteers aged 60+ or with a declared risk factor (units decides).
    exposure: Exposure = "low"

    @model_validator(mode="after")
    def _times_in_order(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.fill_by is not None and self.fill_by > self.starts_at:
            raise ValueError("fill_by must not be after starts_at")
        if self.ends_at > utcnow() + MAX_AHEAD:
            raise ValueError("ends_at must be within 5 years")
        return self


class CancelDemand(Command):
    demand_id: str
    reason: str
    expected: Expected = None


class CompleteDemand(Command):
    demand_id: str
    summary: str | None = None
    expected: Expected = None


class DemandChanges(Command):
    """What a secretary may edit on an open demand; a field left out stays as it is."""

    title: Title | None = None
    slots: Slots | None = None
    priority: Priority | None = None
    skills: Skills | None = None
    fill_by: AwareDatetime | None = None

    @model_validator(mode="after")
    def _fill_by_in_the_calendar(self) -> Self:
        # The rules compare it with the demand's times; this bounds it well inside the
        # calendar first (a year-1 date with an offset has no UTC instant).
        if self.fill_by is not None and abs(self.fill_by - utcnow()) > MAX_AHEAD:
            raise ValueError("fill_by must be within 5 years of now")
        return self


EDITABLE: tuple[str, ...] = tuple(DemandChanges.model_fields)


class UpdateDemand(Command):
    demand_id: str
    changes: DemandChanges
    expected: Expected = None


# --- series (a demand template with a recurrence rule; see `domain/series.py`) --------------

Rrule = Annotated[str, Field(min_length=1, max_length=500)]
# Days ahead of each occurrence's start that its demand is published: a fraction is allowed
# (a horizon of hours); a year at most.
HorizonDays = Annotated[float, Field(strict=False, gt=0, le=366)]
TimeZoneName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+/-]+$")]


class CreateSeries(PublishDemand):
    """A demand template and its rule: `starts_at`/`ends_at` (and `fill_by`) are the first
    occurrence's, the rule's DTSTART in the series' time zone."""

    rrule: Rrule
    horizon_days: HorizonDays = 7.0
    # The community's time zone, which the rule's local hours are read in; None: the
    # service's (`WHISTLE_TIMEZONE`, Asia/Shanghai by default).
    timezone: TimeZoneName | None = None

    @model_validator(mode="after")
    def _starts_in_the_calendar(self) -> Self:
        # A series may start in the past (its past occurrences are not published), but not
        # so far that the arithmetic of its zone leaves the calendar.
        if abs(self.starts_at - utcnow()) > MAX_AHEAD:
            raise ValueError("starts_at must be within 5 years of now")
        return self


class SeriesChanges(Command):
    """What an edit of the rest of a series may change; a field left out stays as it is."""

    title: Title | None = None
    description: Annotated[str, Field(max_length=4000)] | None = None
    location: LocationIn | None = None
    skills: Skills | None = None
    slots: Slots | None = None
    priority: Priority | None = None
    exposure: Exposure | None = None
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    rrule: Rrule | None = None
    horizon_days: HorizonDays | None = None

    @model_validator(mode="after")
    def _in_the_calendar(self) -> Self:
        for moment in (self.starts_at, self.ends_at):
            if moment is not None and abs(moment - utcnow()) > MAX_AHEAD:
                raise ValueError("starts_at and ends_at must be within 5 years of now")
        return self


class UpdateSeries(Command):
    series_id: str
    changes: SeriesChanges


class CancelSeries(Command):
    series_id: str
    reason: str
