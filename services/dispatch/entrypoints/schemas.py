"""What dispatch's HTTP side accepts and returns (the contract's dispatch section)."""

from datetime import datetime, timedelta
from typing import Annotated, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from services.dispatch.domain.model import Community, Demand, Status
from shared.clock import utcnow
from shared.events.catalogue import DemandKind, Level, Location, Priority

# Far enough for any real shift; bounds the timers' arithmetic well inside the calendar.
MAX_AHEAD = timedelta(days=5 * 366)

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]


def _normalise_skills(skills: list[str]) -> list[str]:
    # "First Aid " and "first aid" are one skill; order and duplicates carry no meaning.
    return sorted({" ".join(skill.split()).lower() for skill in skills if skill.strip()})


Skills = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=50),
    AfterValidator(_normalise_skills),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommunityIn(Strict):
    id: Identifier
    name: Name
    street: Identifier
    district: Identifier
    # Seconds an unfilled demand waits at the street before the district hears of it.
    escalation_step_s: Annotated[float, Field(gt=0, le=7 * 24 * 3600)] | None = None


class CommunityOut(BaseModel):
    id: str
    name: str
    street: str
    district: str
    escalation_step_s: float | None = None

    @classmethod
    def of(cls, community: Community) -> Self:
        return cls.model_validate(community.model_dump())


class LocationIn(Strict):
    grid: str | None = Field(None, max_length=64)
    building: str | None = Field(None, max_length=64)
    address: str | None = Field(None, max_length=300)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class DemandIn(Strict):
    community_id: Identifier
    kind: DemandKind
    title: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(max_length=4000)] | None = None
    location: LocationIn = LocationIn()
    skills: Skills = []
    slots: Annotated[int, Field(ge=1, le=1000)]
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    fill_by: AwareDatetime | None = None
    priority: Priority = "routine"

    @model_validator(mode="after")
    def _times_in_order(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.fill_by is not None and self.fill_by > self.starts_at:
            raise ValueError("fill_by must not be after starts_at")
        if self.ends_at > utcnow() + MAX_AHEAD:
            raise ValueError("ends_at must be within 5 years")
        return self


class DemandOut(BaseModel):
    id: str
    community_id: str
    kind: DemandKind
    title: str
    description: str | None
    location: Location
    skills: list[str]
    slots: int
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    priority: Priority
    status: Status
    filled: int
    level: Level
    street: str
    district: str
    created_at: datetime
    created_by: str
    version: int
    started_at: datetime | None = None
    escalated_at: datetime | None = None
    closed_at: datetime | None = None
    cancel_reason: str | None = None
    summary: str | None = None
    # True when the exact place (address, building, coordinates) and the description are
    # withheld: a claimant sees them once their claim is accepted.
    details_withheld: bool = False

    @classmethod
    def of(cls, demand: Demand, *, full: bool = True) -> Self:
        out = cls.model_validate(demand.model_dump())
        return out if full else out.withheld()

    def withheld(self) -> Self:
        return self.model_copy(
            update={
                "description": None,
                "location": Location(grid=self.location.grid),
                "details_withheld": True,
            }
        )


class DemandPage(BaseModel):
    items: list[DemandOut]
    next_cursor: str | None


class CancelIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=1000)]

    @model_validator(mode="after")
    def _reason_says_something(self) -> Self:
        if not self.reason.strip():
            raise ValueError("reason must say why the demand is cancelled")
        return self


class CompleteIn(Strict):
    summary: Annotated[str, Field(max_length=4000)] | None = None
