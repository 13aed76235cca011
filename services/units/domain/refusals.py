"""Every refusal units gives, one exception each, carrying what its problem says.

A handler raises one inside its unit of work, which aborts the transaction: a refused command
stores nothing and publishes nothing. `entrypoints/problems.py` maps each class to its
status and problem type; the detail (and, for a field, `errors`) comes from here.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from services.units.domain.model import Claim, ClaimStatus, Demand
from services.units.domain.rules import DayOverCap, ShortRest, TooManyDays, WeekOverCap


class Refusal(Exception):
    """A command or read refused by a rule; `detail` says why, in the caller's terms."""

    def __init__(self, detail: str, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        # Which fields were wrong, for the problem's `errors` (None: not about a field).
        self.errors = list(errors) if errors is not None else None


class Forbidden(Refusal):
    """The caller may not do or read this (domain/access.py said no)."""


class DemandFull(Refusal):
    def __init__(self, demand: Demand, headcount: int) -> None:
        super().__init__(
            f"demand '{demand.id}' has {demand.remaining} of {demand.slots} places left and "
            f'this claim needs {headcount}; send "waitlist": true to wait for a place'
        )


class DemandClosed(Refusal):
    def __init__(self, demand: Demand) -> None:
        why = demand.status if demand.status != "open" else f"over (it ended at {demand.ends_at})"
        super().__init__(f"demand '{demand.id}' is {why}: no more claims")


class AlreadyClaimed(Refusal):
    def __init__(self, existing: Claim) -> None:
        super().__init__(
            f"this claimant already holds claim '{existing.id}' ({existing.status}) on demand "
            f"'{existing.demand_id}'"
        )


class TooManyClaims(Refusal):
    def __init__(self, demand_id: str, limit: int) -> None:
        super().__init__(
            f"this claimant has already claimed demand '{demand_id}' {limit} times (a claim "
            f"withdrawn counts too); at most {limit} claims per claimant and demand"
        )


class SkillsMissing(Refusal):
    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(
            f"the demand needs skills the claimant does not have: {', '.join(missing)}",
            [
                {"loc": ["skills"], "msg": f"missing: {skill}", "type": "skills_missing"}
                for skill in missing
            ],
        )


class OverlappingShift(Refusal):
    def __init__(self, other: Claim) -> None:
        super().__init__(
            f"the volunteer already has claim '{other.id}' on demand '{other.demand_id}' from "
            f"{other.starts_at.isoformat()} to {other.ends_at.isoformat()}, which overlaps "
            "this one"
        )


class HoursExceeded(Refusal):
    def __init__(self, over: WeekOverCap) -> None:
        super().__init__(
            f"this shift would bring the volunteer to {over.hours:g} hours in week {over.week}, "
            f"over the cap of {over.cap:g} hours a week"
        )


def _shift(claim: Claim) -> dict[str, str]:
    """The shift a fatigue refusal collides with, as its problem's `collides_with` says it."""
    return {
        "claim_id": claim.id,
        "demand_id": claim.demand_id,
        "starts_at": claim.starts_at.isoformat(),
        "ends_at": claim.ends_at.isoformat(),
    }


def _named(claim: Claim) -> str:
    return (
        f"the shift of demand '{claim.demand_id}' from {claim.starts_at.isoformat()} to "
        f"{claim.ends_at.isoformat()}"
    )


def _fatigue(collides_with: Claim | None, **limit: object) -> dict[str, object]:
    """A fatigue refusal's problem members: the shift it collides with, and the limit."""
    return {
        "collides_with": _shift(collides_with) if collides_with is not None else None,
        **limit,
    }


class DailyHoursExceeded(Refusal):
    def __init__(self, over: DayOverCap) -> None:
        span = f"{over.window.starts_at.isoformat()} to {over.window.ends_at.isoformat()}"
        beside = (
            f" with {_named(over.collides_with)}"
            if over.collides_with is not None
            else " by itself"
        )
        super().__init__(
            f"this shift{beside} would bring the volunteer to {over.hours:g} hours in the 24 "
            f"hours from {span} (night hours count 1.5x), over the cap of {over.cap:g}"
        )
        self.extensions = _fatigue(over.collides_with, hours=over.hours, max_hours_per_day=over.cap)


class RestTooShort(Refusal):
    def __init__(self, short: ShortRest) -> None:
        super().__init__(
            f"this shift would leave the volunteer {short.rest_hours:g} hours of rest beside "
            f"{_named(short.collides_with)}; at least {short.min_rest_hours:g} hours between "
            "two working periods"
        )
        self.extensions = _fatigue(
            short.collides_with, rest_hours=short.rest_hours, min_rest_hours=short.min_rest_hours
        )


class TooManyConsecutiveDays(Refusal):
    def __init__(self, over: TooManyDays) -> None:
        super().__init__(
            f"this shift would make {over.days} days in a row with a shift from "
            f"{over.first_day.isoformat()} (beginning with {_named(over.collides_with)}); "
            f"at most {over.max_days}"
        )
        self.extensions = _fatigue(
            over.collides_with, days=over.days, max_consecutive_days=over.max_days
        )


class NotEligible(Refusal):
    def __init__(self, demand: Demand, rule: str) -> None:
        super().__init__(
            f"demand '{demand.id}' has high exposure, which the rule '{rule}' keeps from "
            "volunteers aged 60 or over (at the demand's start) or with a declared risk "
            "factor; a secretary of its community may grant one claim past it"
        )
        self.extensions: dict[str, object] = {"rule": rule}


class NotEligibleInZone(NotEligible):
    """The demand counts as high exposure because its grid's risk zone does (the
    community's zone rule): `not-eligible`, naming that rule and the level."""

    def __init__(self, demand: Demand, rule: str, level: str) -> None:
        Refusal.__init__(
            self,
            f"demand '{demand.id}' lies in a {level} risk zone, which the rule '{rule}' of "
            f"community '{demand.community_id}' treats as high exposure: it is kept from "
            "volunteers aged 60 or over (at the demand's start) or with a declared risk "
            "factor; a secretary of its community may grant one claim past it",
        )
        self.extensions = {"rule": rule, "zone_level": level}


class OutOfReach(Refusal):
    def __init__(self, demand: Demand) -> None:
        super().__init__(
            f"demand '{demand.id}' of community '{demand.community_id}' (whistle at the "
            f"{demand.level} level) is not one this claimant serves"
        )


class InvalidClaimState(Refusal):
    def __init__(self, claim: Claim, action: str, allowed: Sequence[ClaimStatus]) -> None:
        super().__init__(
            f"claim '{claim.id}' is {claim.status}; {action} needs it {' or '.join(allowed)}"
        )


class CheckInClosed(Refusal):
    def __init__(self, demand: Demand, opens: datetime) -> None:
        super().__init__(
            f"check-in for demand '{demand.id}' is open from {opens.isoformat()} to "
            f"{demand.ends_at.isoformat()}"
        )


class WrongCheckInCode(Refusal):
    def __init__(self) -> None:
        super().__init__(
            "the code does not match the demand's on-site code; ask the secretary on site"
        )


class ReasonRequired(Refusal):
    def __init__(self, demand: Demand) -> None:
        super().__init__(
            f"demand '{demand.id}' starts at {demand.starts_at.isoformat()}: withdrawing "
            'within the last hour before the start needs a "reason"'
        )


class InvalidClaim(Refusal):
    """A claim whose fields contradict each other or the claimant (a volunteer's headcount)."""

    def __init__(self, detail: str, field: str) -> None:
        super().__init__(detail, [{"loc": ["body", field], "msg": detail, "type": "value_error"}])


class UnknownCommunity(Refusal):
    def __init__(self, community_id: str, field: str) -> None:
        super().__init__(
            f"community '{community_id}' is not registered",
            [{"loc": ["body", field], "msg": "unknown community", "type": "unknown_community"}],
        )


class VolunteerErased(Refusal):
    def __init__(self, volunteer_id: str) -> None:
        super().__init__(
            f"volunteer '{volunteer_id}' was erased: only the id remains, in the history"
        )


class NoWebhook(Refusal):
    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(
            f"{kind} '{identifier}' has no webhook_url: set one (PATCH) and it gets a secret"
        )
