"""RFC 9457 problem details for every error a client can see.

Validation errors, unknown routes, wrong methods, oversized bodies and unexpected failures all
answer `application/problem+json`; an unexpected failure is logged with its trace and the
client gets a 500 problem that says nothing about the internals.

A service's domain refuses with its own exceptions (`domain/refusals.py`, no HTTP in them);
its `entrypoints/problems.py` holds ONE table from exception class to problem,

    REFUSALS: RefusalTable = {DemandFull: Refusal(409, "demand-full", "Demand full"), ...}

and `install_refusals(app, REFUSALS)` (done by `create_service_app(..., refusals=...)`) turns
it into exception handling: the problem's `detail` is `str(error)`; an exception may also
carry `errors` (the `errors[]` entries) and `headers`. `not_found(kind, id)` is the one 404.
"""

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, NamedTuple
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
        extensions: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.errors = [error_item(item) for item in errors] if errors is not None else None
        self.headers = dict(headers or {})
        # RFC 9457 extension members (what a client acts on without parsing `detail`).
        self.extensions = dict(extensions or {})

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
        for name, value in self.extensions.items():
            body.setdefault(name, value)  # never over a standard member
        return body


def not_found(kind: str, identifier: str) -> ProblemError:
    """The one 404 of a resource: `no demand 'dem_1'`."""
    return ProblemError(404, "not-found", "Not found", f"no {kind} '{identifier}'")


class Refusal(NamedTuple):
    """How a domain refusal answers: its status, problem type (slug) and title."""

    status: int
    slug: str
    title: str


RefusalTable = Mapping[type[Exception], Refusal]


def problem_of(error: Exception, table: RefusalTable) -> ProblemError | None:
    """The problem a refusal answers with (the nearest class in the table), else None."""
    for cls in type(error).__mro__:
        refusal = table.get(cls)
        if refusal is not None:
            errors = getattr(error, "errors", None)
            headers = getattr(error, "headers", None)
            extensions = getattr(error, "extensions", None)
            return ProblemError(
                refusal.status,
                refusal.slug,
                refusal.title,
                str(error),
                errors=errors if isinstance(errors, Sequence) else None,
                headers=headers if isinstance(headers, Mapping) else None,
                extensions=extensions if isinstance(extensions, Mapping) else None,
            )
    return None


def install_refusals(app: FastAPI, table: RefusalTable) -> None:
    """Answer each refusal in `table` with its problem (a 4xx that changed nothing)."""

    async def on_refusal(request: Request, exc: Exception) -> JSONResponse:
        problem = problem_of(exc, table)
        if problem is None:  # unreachable: registered only for the table's classes
            raise exc
        return problem_response(problem, request.url.path)

    for cls in table:
        app.add_exception_handler(cls, on_refusal)


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


ExceptionHandler = Callable[[Request, Exception], Awaitable[JSONResponse]]


def _unavailable(log_event: str, slug: str, title: str, detail: str) -> ExceptionHandler:
    """A 503 with Retry-After for a failure that is the moment's, not the request's."""

    async def handler(request: Request, exc: Exception) -> JSONResponse:
        _log.warning(log_event, path=request.url.path, error=str(exc))
        problem = ProblemError(503, slug, title, detail, headers={"Retry-After": "1"})
        return problem_response(problem, request.url.path)

    return handler


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

    # Transactions that kept conflicting changed nothing: say so and when to retry.
    on_conflict = _unavailable(
        "transaction_conflict",
        "busy",
        "Busy",
        "too many concurrent changes to the same records; nothing was changed, retry",
    )
    # The database ran out of time for the command (it never got its turn): busy.
    on_store_busy = _unavailable(
        "store_busy",
        "busy",
        "Busy",
        "the database is busy with other work; nothing was changed, retry",
    )
    on_commit_unknown = _unavailable(
        "commit_outcome_unknown",
        "commit-outcome-unknown",
        "Outcome unknown",
        "the database stopped answering while saving: the change may or may not be stored;"
        " retry with the same Idempotency-Key, or read before retrying",
    )

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
