"""Every refusal of dispatch's contract: the right status and problem slug, and nothing stored
or published (the database is read directly, the broker watched by a queue of our own)."""

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest

from shared.auth import Role, issue_token
from shared.settings import DEV_JWT_SECRET
from tests.conftest import bearer
from tests.dispatch.support import (
    DispatchDb,
    assert_problem,
    demand_body,
    dispatch_db,
    iso,
    post_demand,
    register_community,
    sign,
    soon,
)
from tests.support.events import EventCollector, collect
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

COMMUNITY = "c-refuse"
SECRETARY = sign("secretary", community=COMMUNITY)
ADMIN = sign("admin")


@dataclass
class Setup:
    open_id: str
    cancelled_id: str
    events: EventCollector
    db: DispatchDb
    published: int = 0
    seen: set[str] = field(default_factory=set)


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        yield http


@pytest.fixture(scope="module")
async def setup(
    client: httpx.AsyncClient, module_service_env: dict[str, str]
) -> AsyncIterator[Setup]:
    async with (
        collect(module_service_env["RABBITMQ_URL"], "#") as events,
        dispatch_db(
            module_service_env["MONGODB_URL"], module_service_env["WHISTLE_DB_PREFIX"]
        ) as db,
    ):
        await register_community(client, ADMIN, COMMUNITY)
        headers = {**bearer(SECRETARY), "Idempotency-Key": "first-key"}
        response = await client.post("/v1/demands", json=demand_body(COMMUNITY), headers=headers)
        assert response.status_code == 201
        open_id = response.json()["id"]
        cancelled = await post_demand(client, SECRETARY, demand_body(COMMUNITY))
        closing = await client.post(
            f"/v1/demands/{cancelled['id']}/cancel",
            json={"reason": "set up"},
            headers=bearer(SECRETARY),
        )
        assert closing.status_code == 200
        await events.wait_for("demand.cancelled")
        await events.settle(0.3)
        yield Setup(open_id, cancelled["id"], events, db, published=len(events.events))


@pytest.fixture
async def unchanged(setup: Setup) -> AsyncIterator[None]:
    """The test's requests change no collection of dispatch's database."""
    before = await setup.db.counts()
    documents_before = await setup.db.db["demands"].find().sort("_id").to_list(None)
    yield
    assert await setup.db.counts() == before
    assert await setup.db.db["demands"].find().sort("_id").to_list(None) == documents_before


def too_long(length: int) -> str:
    return "x" * length


INVALID_DEMANDS: dict[str, dict[str, Any]] = {
    "missing title": {"title": None},
    "empty title": {"title": ""},
    "title over 200": {"title": too_long(201)},
    "description over 4000": {"description": too_long(4001)},
    "no slots": {"slots": 0},
    "over 1000 slots": {"slots": 1001},
    "slots not a number": {"slots": "eight"},
    "unknown kind": {"kind": "party"},
    "unknown priority": {"priority": "whenever"},
    "ends before it starts": {"ends_at": iso(soon(3 * 24 * 3600 - 60))},
    # Absolute times: this table is built at collection, long before a full suite runs the test.
    "fill_by after starts_at": {
        "starts_at": "2030-05-01T08:00:00+08:00",
        "ends_at": "2030-05-01T20:00:00+08:00",
        "fill_by": "2030-05-01T08:01:00+08:00",
    },
    "time without offset": {"starts_at": "2031-05-01T08:00:00"},
    "ends in the past": {
        "starts_at": iso(soon(-7200)),
        "ends_at": iso(soon(-3600)),
    },
    "ends too far ahead": {"ends_at": "9999-12-31T23:00:00+00:00"},
    "starts in the year 1000": {"starts_at": "1000-01-01T08:00:00+00:00"},
    "fill_by in the past": {"fill_by": "2020-01-01T08:00:00+00:00"},
    "unknown field": {"budget": 100},
    "latitude out of range": {"location": {"lat": 91}},
    "too many skills": {"skills": [f"skill {n}" for n in range(51)]},
    "community id with spaces": {"community_id": "c refuse"},
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", INVALID_DEMANDS)
async def test_an_invalid_demand_is_a_422_with_errors(client: httpx.AsyncClient, case: str) -> None:
    body = {
        key: value
        for key, value in (demand_body(COMMUNITY) | INVALID_DEMANDS[case]).items()
        if value is not None
    }
    response = await client.post("/v1/demands", json=body, headers=bearer(SECRETARY))
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"], problem


@pytest.mark.usefixtures("unchanged")
async def test_an_unknown_community_is_a_422(client: httpx.AsyncClient) -> None:
    secretary = sign("secretary", community="c-nowhere")
    response = await client.post(
        "/v1/demands", json=demand_body("c-nowhere"), headers=bearer(secretary)
    )
    problem = assert_problem(response, 422, "unknown-community")
    assert problem["errors"][0]["loc"] == ["body", "community_id"]


@pytest.mark.usefixtures("unchanged")
async def test_malformed_json_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/demands",
        content=b'{"community_id": "c-refuse", "title": ',
        headers={**bearer(SECRETARY), "Content-Type": "application/json"},
    )
    assert_problem(response, 400, "malformed-json")


