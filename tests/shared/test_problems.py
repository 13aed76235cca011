"""Every error a client can see is RFC 9457 problem+json, with the contract's slug."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from shared.http.body_limit import BodySizeLimitMiddleware
from shared.http.problems import PROBLEM_MEDIA_TYPE, ProblemError, install_problem_handlers
from shared.store.unit_of_work import CommitOutcomeUnknown, TransactionConflict

pytestmark = pytest.mark.unit

LIMIT = 1024


class Thing(BaseModel):
    name: str = Field(min_length=1)
    count: int = Field(ge=1)


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=LIMIT)

    @app.post("/things", status_code=201)
    async def create(thing: Thing) -> Thing:
        return thing

    @app.get("/conflict")
    async def conflict() -> None:
        raise ProblemError(409, "already-claimed", "Already claimed", "one claim per claimant")

    @app.get("/contended")
    async def contended() -> None:
        raise TransactionConflict("write conflict after 12 attempts")

    @app.get("/ambiguous")
    async def ambiguous() -> None:
        raise CommitOutcomeUnknown("connection reset during commitTransaction")

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    return app


async def _call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    # raise_app_exceptions=False: Starlette re-raises after answering 500; we test the answer.
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


def _problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://whistle.dev/problems/{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


async def test_validation_error_is_422_with_field_errors() -> None:
    response = await _call("POST", "/things", json={"name": "", "count": 0})
    body = _problem(response, 422, "validation-error")
    assert {tuple(error["loc"]) for error in body["errors"]} == {
        ("body", "name"),
        ("body", "count"),
    }
    assert body["instance"] == "/things"


async def test_malformed_json_is_400() -> None:
    response = await _call(
        "POST", "/things", content=b'{"name": "x",', headers={"content-type": "application/json"}
    )
    _problem(response, 400, "malformed-json")


async def test_unknown_route_is_404() -> None:
    body = _problem(await _call("GET", "/nowhere"), 404, "not-found")
    assert "/nowhere" in body["detail"]


async def test_wrong_method_is_405() -> None:
    response = await _call("DELETE", "/things")
    _problem(response, 405, "method-not-allowed")
    assert "POST" in response.headers["allow"]


async def test_raised_problem_keeps_its_slug() -> None:
    _problem(await _call("GET", "/conflict"), 409, "already-claimed")


async def test_oversized_body_by_content_length_is_413() -> None:
    payload = b'{"name": "' + b"x" * (LIMIT * 2) + b'", "count": 1}'
    response = await _call(
        "POST", "/things", content=payload, headers={"content-type": "application/json"}
    )
    _problem(response, 413, "payload-too-large")


async def test_oversized_chunked_body_is_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(8):
            yield b"x" * 256
        yield b'", "count": 1}'

    response = await _call(
        "POST", "/things", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _problem(response, 413, "payload-too-large")


async def test_small_chunked_body_is_accepted() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "ok",'
        yield b' "count": 2}'

    response = await _call(
        "POST", "/things", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 201
    assert response.json() == {"name": "ok", "count": 2}


async def test_unexpected_failure_is_500_without_internals() -> None:
    response = await _call("GET", "/boom")
    body = _problem(response, 500, "internal-error")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text
    assert set(body) == {"type", "title", "status", "detail", "instance"}


async def test_exhausted_transaction_retries_are_503_busy_with_retry_after() -> None:
    response = await _call("GET", "/contended")
    _problem(response, 503, "busy")
    assert response.headers["retry-after"] == "1"
    assert "write conflict" not in response.text


async def test_an_unknown_commit_outcome_is_503_and_says_to_retry_with_the_key() -> None:
    response = await _call("GET", "/ambiguous")
    body = _problem(response, 503, "commit-outcome-unknown")
    assert "Idempotency-Key" in body["detail"]
    assert "connection reset" not in response.text
