"""Each of dispatch's refusals as the problem a client reads: ONE table, status, problem type
and title per refusal class; the detail (and the body field at fault) come from the refusal."""

import re

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from services.dispatch.domain import refusals
from shared.http.problems import ProblemError, problem_response

PROBLEMS: dict[type[refusals.Refusal], tuple[int, str, str]] = {
    refusals.NotFound: (404, "not-found", "Not found"),
    refusals.NotYours: (403, "forbidden", "Forbidden"),
    refusals.CommunityExists: (409, "community-exists", "Community exists"),
    refusals.IdTaken: (409, "id-taken", "Id taken"),
    refusals.InThePast: (422, "validation-error", "Unprocessable content"),
    refusals.UnknownCommunity: (422, "unknown-community", "Unknown community"),
    refusals.VersionMismatch: (412, "version-mismatch", "The demand changed"),
    refusals.DemandClosed: (409, "demand-closed", "Demand closed"),
    refusals.DemandNotStarted: (409, "demand-not-started", "Demand not started"),
    refusals.SlotsBelowAccepted: (409, "slots-below-accepted", "Slots below accepted"),
    refusals.FillByPassed: (409, "fill-by-passed", "Fill-by passed"),
    refusals.FillByAfterStart: (422, "validation-error", "Unprocessable content"),
    refusals.InvalidCursor: (400, "invalid-cursor", "Invalid cursor"),
}


def _rule(refusal: refusals.Refusal) -> str:
    """The rule an `errors[]` entry names: the refusal's class, in snake case."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(refusal).__name__).lower()


def problem_of(refusal: refusals.Refusal) -> ProblemError:
    status, slug, title = PROBLEMS[type(refusal)]
    errors = None
    if refusal.field is not None:
        errors = [{"loc": ["body", refusal.field], "msg": refusal.detail, "type": _rule(refusal)}]
    return ProblemError(status, slug, title, refusal.detail, errors=errors)


def install(app: FastAPI) -> None:
    async def on_refusal(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, refusals.Refusal)
        return problem_response(problem_of(exc), request.url.path)

    app.add_exception_handler(refusals.Refusal, on_refusal)
