"""Every refusal units gives, with the contract's slug and a detail that says why."""

from collections.abc import Sequence
from datetime import datetime

from services.units.domain.model import Claim, ClaimStatus, Demand
from services.units.domain.rules import WeekOverCap
from shared.http.problems import ProblemError


def not_found(kind: str, identifier: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not found", f"no {kind} '{identifier}'")


def demand_full(demand: Demand, headcount: int) -> ProblemError:
    return ProblemError(
        409,
        "demand-full",
        "Demand full",
        f"demand '{demand.id}' has {demand.remaining} of {demand.slots} places left and this "
        f'claim needs {headcount}; send "waitlist": true to wait for a place',
    )


def demand_closed(demand: Demand) -> ProblemError:
    why = demand.status if demand.status != "open" else f"over (it ended at {demand.ends_at})"
    return ProblemError(
        409, "demand-closed", "Demand closed", f"demand '{demand.id}' is {why}: no more claims"
    )


def already_claimed(existing: Claim) -> ProblemError:
    return ProblemError(
        409,
        "already-claimed",
        "Already claimed",
        f"this claimant already holds claim '{existing.id}' ({existing.status}) on demand "
        f"'{existing.demand_id}'",
    )


def too_many_claims(demand_id: str, limit: int) -> ProblemError:
    return ProblemError(
        409,
        "too-many-claims",
        "Too many claims",
        f"this claimant has already claimed demand '{demand_id}' {limit} times (a claim "
        f"withdrawn counts too); at most {limit} claims per claimant and demand",
    )


def skills_missing(missing: Sequence[str]) -> ProblemError:
    return ProblemError(
        422,
        "skills-missing",
        "Skills missing",
        f"the demand needs skills the claimant does not have: {', '.join(missing)}",
        errors=[
            {"loc": ["skills"], "msg": f"missing: {skill}", "type": "skills_missing"}
            for skill in missing
        ],
    )


def overlapping_shift(other: Claim) -> ProblemError:
    return ProblemError(
        409,
        "overlapping-shift",
        "Overlapping shift",
        f"the volunteer already has claim '{other.id}' on demand '{other.demand_id}' from "
        f"{other.starts_at.isoformat()} to {other.ends_at.isoformat()}, which overlaps this one",
    )


def hours_exceeded(over: WeekOverCap) -> ProblemError:
    return ProblemError(
        409,
        "hours-exceeded",
        "Weekly hours exceeded",
        f"this shift would bring the volunteer to {over.hours:g} hours in week {over.week}, "
        f"over the cap of {over.cap:g} hours a week",
    )


def out_of_reach(demand: Demand) -> ProblemError:
    return ProblemError(
        403,
        "forbidden",
        "Forbidden",
        f"demand '{demand.id}' of community '{demand.community_id}' (whistle at the "
        f"{demand.level} level) is not one this claimant serves",
    )


def invalid_claim_state(claim: Claim, action: str, allowed: Sequence[ClaimStatus]) -> ProblemError:
    return ProblemError(
        409,
        "invalid-claim-state",
        "Invalid claim state",
        f"claim '{claim.id}' is {claim.status}; {action} needs it {' or '.join(allowed)}",
    )


def check_in_closed(demand: Demand, opens: datetime) -> ProblemError:
    return ProblemError(
        409,
        "check-in-closed",
        "Check-in closed",
        f"check-in for demand '{demand.id}' is open from {opens.isoformat()} to "
        f"{demand.ends_at.isoformat()}",
    )


def wrong_check_in_code() -> ProblemError:
    return ProblemError(
        422,
        "wrong-check-in-code",
        "Wrong check-in code",
        "the code does not match the demand's on-site code; ask the secretary on site",
    )


def reason_required(demand: Demand) -> ProblemError:
    return ProblemError(
        422,
        "reason-required",
        "Reason required",
        f"demand '{demand.id}' starts at {demand.starts_at.isoformat()}: withdrawing within "
        'the last hour before the start needs a "reason"',
    )


def invalid_claim(detail: str, field: str) -> ProblemError:
    return ProblemError(
        422,
        "validation-error",
        "Unprocessable content",
        detail,
        errors=[{"loc": ["body", field], "msg": detail, "type": "value_error"}],
    )


def unknown_community(community_id: str, field: str) -> ProblemError:
    return ProblemError(
        422,
        "unknown-community",
        "Unknown community",
        f"community '{community_id}' is not registered",
        errors=[{"loc": ["body", field], "msg": "unknown community", "type": "unknown_community"}],
    )


def erased(volunteer_id: str) -> ProblemError:
    # 410: the id was real, its record is gone for good (DELETE answers 204 again).
    return ProblemError(
        410,
        "volunteer-erased",
        "Volunteer erased",
        f"volunteer '{volunteer_id}' was erased: only the id remains, in the history",
    )


def no_webhook(kind: str, identifier: str) -> ProblemError:
    return ProblemError(
        409,
        "no-webhook",
        "No webhook",
        f"{kind} '{identifier}' has no webhook_url: set one (PATCH) and it gets a secret",
    )
