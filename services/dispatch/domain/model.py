"""Communities and demands as dispatch knows them: plain data, no I/O."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from services.dispatch.domain.claims import ClaimLedger
from services.dispatch.domain.lifecycle import Lifecycle, Status
from shared.events.catalogue import (
    DEFAULT_MAX_CONSECUTIVE_DAYS,
    DEFAULT_MAX_HOURS_PER_DAY,
    DEFAULT_MIN_REST_HOURS,
    DemandKind,
    Exposure,
    Level,
    Location,
    Priority,
)

__all__ = ["Community", "Demand", "Status"]


class Community(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    street: str
    district: str
    # How long an unfilled demand waits at the street before the district hears of it;
    # None: the service's default (`WHISTLE_ESCALATION_STEP_S`).
    escalation_step_s: float | None = None
    # Its volunteers' fatigue limits, announced in `community.registered` (units applies them).
    max_hours_per_day: float = DEFAULT_MAX_HOURS_PER_DAY
    min_rest_hours: float = DEFAULT_MIN_REST_HOURS
    max_consecutive_days: int = DEFAULT_MAX_CONSECUTIVE_DAYS
    # Counts changes of the limits (`community.updated` carries it: the highest wins).
    version: int = 1


class Demand(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    street: str
    district: str
    kind: DemandKind
    title: str
    description: str | None
    location: Location
    skills: tuple[str, ...]
    slots: int
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    priority: Priority
    status: Status
    exposure: Exposure = "low"
    filled: int
    level: Level
    created_at: datetime
    created_by: str
    version: int
    started_at: datetime | None = None
    closed_at: datetime | None = None
    escalated_at: datetime | None = None
    cancel_reason: str | None = None
    summary: str | None = None
    # The pending escalation timer's key, so closing or starting the demand can cancel it.
    escalation_timer: str | None = None
    # Keys `details_digest` of `demand.published` (see `shared.events.digest`); never shown.
    details_salt: str | None = None
    # The series this demand is an occurrence of (`domain/series.py`), if any.
    series_id: str | None = None
    ledger: ClaimLedger = ClaimLedger()

    @property
    def lifecycle(self) -> Lifecycle:
        return Lifecycle(self.status, self.filled, self.slots)
