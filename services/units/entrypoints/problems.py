"""Units' refusals as problems: one table, refusal class -> (status, problem type, title).

The slug is the contract (docs/contract.md lists each); the detail and `errors` come from the
refusal itself.
"""

from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.units.domain import refusals
from shared.http.problems import ProblemError, problem_response

REFUSALS: Mapping[type[refusals.Refusal], tuple[int, str, str]] = {
    refusals.NotFound: (404, "not-found", "Not found"),
    refusals.Forbidden: (403, "forbidden", "Forbidden"),
    refusals.OutOfReach: (403, "forbidden", "Forbidden"),
    refusals.DemandFull: (409, "demand-full", "Demand full"),
    refusals.DemandClosed: (409, "demand-closed", "Demand closed"),
    refusals.AlreadyClaimed: (409, "already-claimed", "Already claimed"),
    refusals.TooManyClaims: (409, "too-many-claims", "Too many claims"),
    refusals.OverlappingShift: (409, "overlapping-shift", "Overlapping shift"),
    refusals.HoursExceeded: (409, "hours-exceeded", "Weekly hours exceeded"),
    refusals.InvalidClaimState: (409, "invalid-claim-state", "Invalid claim state"),
    refusals.CheckInClosed: (409, "check-in-closed", "Check-in closed"),
    refusals.NoWebhook: (409, "no-webhook", "No webhook"),
    # 410: the id was real, its record is gone for good (DELETE answers 204 again).
    refusals.VolunteerErased: (410, "volunteer-erased", "Volunteer erased"),
    refusals.SkillsMissing: (422, "skills-missing", "Skills missing"),
    refusals.WrongCheckInCode: (422, "wrong-check-in-code", "Wrong check-in code"),
    refusals.ReasonRequired: (422, "reason-required", "Reason required"),
    refusals.InvalidClaim: (422, "validation-error", "Unprocessable content"),
    refusals.UnknownCommunity: (422, "unknown-community", "Unknown community"),
}


def problem_of(refusal: refusals.Refusal) -> ProblemError:
    status, slug, title = REFUSALS[type(refusal)]
    return ProblemError(status, slug, title, refusal.detail, errors=refusal.errors)


def install(app: FastAPI) -> None:
    """Answer every refusal with its problem (the app's handlers cover everything else)."""

    async def on_refusal(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, refusals.Refusal)
        return problem_response(problem_of(exc), request.url.path)

    app.add_exception_handler(refusals.Refusal, on_refusal)