@pytest.mark.usefixtures("unchanged")
async def test_an_oversized_body_is_a_413(client: httpx.AsyncClient) -> None:
    body = demand_body(COMMUNITY, description="x" * 70_000)
    response = await client.post(
        "/v1/demands",
        content=json.dumps(body).encode(),
        headers={**bearer(SECRETARY), "Content-Type": "application/json"},
    )
    assert_problem(response, 413, "payload-too-large")


EXPIRED = issue_token(
    DEV_JWT_SECRET, sub="late", role=Role.SECRETARY, community=COMMUNITY, ttl=timedelta(seconds=-60)
)
FORGED = issue_token("not-the-secret-the-services-sign-with", sub="forger", role=Role.ADMIN)


def _raw(**claims: object) -> str:
    """A token signed with the right secret but claims `mint_token` would never write."""
    now = int(time.time())
    base: dict[str, object] = {"iss": "whistle", "aud": "whistle", "iat": now, "exp": now + 600}
    payload = {key: value for key, value in {**base, **claims}.items() if value is not None}
    return jwt.encode(payload, DEV_JWT_SECRET, algorithm="HS256")


# Built when the test runs: a token signed at import would expire before a long suite reaches it.
UNAUTHENTICATED: dict[str, Callable[[], dict[str, str]]] = {
    "thirty years": lambda: bearer(
        _raw(sub="a", role="admin", exp=int(time.time()) + 30 * 365 * 86400)
    ),
    "no issuer": lambda: bearer(_raw(sub="a", role="admin", iss=None)),
    "another audience": lambda: bearer(_raw(sub="a", role="admin", aud="elsewhere")),
    "volunteer naming a community": lambda: bearer(
        _raw(sub="v", role="volunteer", volunteer="v-1", community=COMMUNITY)
    ),
    "secretary naming a unit": lambda: bearer(
        _raw(sub="s", role="secretary", community=COMMUNITY, unit="u-1")
    ),
    "empty sub": lambda: bearer(_raw(sub="", role="secretary", community=COMMUNITY)),
    "over-long sub": lambda: bearer(_raw(sub="s" * 5000, role="secretary", community=COMMUNITY)),
    "no token": lambda: {},
    "not bearer": lambda: {"Authorization": "Basic c2VjOnNlYw=="},
    "garbage": lambda: {"Authorization": "Bearer not.a.jwt"},
    "expired": lambda: bearer(EXPIRED),
    "forged": lambda: bearer(FORGED),
}
# What the 401 must say for the cases that test one rule of the token (the reason, not only
# the status: a token failing for some other reason would hide a rule that is not kept).
REASONS = {
    "thirty years": "WHISTLE_JWT_MAX_TTL",
    "no issuer": '"iss"',
    "another audience": "Audience doesn't match",
    "volunteer naming a community": "may not carry 'community'",
    "secretary naming a unit": "may not carry 'unit'",
    "empty sub": "sub: String should have at least 1 character",
    "over-long sub": "sub: String should have at most 128 characters",
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("case", UNAUTHENTICATED)
async def test_a_request_without_a_valid_token_is_a_401(
    client: httpx.AsyncClient, setup: Setup, case: str
) -> None:
    headers = UNAUTHENTICATED[case]()
    requests = [
        client.post("/v1/demands", json=demand_body(COMMUNITY), headers=headers),
        client.post(
            "/v1/communities",
            json={"id": "c-x", "name": "X", "street": "s", "district": "d"},
            headers=headers,
        ),
        client.post(f"/v1/demands/{setup.open_id}/cancel", json={"reason": "x"}, headers=headers),
        client.post(f"/v1/demands/{setup.open_id}/complete", json={}, headers=headers),
        client.get(f"/v1/demands/{setup.open_id}", headers=headers),
        client.get("/v1/demands", headers=headers),
    ]
    for request in requests:
        response = await request
        problem = assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
        assert REASONS.get(case, "") in problem["detail"]


FORBIDDEN_POSTERS = {
    "unit": sign("unit", unit="u-1"),
    "volunteer": sign("volunteer", volunteer="v-1"),
    "auditor": sign("auditor"),
    "secretary of another community": sign("secretary", community="c-other"),
    "street staff": sign("secretary", community="s-1"),
}


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("who", FORBIDDEN_POSTERS)
async def test_only_the_communitys_secretary_posts_cancels_or_completes(
    client: httpx.AsyncClient, setup: Setup, who: str
) -> None:
    headers = bearer(FORBIDDEN_POSTERS[who])
    posted = await client.post("/v1/demands", json=demand_body(COMMUNITY), headers=headers)
    assert_problem(posted, 403, "forbidden")
    for action, body in (("cancel", {"reason": "mine now"}), ("complete", {})):
        response = await client.post(
            f"/v1/demands/{setup.open_id}/{action}", json=body, headers=headers
        )
        assert_problem(response, 403, "forbidden")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("who", ["secretary", "unit", "auditor"])
async def test_only_an_admin_registers_a_community(client: httpx.AsyncClient, who: str) -> None:
    token = {
        "secretary": SECRETARY,
        "unit": sign("unit", unit="u-1"),
        "auditor": sign("auditor"),
    }[who]
    response = await client.post(
        "/v1/communities",
        json={"id": "c-new", "name": "New", "street": "s", "district": "d"},
        headers=bearer(token),
    )
    assert_problem(response, 403, "forbidden")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "body",
    [
        {"id": "c-new", "name": "New", "street": "s"},
        {"id": "c new", "name": "New", "street": "s", "district": "d"},
        {"id": "c-new", "name": "", "street": "s", "district": "d"},
        {"id": "c-new", "name": "New", "street": "s", "district": "d", "escalation_step_s": 0},
    ],
)
async def test_an_invalid_community_is_a_422(
    client: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    response = await client.post("/v1/communities", json=body, headers=bearer(ADMIN))
    assert_problem(response, 422, "validation-error")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("body", "field"),
    [
        # The setup's community sits in street s-1 and district d-1.
        ({"id": "s-1", "street": "s-7", "district": "d-7"}, "id"),  # a street's id
        ({"id": "d-1", "street": "s-7", "district": "d-7"}, "id"),  # a district's id
        ({"id": "c-new", "street": COMMUNITY, "district": "d-7"}, "street"),  # a community's
        ({"id": "c-new", "street": "d-1", "district": "d-7"}, "street"),  # a district's
        ({"id": "c-new", "street": "s-7", "district": "s-1"}, "district"),  # a street's
        ({"id": "c-same", "street": "c-same", "district": "d-7"}, None),  # itself
    ],
)
async def test_community_street_and_district_ids_cannot_collide(
    client: httpx.AsyncClient, body: dict[str, str], field: str | None
) -> None:
    response = await client.post(
        "/v1/communities", json={"name": "Clash", **body}, headers=bearer(ADMIN)
    )
    problem = assert_problem(response, 409, "id-taken")
    if field is not None:
        assert problem["errors"][0]["loc"] == ["body", field]


