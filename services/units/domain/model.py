"""What units knows: communities and demands (copied from dispatch's events), the registry of
units and volunteers, and claims. Plain data, no I/O."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.events.catalogue import (
    DEFAULT_MAX_CONSECUTIVE_DAYS,
    DEFAULT_MAX_HOURS_PER_DAY,
    DEFAULT_MIN_REST_HOURS,
    Claimant,
    Contact,
    DemandKind,
    Exposure,
    Level,
    Location,
    Priority,
    RiskFactor,
    UnitKind,
)

# Units' view of a demand: whether it still takes claims. Fullness is `accepted == slots`.
DemandStatus = Literal["open", "cancelled", "completed", "expired"]
ClaimStatus = Literal[
    "accepted", "waitlisted", "checked_in", "completed", "no_show", "withdrawn", "released"
]

# A claimant holds at most one claim in these states per demand (`already-claimed`).
# Claim, withdraw, claim again... at most this often per claimant and demand
# (`too-many-claims`): each cycle costs events, notifications and a place in the history.
MAX_CLAIMS_PER_DEMAND = 3
HOLDING_STATUSES: tuple[ClaimStatus, ...] = (
    "accepted",
    "waitlisted",
    "checked_in",
    "completed",
    "no_show",
)
# Claims that commit the claimant's time: the volunteer rules count these.
COMMITTED_STATUSES: tuple[ClaimStatus, ...] = ("accepted", "checked_in", "completed")
# Claims a cancellation releases.
RELEASABLE_STATUSES: tuple[ClaimStatus, ...] = ("accepted", "waitlisted", "checked_in")

PRIORITY_RANK: dict[Priority, int] = {"critical": 0, "urgent": 1, "routine": 2}


class Community(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    street: str
    district: str
    # The fatigue limits of its volunteers, unless a volunteer has their own.
    max_hours_per_day: float = DEFAULT_MAX_HOURS_PER_DAY
    min_rest_hours: float = DEFAULT_MIN_REST_HOURS
    max_consecutive_days: int = DEFAULT_MAX_CONSECUTIVE_DAYS
    # The version of the limits (`community.updated`'s): a late, older change never wins.
    version: int = 1


class Demand(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    street: str
    district: str
    kind: DemandKind
    title: str
    description: str | None = None
    location: Location = Location()
    skills: tuple[str, ...] = ()
    slots: int
    accepted: int = 0
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    priority: Priority
    level: Level = "community"
    status: DemandStatus = "open"
    exposure: Exposure = "low"

    @property
    def remaining(self) -> int:
        return max(0, self.slots - self.accepted)

    @property
    def is_full(self) -> bool:
        return self.accepted >= self.slots


class ServiceTotals(BaseModel):
    """What a claimant has given, summed over its completed claims."""

    model_config = ConfigDict(frozen=True)

    completed: int = 0
    person_times: int = 0
    hours: float = 0


class UnitProfile(BaseModel):
    """What a unit is, as registered and corrected: its name, communities, skills, contact."""

    model_config = ConfigDict(frozen=True)

    name: str
    kind: UnitKind
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()
    contact: Contact = Contact()


class VolunteerProfile(BaseModel):
    """Who a volunteer is, as registered and corrected (all of it personal but the skills)."""

    model_config = ConfigDict(frozen=True)

    name: str
    community_id: str
    building: str | None = None
    skills: tuple[str, ...] = ()
    max_hours_per_week: float = 40
    # Own fatigue limits; None: the community's.
    max_hours_per_day: float | None = None
    min_rest_hours: float | None = None
    max_consecutive_days: int | None = None
    contact: Contact = Contact()
    # Self-declared personal data (never in an audited event): who may take risky work.
    birth_year: int | None = None
    risk_factors: tuple[RiskFactor, ...] = ()


class Registered(BaseModel):
    """What units keeps of every claimant it registered, beside the profile."""

    model_config = ConfigDict(frozen=True)

    id: str
    created_at: datetime
    created_by: str
    totals: ServiceTotals = ServiceTotals()
    # Private, never in an API answer except the one that creates or rotates it: the key
    # notify signs this claimant's webhooks with; it reaches notify by `whistle.private`.
    webhook_secret: str | None = None
    # Keys the `details_digest` of the audited registry events (`shared.events.digest`).
    salt: str = ""
    # Counts corrections, so a late private update never overwrites a newer one.
    version: int = 1


class Unit(Registered, UnitProfile):
    pass


class Volunteer(Registered, VolunteerProfile):
    pass


class ErasedVolunteer(BaseModel):
    """What is left of an erased volunteer: the id and community, for the history."""

    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    erased_at: datetime
    erased_by: str


class Claim(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    demand_id: str
    community_id: str
    claimant: Claimant
    headcount: int
    members: tuple[str, ...] = ()
    # Keys `members_digest` in the audited claim events; the names stay here.
    members_salt: str = ""
    status: ClaimStatus
    # The demand's window, copied so a volunteer's shifts can be checked without the demands.
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    created_by: str
    checked_in_at: datetime | None = None
    completed_at: datetime | None = None
    withdrawn_at: datetime | None = None
    reason: str | None = None
    report: str | None = None
    served: int | None = None
    hours: float | None = None
    person_times: int | None = None
    # A relay roster's turn (issue 14): the roster that committed the unit to it, and when
    # the unit accepted the commitment (None: not yet; it may also hand the turn back).
    roster_id: str | None = None
    acknowledged_at: datetime | None = None


def claimant_key(claimant: Claimant) -> str:
    return f"{claimant.type}:{claimant.id}"


class EligibilityOverride(BaseModel):
    """One claim a secretary lets a volunteer make past an eligibility rule; the claim it
    lets through consumes it."""

    model_config = ConfigDict(frozen=True)

    demand_id: str
    volunteer_id: str
    rule: str
    reason: str
    granted_by: str
    granted_at: datetime
