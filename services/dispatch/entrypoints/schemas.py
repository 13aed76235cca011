"""What dispatch's HTTP side accepts and returns (the contract's dispatch section)."""

from datetime import datetime
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.dispatch.domain.commands import DemandChanges, PublishDemand, RegisterCommunity
from services.dispatch.domain.model import Community, Demand, Status
from shared.events.catalogue import DemandKind, Exposure, Level, Location, Priority, ZoneLevel


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommunityIn(RegisterCommunity):
    """A community to register (admin only); its id, street and district are three ids."""


class CommunityPatch(Strict):
    """New fatigue limits (admin); at least one, the others stay."""

    max_hours_per_day: Annotated[float, Field(strict=True, gt=0, le=24)] | None = None
    min_rest_hours: Annotated[float, Field(strict=True, ge=0, le=72)] | None = None
    max_consecutive_days: Annotated[int, Field(strict=True, ge=1, le=366)] | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if not any(value is not None for value in self.model_dump().values()):
            raise ValueError("give at least one of the limits")
        return self


class CommunityOut(BaseModel):
    id: str
    name: str
    street: str
    district: str
    escalation_step_s: float | None = None
    max_hours_per_day: float
    min_rest_hours: float
    max_consecutive_days: int
    version: int = 1

    @classmethod
    def of(cls, community: Community) -> Self:
        return cls.model_validate(community.model_dump())


class DemandIn(PublishDemand):
    """The whistle: a demand its community's secretary posts."""


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
    exposure: Exposure = "low"
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
    # The series this demand is an occurrence of, if any (`GET /v1/series/{id}`).
    series_id: str | None = None
    # True when the exact place (address, building, coordinates) and the description are
    # withheld: a claimant sees them once their claim is accepted.
    details_withheld: bool = False
    # The risk-zone level of its grid now (issue 13); null: no grid, or not rated.
    zone_level: ZoneLevel | None = None

    @classmethod
    def of(cls, demand: Demand, *, full: bool = True, zone_level: ZoneLevel | None = None) -> Self:
        out = cls.model_validate({**demand.model_dump(), "zone_level": zone_level})
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


class DemandPatch(DemandChanges):
    """A secretary's edit of an open demand: the fields to change, at least one; a field
    left out stays as it is (null is not a value any of them takes)."""

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("name at least one of: " + ", ".join(DemandChanges.model_fields))
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null: leave a field out to keep it")
        return self