@pytest.mark.usefixtures("unchanged")
async def test_registering_a_community_twice_is_a_409(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/communities",
        json={"id": COMMUNITY, "name": "Again", "street": "s-9", "district": "d-9"},
        headers=bearer(ADMIN),
    )
    assert_problem(response, 409, "community-exists")


@pytest.mark.usefixtures("unchanged")
async def test_closing_a_closed_demand_is_a_409(client: httpx.AsyncClient, setup: Setup) -> None:
    url = f"/v1/demands/{setup.cancelled_id}"
    cancel = await client.post(f"{url}/cancel", json={"reason": "x"}, headers=bearer(SECRETARY))
    assert_problem(cancel, 409, "demand-closed")
    complete = await client.post(f"{url}/complete", json={}, headers=bearer(SECRETARY))
    assert_problem(complete, 409, "demand-closed")


@pytest.mark.usefixtures("unchanged")
async def test_cancel_without_a_reason_is_a_422(client: httpx.AsyncClient, setup: Setup) -> None:
    for body in ({}, {"reason": ""}, {"reason": " "}, {"reason": "x" * 1001}):
        response = await client.post(
            f"/v1/demands/{setup.open_id}/cancel", json=body, headers=bearer(SECRETARY)
        )
        assert_problem(response, 422, "validation-error")


