"""What a caller asks units to do, one small model per command.

The HTTP side checks the shape of a request (`entrypoints/schemas.py`: lengths, patterns)
and builds one of these with the ids from the path; a handler decides on it.
"""

from pydantic import BaseModel, ConfigDict

from services.units.domain.model import UnitProfile, VolunteerProfile
from shared.events.catalogue import Contact, RiskFactor


class Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the registry ---------------------------------------------------------------------------


class RegisterUnit(Command, UnitProfile):
    pass


class RegisterVolunteer(Command, VolunteerProfile):
    pass


class CorrectUnit(Command):
    """The fields given replace the stored ones (`contact` as a whole)."""

    unit_id: str
    name: str | None = None
    communities: tuple[str, ...] | None = None
    skills: tuple[str, ...] | None = None
    contact: Contact | None = None


class CorrectVolunteer(Command):
    """As `CorrectUnit`; a `building` given as null clears it (see `model_fields_set`)."""

    volunteer_id: str
    name: str | None = None
    building: str | None = None
    skills: tuple[str, ...] | None = None
    max_hours_per_week: float | None = None
    max_hours_per_day: float | None = None
    min_rest_hours: float | None = None
    max_consecutive_days: int | None = None
    birth_year: int | None = None
    risk_factors: tuple[RiskFactor, ...] | None = None
    contact: Contact | None = None


class RotateUnitSecret(Command):
    unit_id: str


class RotateVolunteerSecret(Command):
    volunteer_id: str


class EraseVolunteer(Command):
    volunteer_id: str


# --- claims ---------------------------------------------------------------------------------


class ClaimDemand(Command):
    demand_id: str
    headcount: int = 1
    members: tuple[str, ...] | None = None
    # When full: wait for a place rather than be refused `demand-full`.
    waitlist: bool = False


class WithdrawClaim(Command):
    claim_id: str
    reason: str | None = None


class CheckIn(Command):
    claim_id: str
    code: str
    # A unit names the people who reported (if it did not when claiming).
    members: tuple[str, ...] | None = None


class CompleteClaim(Command):
    claim_id: str
    report: str
    served: int = 0


class RotateCheckInCode(Command):
    demand_id: str


class GrantEligibilityOverride(Command):
    """One claim of this volunteer on this demand past the eligibility rule."""

    demand_id: str
    volunteer_id: str
    reason: str
