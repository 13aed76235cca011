"""Demands over HTTP at a real dispatch process: create, read, list, cancel, complete,
Idempotency-Key, and who may read what (street/district staff)."""

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.dispatch.support import (
    DispatchDb,
    assert_problem,
    demand_body,
    post_demand,
    register_community,
    sign,
)
from tests.support.events import EventCollector, collect
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        yield http


@pytest.fixture(scope="module")
async def events(module_service_env: dict[str, str]) -> AsyncIterator[EventCollector]:
    async with collect(module_service_env["RABBITMQ_URL"], "demand.*") as collector:
        yield collector


@pytest.fixture(scope="module")
async def communities(client: httpx.AsyncClient, token: Callable[..., str]) -> None:
    admin = token("admin")
    # Two communities under one street, a third under another street of the same district.
    await register_community(client, admin, "c-a", street="s-north", district="d-east")
    await register_community(client, admin, "c-b", street="s-north", district="d-east")
    await register_community(client, admin, "c-c", street="s-south", district="d-east")


@pytest.fixture(scope="module")
def token() -> Callable[..., str]:
    return sign


pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("communities")]


async def test_a_demand_is_created_with_all_fields_and_read_back(
    client: httpx.AsyncClient, token: Callable[..., str], events: EventCollector
) -> None:
    secretary = token("secretary", community="c-a")
    body = demand_body("c-a", description="Bring a thermos", fill_by=None)
    response = await client.post("/v1/demands", json=body, headers=bearer(secretary))
    assert response.status_code == 201, response.text
    demand = response.json()
    assert response.headers["location"] == f"/v1/demands/{demand['id']}"
    assert demand["status"] == "open"
    assert demand["filled"] == 0
    assert demand["level"] == "community"
    assert demand["version"] == 1
    assert demand["created_by"] == "secretary-c-a"
    assert demand["skills"] == ["checkpoint", "first aid"]
    assert demand["street"] == "s-north"
    assert demand["district"] == "d-east"
    assert datetime.fromisoformat(demand["fill_by"]) == datetime.fromisoformat(body["starts_at"])
    fetched = await client.get(f"/v1/demands/{demand['id']}", headers=bearer(secretary))
    assert fetched.status_code == 200
    assert fetched.json() == demand
    assert fetched.headers["etag"] == '"1"'
    published = await events.wait_for("demand.published")
    [mine] = [event for event in published if event["subject"] == demand["id"]]
    # The description and exact place go to whistle.private only (issue 10).
    assert "Bring a thermos" not in json.dumps(mine)
    assert mine["data"]["location"] == {"grid": "G4"}
    assert mine["data"]["details_digest"].startswith("hmac-sha256:")
    assert not [e for e in events.events if e["type"] == "demand.details"]


async def test_cancel_needs_a_reason_and_emits_demand_cancelled(
    client: httpx.AsyncClient, token: Callable[..., str], events: EventCollector, db: DispatchDb
) -> None:
    secretary = token("secretary", community="c-a")
    demand = await post_demand(client, secretary, demand_body("c-a"))
    url = f"/v1/demands/{demand['id']}/cancel"
    assert_problem(
        await client.post(url, json={}, headers=bearer(secretary)), 422, "validation-error"
    )
    assert_problem(
        await client.post(url, json={"reason": "  "}, headers=bearer(secretary)),
        422,
        "validation-error",
    )
    response = await client.post(url, json={"reason": "storm warning"}, headers=bearer(secretary))
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancel_reason"] == "storm warning"
    assert cancelled["version"] == 2
    assert cancelled["closed_at"] is not None
    got = await events.wait_for("demand.cancelled")
    event = next(event for event in got if event["subject"] == demand["id"])
    assert event["data"]["reason"] == "storm warning"
    assert event["correlationid"] == demand["id"]
    assert event["actor"] == "secretary-c-a"
    timers = await db.db["timers"].find({"payload.demand_id": demand["id"]}).to_list(None)
    assert {timer["state"] for timer in timers} == {"cancelled"}
    again = await client.post(url, json={"reason": "again"}, headers=bearer(secretary))
    assert_problem(again, 409, "demand-closed")
    complete = await client.post(
        f"/v1/demands/{demand['id']}/complete", json={}, headers=bearer(secretary)
    )
    assert_problem(complete, 409, "demand-closed")
    assert await db.outbox_types(demand["id"]) == [
        "demand.details",
        "demand.published",
        "demand.cancelled",
    ]