@pytest.mark.usefixtures("unchanged")
async def test_an_unknown_demand_is_a_404(client: httpx.AsyncClient) -> None:
    url = "/v1/demands/dem_000000000000nothing"
    assert_problem(await client.get(url, headers=bearer(SECRETARY)), 404, "not-found")
    cancel = await client.post(f"{url}/cancel", json={"reason": "x"}, headers=bearer(SECRETARY))
    assert_problem(cancel, 404, "not-found")
    complete = await client.post(f"{url}/complete", json={}, headers=bearer(SECRETARY))
    assert_problem(complete, 404, "not-found")
    community = await client.get("/v1/communities/c-nothing", headers=bearer(SECRETARY))
    assert_problem(community, 404, "not-found")


@pytest.mark.usefixtures("unchanged")
async def test_a_reused_idempotency_key_with_another_body_is_a_422(
    client: httpx.AsyncClient,
) -> None:
    headers = {**bearer(SECRETARY), "Idempotency-Key": "first-key"}
    response = await client.post(
        "/v1/demands", json=demand_body(COMMUNITY, slots=9), headers=headers
    )
    assert_problem(response, 422, "idempotency-key-reused")


@pytest.mark.usefixtures("unchanged")
async def test_an_overlong_idempotency_key_is_a_400(client: httpx.AsyncClient) -> None:
    headers = {**bearer(SECRETARY), "Idempotency-Key": "k" * 201}
    response = await client.post("/v1/demands", json=demand_body(COMMUNITY), headers=headers)
    assert_problem(response, 400, "invalid-idempotency-key")


@pytest.mark.usefixtures("unchanged")
async def test_a_stale_if_match_is_a_412(client: httpx.AsyncClient, setup: Setup) -> None:
    response = await client.post(
        f"/v1/demands/{setup.open_id}/cancel",
        json={"reason": "x"},
        headers={**bearer(SECRETARY), "If-Match": '"99"'},
    )
    assert_problem(response, 412, "version-mismatch")


async def test_no_refusal_published_anything(setup: Setup) -> None:
    """Runs last in this module: the broker saw only the set-up's events."""
    await setup.events.settle(0.5)
    types = [event["type"] for event in setup.events.events]
    assert len(types) == setup.published, types
    assert sorted(types) == sorted(
        ["community.registered", "demand.published", "demand.published", "demand.cancelled"]
    )


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("chunked", [False, True])
async def test_a_5_mb_body_from_urllib_reads_a_413_not_a_connection_reset(
    dispatch: ServiceProcess, chunked: bool
) -> None:
    # urllib sends the whole body before it reads the answer (no `Expect: 100-continue`).
    body = b'{"title": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    request = urllib.request.Request(
        f"{dispatch.url}/v1/demands",
        data=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]) if chunked else body,
        headers={**bearer(SECRETARY), "Content-Type": "application/json"},
        method="POST",
    )

    def post() -> tuple[int, str, dict[str, Any]]:
        try:
            urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            return error.code, error.headers["Content-Type"], json.loads(error.read())
        raise AssertionError("a 5 MB body was accepted")

    status, content_type, problem = await asyncio.to_thread(post)
    assert status == 413
    assert content_type == "application/problem+json"
    assert problem["type"].endswith("payload-too-large")


async def test_invented_methods_do_not_grow_the_metrics(client: httpx.AsyncClient) -> None:
    for n in range(20):
        await client.request(f"BREW{n}", "/v1/demands", headers=bearer(SECRETARY))
    exposed = (await client.get("/metrics")).text
    methods = {
        line.split('method="', 1)[1].split('"', 1)[0]
        for line in exposed.splitlines()
        if line.startswith("whistle_http_requests_total{")
    }
    assert not any(method.startswith("BREW") for method in methods), methods
    assert "other" in methods
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
