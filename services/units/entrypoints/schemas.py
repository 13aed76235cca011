"""What units' HTTP side accepts and returns (the contract's units section)."""

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.units.domain.model import Claim, Demand, ServiceTotals, Unit, Volunteer
from services.units.domain.rules import normalise_skills
from services.units.handlers.commands import Recorded
from shared.events.catalogue import Claimant, Contact, Exposure, Location, RiskFactor, UnitKind

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Skills = Annotated[
    list[Annotated[str, Field(max_length=64)]],
    Field(max_length=50),
    AfterValidator(lambda skills: list(normalise_skills(skills))),
]
# Fatigue limits a volunteer may have of their own (None: their community's).
# strict: JSON `false` is not a number of hours (lax mode would read it as 0).
HoursPerDay = Annotated[float, Field(strict=True, gt=0, le=24)]
RestHours = Annotated[float, Field(strict=True, ge=0, le=72)]
ConsecutiveDays = Annotated[int, Field(strict=True, ge=1, le=366)]
BirthYear = Annotated[int, Field(strict=True, ge=1900, le=2100)]
RiskFactors = Annotated[list[RiskFactor], Field(max_length=5)]
Members = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=1000)
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ContactIn(Strict):
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str | None = Field(None, max_length=32, pattern=r"^\+?[0-9 ()-]{3,32}$")
    webhook_url: str | None = Field(None, max_length=500, pattern=r"^https?://\S+$")


class UnitIn(Strict):
    name: Name
    kind: UnitKind
    communities: Annotated[list[Identifier], Field(min_length=1, max_length=100)]
    skills: Skills = []
    contact: ContactIn = ContactIn()


class VolunteerIn(Strict):
    name: Name
    community_id: Identifier
    building: Annotated[str, Field(max_length=64)] | None = None
    skills: Skills = []
    max_hours_per_week: Annotated[float, Field(gt=0, le=168)] = 40
    max_hours_per_day: HoursPerDay | None = None
    min_rest_hours: RestHours | None = None
    max_consecutive_days: ConsecutiveDays | None = None
    # Self-declared personal data (kept out of the audited log): who may take risky work.
    birth_year: BirthYear | None = None
    risk_factors: RiskFactors = []
    contact: ContactIn = ContactIn()


class UnitPatch(Strict):
    """A correction: the fields given replace the stored ones (`contact` as a whole)."""

    name: Name | None = None
    communities: Annotated[list[Identifier], Field(min_length=1, max_length=100)] | None = None
    skills: Skills | None = None
    contact: ContactIn | None = None


class VolunteerPatch(Strict):
    name: Name | None = None
    building: Annotated[str, Field(max_length=64)] | None = None
    skills: Skills | None = None
    max_hours_per_week: Annotated[float, Field(gt=0, le=168)] | None = None
    # null clears a volunteer's own limit (their community's applies again), or the year.
    max_hours_per_day: HoursPerDay | None = None
    min_rest_hours: RestHours | None = None
    max_consecutive_days: ConsecutiveDays | None = None
    birth_year: BirthYear | None = None
    risk_factors: RiskFactors | None = None
    contact: ContactIn | None = None


SHOWN_ONCE = (
    "HMAC key for `X-Whistle-Signature`, shown only in the answer that made it (registration, "
    "or the correction that first set a webhook_url); rotate to replace"
)


class UnitOut(BaseModel):
    id: str
    name: str
    kind: UnitKind
    communities: list[str]
    skills: list[str]
    contact: Contact
    created_at: datetime
    totals: ServiceTotals

    @classmethod
    def of(cls, unit: Unit, *, admin: bool = True) -> Self:
        """`admin=False`: without the webhook URL, which only admins are shown (it is where
        Whistle sends the unit's notifications, and may carry a receiver's token)."""
        out = cls.model_validate(unit.model_dump())
        if admin:
            return out
        return out.model_copy(
            update={"contact": out.contact.model_copy(update={"webhook_url": None})}
        )


class UnitWithSecretOut(UnitOut):
    """The answer that creates a webhook secret: the only time it is shown."""

    webhook_secret: str | None = Field(None, description=SHOWN_ONCE)

    @classmethod
    def recorded(cls, recorded: Recorded[Unit]) -> Self:
        return cls.model_validate(
            {**recorded.record.model_dump(), "webhook_secret": recorded.new_secret}
        )


