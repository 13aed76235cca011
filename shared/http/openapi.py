"""The OpenAPI document says what the services do: Bearer auth on every `/v1` route, and
every status a route answers with its `application/problem+json` body (the problem schema,
not FastAPI's `HTTPValidationError`)."""

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from shared.http.problems import PROBLEM_MEDIA_TYPE

BEARER = "bearer"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `type` names the refusal (a contract slug).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "instance": {"type": "string", "format": "uri-reference"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["loc", "msg", "type"],
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
_DESCRIPTIONS = {
    400: "Bad request (malformed JSON, a bad cursor or precondition)",
    401: "Missing or invalid token",
    403: "The token's role or identity may not do this",
    404: "Not found",
    406: "None of the accepted media types is offered",
    409: "Conflicts with the current state",
    412: "If-Match did not match the current version",
    413: "The body is over the size limit",
    415: "The body is not JSON",
    422: "The request is not valid",
    429: "Too many requests",
    503: "Busy or a dependency is unavailable: retry",
}
# What every /v1 operation may answer, and what only those that take a body may.
_EVERY = (400, 401, 403, 404, 406, 422, 429, 503)
_WITH_BODY = (409, 412, 413, 415)
_HTTP_VALIDATION = "#/components/schemas/HTTPValidationError"


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": _DESCRIPTIONS[status],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def whistle_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    components["securitySchemes"] = {
        BEARER: {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            for code, response in list(responses.items()):
                content = response.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref") == _HTTP_VALIDATION:
                    responses[code] = _problem_response(int(code))
            if not path.startswith("/v1"):
                continue
            operation["security"] = [{BEARER: []}]
            statuses = _EVERY + (_WITH_BODY if method in ("post", "put", "patch") else ())
            for status in statuses:
                responses.setdefault(str(status), _problem_response(status))
    app.openapi_schema = schema
    return schema
