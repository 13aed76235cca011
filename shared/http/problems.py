"""RFC 9457 problem details for every error a client can see.

Validation errors, unknown routes, wrong methods, oversized bodies and unexpected failures all
answer `application/problem+json`; an unexpected failure is logged with its trace and the
client gets a 500 problem that says nothing about the internals.
"""

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pymongo.errors import ExecutionTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from shared.store.unit_of_work import CommitOutcomeUnknown, TransactionConflict

PROBLEM_BASE = "https://whistle.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"

_log = structlog.get_logger("whistle.problems")

_STATUS_SLUGS: dict[int, tuple[str, str]] = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    422: ("validation-error", "Unprocessable content"),
    429: ("too-many-requests", "Too many requests"),
    503: ("unavailable", "Service unavailable"),
}


class ProblemError(Exception):
    """Raise from a handler to answer with a problem; the slug is part of the contract."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = [error_item(item) for item in errors] if errors is not None else None
        self.headers = dict(headers or {})

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def error_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The one shape of an `errors[]` entry: where (`loc`), what (`msg`), which rule (`type`)."""
    return {
        "loc": [str(part) for part in item.get("loc", ())],
        "msg": str(item.get("msg", "")),
        "type": str(item.get("type", "value_error")),
    }


# RFC 3986 pchar and "/": everything else in a path is percent-encoded.
_PATH_SAFE = "/:@!$&'()*+,;=-._~"


def instance_of(path: str | None) -> str | None:
    """A request path as a valid URI reference (raw spaces and controls percent-encoded)."""
    return quote(path, safe=_PATH_SAFE) if path else None


def problem_response(problem: ProblemError, instance: str | None = None) -> JSONResponse:
    return JSONResponse(
        problem.body(instance_of(instance)),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def problem_for_status(status: int, detail: str) -> ProblemError:
    slug, title = _STATUS_SLUGS.get(status, ("error", "Error"))
    return ProblemError(status, slug, title, detail)


def _malformed_json(detail: str, errors: Sequence[Mapping[str, Any]] | None = None) -> ProblemError:
    return ProblemError(
        400,
        "malformed-json",
        "Malformed JSON",
        detail,
        errors=errors or [{"loc": ["body"], "msg": detail, "type": "json_invalid"}],
    )


def _validation_problem(error: RequestValidationError) -> ProblemError:
    errors = [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": str(item.get("type", "")),
        }
        for item in error.errors()
    ]
    if any(item["type"] == "json_invalid" for item in errors):
        return _malformed_json("the request body is not valid JSON", errors)
    fields = ", ".join(".".join(item["loc"]) for item in errors[:5])
    return ProblemError(
        422,
        "validation-error",
        "Unprocessable content",
        f"the request is not valid: {fields}",
        errors=errors,
    )


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    if "GET" in methods:
        methods.add("HEAD")  # answered for every GET route (shared.http.semantics)
    return sorted(methods)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        return problem_response(exc, request.url.path)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(_validation_problem(exc), request.url.path)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not UTF-8: malformed JSON like any other.
            return problem_response(_malformed_json("the body is not UTF-8"), request.url.path)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such resource: {request.method} {request.url.path}"
        problem = problem_for_status(exc.status_code, detail)
        problem.headers.update(exc.headers or {})
        if exc.status_code == 405:
            # Every method the path serves, not only those of the first route that matched.
            problem.headers["Allow"] = ", ".join(_allowed_methods(request))
        return problem_response(problem, request.url.path)

    async def on_conflict(request: Request, exc: Exception) -> JSONResponse:
        # Transactions that kept conflicting changed nothing: say so and when to retry.
        _log.warning("transaction_conflict", path=request.url.path, error=str(exc))
        problem = ProblemError(
            503,
            "busy",
            "Busy",
            "too many concurrent changes to the same records; nothing was changed, retry",
            headers={"Retry-After": "1"},
        )
        return problem_response(problem, request.url.path)

    async def on_store_busy(request: Request, exc: Exception) -> JSONResponse:
        # The database ran out of time for the command (it never got its turn): busy.
        _log.warning("store_busy", path=request.url.path, error=str(exc))
        problem = ProblemError(
            503,
            "busy",
            "Busy",
            "the database is busy with other work; nothing was changed, retry",
            headers={"Retry-After": "1"},
        )
        return problem_response(problem, request.url.path)

    async def on_commit_unknown(request: Request, exc: Exception) -> JSONResponse:
        _log.warning("commit_outcome_unknown", path=request.url.path, error=str(exc))
        problem = ProblemError(
            503,
            "commit-outcome-unknown",
            "Outcome unknown",
            "the database stopped answering while saving: the change may or may not be stored;"
            " retry with the same Idempotency-Key, or read before retrying",
            headers={"Retry-After": "1"},
        )
        return problem_response(problem, request.url.path)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        _log.error("unhandled_error", path=request.url.path, exc_info=exc)
        problem = ProblemError(
            500,
            "internal-error",
            "Internal error",
            "the service failed to answer; the failure is logged",
        )
        return problem_response(problem, request.url.path)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(TransactionConflict, on_conflict)
    app.add_exception_handler(CommitOutcomeUnknown, on_commit_unknown)
    app.add_exception_handler(ExecutionTimeout, on_store_busy)
    app.add_exception_handler(Exception, on_unexpected)