async def test_an_unanswered_demand_cannot_be_completed(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    secretary = token("secretary", community="c-a")
    demand = await post_demand(client, secretary, demand_body("c-a"))
    response = await client.post(
        f"/v1/demands/{demand['id']}/complete", json={"summary": "done"}, headers=bearer(secretary)
    )
    assert_problem(response, 409, "demand-not-started")


async def test_if_match_makes_a_close_conditional_on_the_version(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    secretary = token("secretary", community="c-a")
    demand = await post_demand(client, secretary, demand_body("c-a"))
    url = f"/v1/demands/{demand['id']}/cancel"
    stale = await client.post(
        url, json={"reason": "x"}, headers={**bearer(secretary), "If-Match": '"7"'}
    )
    assert_problem(stale, 412, "version-mismatch")
    fresh = await client.post(
        url, json={"reason": "x"}, headers={**bearer(secretary), "If-Match": '"1"'}
    )
    assert fresh.status_code == 200, fresh.text


async def test_if_match_compares_strongly_and_takes_a_list(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    secretary = token("secretary", community="c-a")
    demand = await post_demand(client, secretary, demand_body("c-a"))
    url = f"/v1/demands/{demand['id']}/cancel"
    weak = await client.post(
        url, json={"reason": "x"}, headers={**bearer(secretary), "If-Match": 'W/"1"'}
    )
    assert_problem(weak, 412, "version-mismatch")  # a weak tag never matches strongly
    listed = await client.post(
        url, json={"reason": "x"}, headers={**bearer(secretary), "If-Match": '"5", "1"'}
    )
    assert listed.status_code == 200, listed.text
    bad = await client.post(
        url, json={"reason": "x"}, headers={**bearer(secretary), "If-Match": "1"}
    )
    assert_problem(bad, 422, "validation-error")  # not an entity tag: the schema says so


async def test_if_none_match_answers_304_while_the_demand_is_unchanged(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    secretary = token("secretary", community="c-a")
    demand = await post_demand(client, secretary, demand_body("c-a"))
    url = f"/v1/demands/{demand['id']}"
    first = await client.get(url, headers=bearer(secretary))
    etag = first.headers["etag"]
    assert etag == '"1"'
    same = await client.get(url, headers={**bearer(secretary), "If-None-Match": f"W/{etag}"})
    assert same.status_code == 304
    assert same.content == b""
    assert same.headers["etag"] == etag
    other = await client.get(url, headers={**bearer(secretary), "If-None-Match": '"0", "9"'})
    assert other.status_code == 200
    head = await client.head(url, headers=bearer(secretary))
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == etag


async def test_only_the_communitys_secretary_or_an_admin_closes_a_demand(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    demand = await post_demand(client, token("secretary", community="c-a"), demand_body("c-a"))
    url = f"/v1/demands/{demand['id']}/cancel"
    for outsider in (
        token("secretary", community="c-b"),
        token("secretary", community="s-north"),
        token("unit", unit="u-1"),
        token("volunteer", volunteer="v-1"),
        token("auditor"),
    ):
        response = await client.post(url, json={"reason": "x"}, headers=bearer(outsider))
        assert_problem(response, 403, "forbidden")
    response = await client.post(url, json={"reason": "by admin"}, headers=bearer(token("admin")))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "cancelled"


async def test_the_same_idempotency_key_and_body_creates_one_demand_under_concurrency(
    client: httpx.AsyncClient, token: Callable[..., str], db: DispatchDb, events: EventCollector
) -> None:
    secretary = token("secretary", "idem-sec", community="c-b")
    body = demand_body("c-b", title="Groceries for building 3")
    headers = {**bearer(secretary), "Idempotency-Key": "groceries-b3"}
    before = await db.db["demands"].count_documents({"community_id": "c-b"})
    responses = await asyncio.gather(
        *(client.post("/v1/demands", json=body, headers=headers) for _ in range(8))
    )
    assert [response.status_code for response in responses] == [201] * 8
    ids = {response.json()["id"] for response in responses}
    assert len(ids) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 7
    assert await db.db["demands"].count_documents({"community_id": "c-b"}) == before + 1
    (demand_id,) = ids
    assert await db.outbox_types(demand_id) == ["demand.details", "demand.published"]
    await events.wait_for("demand.published")
    await events.settle(0.3)
    assert sum(e["subject"] == demand_id for e in events.of_type("demand.published")) == 1

    reused = await client.post("/v1/demands", json=body | {"slots": 5}, headers=headers)
    assert_problem(reused, 422, "idempotency-key-reused")
    assert await db.db["demands"].count_documents({"community_id": "c-b"}) == before + 1


async def test_an_idempotency_key_belongs_to_the_whole_principal_not_its_sub(
    client: httpx.AsyncClient, token: Callable[..., str], db: DispatchDb
) -> None:
    # Two people who happen to share a `sub` (a console account name, say) are two callers.
    secretary = token("secretary", "zhang", community="c-a")
    admin = token("admin", "zhang")
    body = demand_body("c-a", title="Sandbags for the east gate")
    key = {"Idempotency-Key": "sandbags"}
    first = await client.post("/v1/demands", json=body, headers=bearer(secretary) | key)
    assert first.status_code == 201, first.text
    second = await client.post("/v1/demands", json=body, headers=bearer(admin) | key)
    assert second.status_code == 201, second.text
    assert second.headers.get("idempotent-replayed") is None
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["created_by"] == "zhang"
    again = await client.post("/v1/demands", json=body, headers=bearer(admin) | key)
    assert again.json()["id"] == second.json()["id"]


async def test_an_idempotency_key_expires_after_24_hours(
    client: httpx.AsyncClient, token: Callable[..., str], db: DispatchDb
) -> None:
    secretary = token("secretary", "expiry-sec", community="c-b")
    headers = {**bearer(secretary), "Idempotency-Key": "daily-call"}
    body = demand_body("c-b", kind="task", title="Daily phone call")
    first = await client.post("/v1/demands", json=body, headers=headers)
    assert first.status_code == 201, first.text
    replay = await client.post("/v1/demands", json=body, headers=headers)
    assert replay.json()["id"] == first.json()["id"]
    # A day passes (the record's age is what the TTL index looks at).
    await db.db["idempotency_keys"].update_one(
        {"_id": "secretary/c-b/expiry-sec:daily-call"},
        {"$set": {"created_at": datetime.now(UTC) - timedelta(hours=24, minutes=1)}},
    )
    later = await client.post("/v1/demands", json=body, headers=headers)
    assert later.status_code == 201, later.text
    assert later.headers.get("idempotent-replayed") is None
    assert later.json()["id"] != first.json()["id"]


async def _list(client: httpx.AsyncClient, token: str, **params: Any) -> httpx.Response:
    return await client.get("/v1/demands", params=params, headers=bearer(token))


async def test_listing_filters_and_pages_with_a_stable_cursor(
    client: httpx.AsyncClient, token: Callable[..., str]
) -> None:
    secretary = token("secretary", community="c-c")
    created = [
        await post_demand(client, secretary, demand_body("c-c", title=f"Task {n}", kind="task"))
        for n in range(5)
    ]
    cancelled = created[1]["id"]
    response = await client.post(
        f"/v1/demands/{cancelled}/cancel", json={"reason": "dup"}, headers=bearer(secretary)
    )
    assert response.status_code == 200

    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"community_id": "c-c", "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await _list(client, secretary, **params)
        assert page.status_code == 200, page.text
        seen += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        # A demand created while paging does not shift the pages already served.
        if len(seen) == 2:
            await post_demand(client, secretary, demand_body("c-c", title="Late", kind="task"))
        if cursor is None:
            break
    assert seen == [demand["id"] for demand in reversed(created)]

    open_only = await _list(client, secretary, community_id="c-c", status="open", limit=50)
    assert cancelled not in [item["id"] for item in open_only.json()["items"]]
    assert {item["status"] for item in open_only.json()["items"]} == {"open"}
    both = await _list(client, secretary, status=["open", "cancelled"], kind="task")
    assert cancelled in [item["id"] for item in both.json()["items"]]
    assert all(item["community_id"] == "c-c" for item in both.json()["items"])

    assert_problem(await _list(client, secretary, status="lost"), 422, "validation-error")
    assert_problem(await _list(client, secretary, limit=0), 422, "validation-error")
    assert_problem(await _list(client, secretary, cursor="not-a-cursor"), 400, "invalid-cursor")


async def test_street_and_district_staff_read_only_what_was_escalated_to_them(
    client: httpx.AsyncClient, token: Callable[..., str], db: DispatchDb
) -> None:
    secretary = token("secretary", community="c-a")
    street = token("secretary", "street-staff", community="s-north")
    district = token("secretary", "district-staff", community="d-east")
    neighbour = token("secretary", community="c-b")
    demand = await post_demand(client, secretary, demand_body("c-a", title="Sandbags"))
    url = f"/v1/demands/{demand['id']}"
    for outsider in (street, district, neighbour):
        assert_problem(await client.get(url, headers=bearer(outsider)), 403, "forbidden")
    street_page = await _list(client, street, level="street")
    assert demand["id"] not in [item["id"] for item in street_page.json()["items"]]

    # The ladder moves the demand (the escalation tests drive the real timers).
    await db.db["demands"].update_one({"_id": demand["id"]}, {"$set": {"level": "street"}})
    assert (await client.get(url, headers=bearer(street))).status_code == 200
    assert_problem(await client.get(url, headers=bearer(district)), 403, "forbidden")
    listed = await _list(client, street)
    assert demand["id"] in [item["id"] for item in listed.json()["items"]]
    assert {item["level"] for item in listed.json()["items"]} == {"street"}
    by_community = await _list(client, street, community_id="c-a")
    assert [item["id"] for item in by_community.json()["items"]] == [demand["id"]]
    assert_problem(await _list(client, neighbour, community_id="c-a"), 403, "forbidden")

    await db.db["demands"].update_one({"_id": demand["id"]}, {"$set": {"level": "district"}})
    assert (await client.get(url, headers=bearer(district))).status_code == 200
    # Reading is not closing: street staff cannot cancel the community's demand.
    cancel = await client.post(f"{url}/cancel", json={"reason": "x"}, headers=bearer(street))
    assert_problem(cancel, 403, "forbidden")


async def test_a_retried_cancel_with_its_idempotency_key_gets_its_first_answer(
    client: httpx.AsyncClient, token: Callable[..., str], db: DispatchDb
) -> None:
    secretary = token("secretary", community="c-a")
    demand = await post_demand(client, secretary, demand_body("c-a"))
    url = f"/v1/demands/{demand['id']}/cancel"
    headers = {**bearer(secretary), "Idempotency-Key": f"cancel-{demand['id']}"}
    first = await client.post(url, json={"reason": "flooded"}, headers=headers)
    again = await client.post(url, json={"reason": "flooded"}, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await db.outbox_types(demand["id"]) == [
        "demand.details",
        "demand.published",
        "demand.cancelled",
    ]


async def test_a_demand_carries_its_exposure_low_unless_said(
    client: httpx.AsyncClient, token: Callable[..., str], events: EventCollector
) -> None:
    secretary = bearer(token("secretary", community="c-a"))
    high = await client.post(
        "/v1/demands", json=demand_body("c-a", exposure="high"), headers=secretary
    )
    assert high.status_code == 201, high.text
    assert high.json()["exposure"] == "high"
    plain = await client.post("/v1/demands", json=demand_body("c-a"), headers=secretary)
    assert plain.json()["exposure"] == "low"
    wrong = await client.post(
        "/v1/demands", json=demand_body("c-a", exposure="extreme"), headers=secretary
    )
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["errors"][0]["loc"] == ["body", "exposure"]
    mine = (high.json()["id"], plain.json()["id"])

    def exposures() -> dict[str, str]:
        return {
            event["subject"]: event["data"]["exposure"]
            for event in events.of_type("demand.published")
            if event["subject"] in mine
        }

    deadline = asyncio.get_running_loop().time() + 10
    while len(exposures()) < 2 and asyncio.get_running_loop().time() < deadline:
        await events.wait_for("demand.published", len(events.of_type("demand.published")) + 1, 1)
    assert exposures() == {mine[0]: "high", mine[1]: "low"}


async def test_a_community_registers_its_fatigue_limits(
    client: httpx.AsyncClient, token: Callable[..., str], module_service_env: dict[str, str]
) -> None:
    admin = token("admin")
    async with collect(module_service_env["RABBITMQ_URL"], "community.registered") as seen:
        strict = await register_community(
            client, admin, "c-tired", max_hours_per_day=8, min_rest_hours=12
        )
        plain = await register_community(client, admin, "c-rested")
        registered = await seen.wait_for("community.registered", 2)
    assert strict["max_hours_per_day"] == 8
    assert plain["max_consecutive_days"] == 6
    limits = {
        event["subject"]: (
            event["data"]["max_hours_per_day"],
            event["data"]["min_rest_hours"],
            event["data"]["max_consecutive_days"],
        )
        for event in registered
    }
    assert limits["c-tired"] == (8, 12, 6)
    assert limits["c-rested"] == (10, 11, 6)
    too_long = await client.post(
        "/v1/communities",
        json={
            "id": "c-x",
            "name": "X",
            "street": "s-x",
            "district": "d-x",
            "max_hours_per_day": 30,
        },
        headers=bearer(admin),
    )
    assert too_long.status_code == 422, too_long.text


async def test_an_admin_changes_a_communitys_limits(
    client: httpx.AsyncClient, token: Callable[..., str], module_service_env: dict[str, str]
) -> None:
    admin = bearer(token("admin"))
    await register_community(client, token("admin"), "c-changed")
    secretary = bearer(token("secretary", community="c-changed"))
    url = "/v1/communities/c-changed"
    refused = await client.patch(url, json={"max_hours_per_day": 6}, headers=secretary)
    assert refused.status_code == 403, refused.text
    assert (await client.patch(url, json={}, headers=admin)).status_code == 422
    missing = await client.patch(
        "/v1/communities/c-none", json={"max_hours_per_day": 6}, headers=admin
    )
    assert missing.status_code == 404
    async with collect(module_service_env["RABBITMQ_URL"], "community.updated") as seen:
        changed = await client.patch(url, json={"max_hours_per_day": 6}, headers=admin)
        assert changed.status_code == 200, changed.text
        [event] = await seen.wait_for("community.updated")
    assert changed.json()["max_hours_per_day"] == 6
    assert changed.json()["min_rest_hours"] == 11
    assert changed.json()["version"] == 2
    assert event["subject"] == "c-changed"
    assert event["data"] == {
        "community_id": "c-changed",
        "version": 2,
        "max_hours_per_day": 6,
        "min_rest_hours": 11,
        "max_consecutive_days": 6,
    }
    read = await client.get(url, headers=admin)
    assert read.json()["max_hours_per_day"] == 6
