"""Units' refusals as problems: one table, refusal class -> (status, problem type, title).

The slug is the contract (docs/contract.md lists each); the detail (`str(refusal)`) and, for
a field, `errors` come from the refusal itself (`domain/refusals.py`).
"""

from services.units.domain import commitments
from services.units.domain import refusals as no
from shared.http.problems import Refusal, RefusalTable

REFUSALS: RefusalTable = {
    no.Forbidden: Refusal(403, "forbidden", "Forbidden"),
    no.OutOfReach: Refusal(403, "forbidden", "Forbidden"),
    no.DemandFull: Refusal(409, "demand-full", "Demand full"),
    no.DemandClosed: Refusal(409, "demand-closed", "Demand closed"),
    no.AlreadyClaimed: Refusal(409, "already-claimed", "Already claimed"),
    no.TooManyClaims: Refusal(409, "too-many-claims", "Too many claims"),
    no.OverlappingShift: Refusal(409, "overlapping-shift", "Overlapping shift"),
    no.HoursExceeded: Refusal(409, "hours-exceeded", "Weekly hours exceeded"),
    no.DailyHoursExceeded: Refusal(409, "daily-hours-exceeded", "Daily hours exceeded"),
    no.RestTooShort: Refusal(409, "rest-too-short", "Rest too short"),
    no.TooManyConsecutiveDays: Refusal(
        409, "too-many-consecutive-days", "Too many consecutive days"
    ),
    no.NotEligible: Refusal(409, "not-eligible", "Not eligible"),
    no.NotEligibleInZone: Refusal(409, "not-eligible", "Not eligible"),
    no.InvalidClaimState: Refusal(409, "invalid-claim-state", "Invalid claim state"),
    no.CheckInClosed: Refusal(409, "check-in-closed", "Check-in closed"),
    no.NoWebhook: Refusal(409, "no-webhook", "No webhook"),
    # 410: the id was real, its record is gone for good (DELETE answers 204 again).
    no.VolunteerErased: Refusal(410, "volunteer-erased", "Volunteer erased"),
    no.SkillsMissing: Refusal(422, "skills-missing", "Skills missing"),
    no.WrongCheckInCode: Refusal(422, "wrong-check-in-code", "Wrong check-in code"),
    no.ReasonRequired: Refusal(422, "reason-required", "Reason required"),
    no.InvalidClaim: Refusal(422, "validation-error", "Unprocessable content"),
    no.UnknownCommunity: Refusal(422, "unknown-community", "Unknown community"),
    commitments.NotCommitted: Refusal(409, "not-committed", "Not committed by a roster"),
    commitments.MembersFixed: Refusal(409, "members-fixed", "Members fixed at check-in"),
}
