"""RFC 9110 semantics every service keeps: HEAD on GET routes, 415 for bodies that are not
JSON, q-value negotiation, entity tags, URI-reference `instance`, one malformed-body type."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from shared.http.negotiation import entity_tags, negotiate, strong_match, weak_match
from shared.http.problems import PROBLEM_MEDIA_TYPE, ProblemError, install_problem_handlers
from shared.http.semantics import HttpSemanticsMiddleware

pytestmark = pytest.mark.unit


class Thing(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(HttpSemanticsMiddleware)

    @app.get("/things/{name}")
    async def read(name: str) -> dict[str, str]:
        if name == "missing":
            raise ProblemError(404, "not-found", "Not found", "no such thing")
        return {"name": name}

    @app.post("/things", status_code=201)
    async def create(thing: Thing) -> Thing:
        return thing

    return app


async def _call(method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, **kwargs)


async def test_head_answers_every_get_route_without_a_body() -> None:
    got = await _call("GET", "/things/a")
    head = await _call("HEAD", "/things/a")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]
    assert (await _call("HEAD", "/things/missing")).status_code == 404


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_a_body_that_is_not_json_is_a_415(content_type: str) -> None:
    response = await _call(
        "POST", "/things", content=b'{"name": "a"}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["type"] == "https://whistle.dev/problems/unsupported-media-type"
    ok = await _call(
        "POST",
        "/things",
        content=b'{"name": "a"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert ok.status_code == 201


@pytest.mark.parametrize("body", [b'{"name": "\xff\xfe"}', b'{"name": ', b"\xc3\x28"])
async def test_every_malformed_body_is_one_problem_type_with_one_errors_shape(body: bytes) -> None:
    response = await _call(
        "POST", "/things", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == "https://whistle.dev/problems/malformed-json"
    assert problem["errors"]
    for error in problem["errors"]:
        assert set(error) == {"loc", "msg", "type"}
        assert all(isinstance(part, str) for part in error["loc"])


async def test_a_problem_instance_is_a_percent_encoded_uri_reference() -> None:
    response = await _call("GET", "/things/missing")
    assert response.json()["instance"] == "/things/missing"
    raw = await _call("GET", "/no%20such/%01path")  # decoded: a space and a control
    instance = raw.json()["instance"]
    assert instance == "/no%20such/%01path"
    assert " " not in instance


def test_errors_entries_all_have_one_shape() -> None:
    problem = ProblemError(422, "x", "X", "d", errors=[{"msg": "only a message"}])
    assert problem.errors == [{"loc": [], "msg": "only a message", "type": "value_error"}]


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("application/x-ndjson", "application/x-ndjson"),
        ("application/x-ndjson;q=0, application/json", "application/json"),
        ("application/x-ndjson;q=0", None),
        ("application/json;q=0.5, application/x-ndjson;q=0.9", "application/x-ndjson"),
        ("*/*", "application/json"),
        ("application/*;q=0.1, application/x-ndjson", "application/x-ndjson"),
        ("text/html", None),
    ],
)
def test_accept_is_negotiated_with_q_values(accept: str | None, chosen: str | None) -> None:
    offers = ("application/json", "application/x-ndjson")
    if chosen is None:
        with pytest.raises(ProblemError) as refused:
            negotiate(accept, offers)
        assert refused.value.status == 406
    else:
        assert negotiate(accept, offers) == chosen


def test_entity_tags_compare_strongly_for_if_match_and_weakly_for_if_none_match() -> None:
    tags = entity_tags('W/"2", "3"')
    assert tags == ['W/"2"', '"3"']
    assert not strong_match(tags, '"2"')
    assert strong_match(tags, '"3"')
    assert weak_match(tags, '"2"')
    assert entity_tags("*") is None
    with pytest.raises(ProblemError):
        entity_tags("2")