class VolunteerOut(BaseModel):
    id: str
    name: str
    community_id: str
    building: str | None
    skills: list[str]
    max_hours_per_week: float
    max_hours_per_day: float | None = None
    min_rest_hours: float | None = None
    max_consecutive_days: int | None = None
    birth_year: int | None = None
    risk_factors: list[RiskFactor] = []
    contact: Contact
    created_at: datetime
    totals: ServiceTotals

    @classmethod
    def of(cls, volunteer: Volunteer) -> Self:
        return cls.model_validate(volunteer.model_dump())


class VolunteerWithSecretOut(VolunteerOut):
    webhook_secret: str | None = Field(None, description=SHOWN_ONCE)

    @classmethod
    def recorded(cls, recorded: Recorded[Volunteer]) -> Self:
        return cls.model_validate(
            {**recorded.record.model_dump(), "webhook_secret": recorded.new_secret}
        )


class WebhookSecretOut(BaseModel):
    id: str = Field(description="the unit or volunteer")
    webhook_secret: str = Field(description="the new key; the old one stops signing at once")

    @classmethod
    def recorded(cls, recorded: Recorded[Unit] | Recorded[Volunteer]) -> Self:
        assert recorded.new_secret is not None  # a rotation always makes one
        return cls(id=recorded.record.id, webhook_secret=recorded.new_secret)


class CommunityOut(BaseModel):
    id: str
    name: str
    street: str
    district: str


class OpenDemandOut(BaseModel):
    id: str
    community_id: str
    street: str
    district: str
    kind: str
    title: str
    description: str | None
    location: Location
    skills: list[str]
    slots: int
    filled: int
    remaining: int
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    priority: str
    level: str
    status: str
    exposure: Exposure = "low"
    # True when the exact place (address, building, coordinates) and the description are
    # withheld: a claimant sees them once its claim is accepted.
    details_withheld: bool = False

    @classmethod
    def of(
        cls, demand: Demand, details: Mapping[str, Any] | None = None, *, full: bool = True
    ) -> Self:
        """The demand, with its private details (`demand.details`) when units has them and
        the reader may see them (`full`); otherwise the grid and the title only."""
        values = {**demand.model_dump(), "filled": demand.accepted, "remaining": demand.remaining}
        if details is not None:
            values["description"] = details.get("description")
            values["location"] = details.get("location") or values["location"]
        out = cls.model_validate(values)
        if full:
            return out
        return out.model_copy(
            update={
                "description": None,
                "location": Location(grid=out.location.grid),
                "details_withheld": True,
            }
        )


class OpenDemandsOut(BaseModel):
    items: list[OpenDemandOut]
    next_cursor: str | None = None


class ClaimIn(Strict):
    headcount: Annotated[int, Field(ge=1, le=1000)] = 1
    members: Members | None = None
    waitlist: bool = False


class MembersIn(Strict):
    members: Members


class WithdrawIn(Strict):
    reason: Annotated[str, Field(min_length=1, max_length=1000)] | None = None


class CheckInIn(Strict):
    code: Annotated[str, Field(min_length=1, max_length=32)]
    # A unit names the people who reported (if it did not when claiming).
    members: Members | None = None


class CompleteIn(Strict):
    report: Annotated[str, Field(min_length=1, max_length=4000)]
    served: Annotated[int, Field(ge=0, le=1_000_000)] = 0


class ClaimOut(BaseModel):
    id: str
    demand_id: str
    community_id: str
    claimant: Claimant
    headcount: int
    members: list[str]
    status: str
    starts_at: datetime
    ends_at: datetime
    created_at: datetime
    checked_in_at: datetime | None
    completed_at: datetime | None
    withdrawn_at: datetime | None
    reason: str | None
    report: str | None
    served: int | None
    hours: float | None
    person_times: int | None
    # A relay roster's turn: the roster that committed the unit, and when the unit accepted.
    roster_id: str | None = None
    acknowledged_at: datetime | None = None

    @classmethod
    def of(cls, claim: Claim) -> Self:
        return cls.model_validate(claim.model_dump())


class ClaimsOut(BaseModel):
    items: list[ClaimOut]


class CheckInCodeOut(BaseModel):
    demand_id: str
    code: str
    opens_at: datetime
    closes_at: datetime


class EligibilityOverrideIn(Strict):
    volunteer_id: Identifier
    # Why this volunteer may go anyway; audited forever, so no health data in it.
    reason: Annotated[str, Field(min_length=1, max_length=500)]


class EligibilityOverrideOut(BaseModel):
    demand_id: str
    volunteer_id: str
    rule: str
    reason: str
    granted_by: str
    granted_at: datetime
