"""Series at a real dispatch process over the real broker: a series publishes the occurrences
within its horizon as ordinary demands (`series_id` on each), its timer publishes the rest,
an edit of the rest updates or replaces the future demands, a cancel cancels them, and every
bad rule is refused with nothing stored."""

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.conftest import bearer
from tests.dispatch.support import (
    DispatchDb,
    assert_problem,
    eventually,
    iso,
    register_community,
    sign,
    soon,
)
from tests.support.events import EventCollector, collect
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

COMMUNITY = "c-series"
SECRETARY = sign("secretary", community=COMMUNITY)
OTHER = sign("secretary", community="c-series-other")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        await register_community(http, sign("admin"), COMMUNITY)
        await register_community(
            http, sign("admin"), "c-series-other", street="s-8", district="d-8"
        )
        yield http


@pytest.fixture(scope="module")
async def events(module_rabbitmq_url: str) -> AsyncIterator[EventCollector]:
    async with collect(module_rabbitmq_url, "series.*", "demand.*") as collector:
        yield collector


def tomorrow_at(hour: int) -> datetime:
    local = datetime.now(SHANGHAI) + timedelta(days=1)
    return local.replace(hour=hour, minute=0, second=0, microsecond=0)


def series_body(**overrides: Any) -> dict[str, Any]:
    starts = tomorrow_at(8)
    body: dict[str, Any] = {
        "community_id": COMMUNITY,
        "kind": "staffing",
        "title": "Morning gate",
        "description": "Gate 2, behind the bike shed",
        "location": {"grid": "G7", "address": "2 Gate Road"},
        "skills": ["checkpoint"],
        "slots": 2,
        "starts_at": iso(starts),
        "ends_at": iso(starts + timedelta(hours=4)),
        "rrule": "FREQ=DAILY;COUNT=10",
        "horizon_days": 3,
    }
    return body | overrides


async def create(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/series", json=series_body(**overrides), headers=bearer(SECRETARY)
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == f"/v1/series/{response.json()['id']}"
    return dict(response.json())


async def get(client: httpx.AsyncClient, path: str, token: str = SECRETARY) -> dict[str, Any]:
    response = await client.get(path, headers=bearer(token))
    assert response.status_code == 200, response.text
    return dict(response.json())


def of_series(events: EventCollector, event_type: str, series_id: str) -> list[dict[str, Any]]:
    return [e for e in events.of_type(event_type) if e["subject"] == series_id]


async def test_a_series_publishes_the_days_within_its_horizon_as_demands(
    client: httpx.AsyncClient, events: EventCollector
) -> None:
    series = await create(client)
    now = datetime.now(UTC)
    starts = [datetime.fromisoformat(o["starts_at"]) for o in series["next_occurrences"]]
    within = [s for s in starts if s <= now + timedelta(days=3)]
    assert len(series["demand_ids"]) == len(within) in (2, 3)
    assert series["status"] == "active"
    assert series["timezone"] == "Asia/Shanghai"
    assert [o["demand_id"] is not None for o in series["next_occurrences"]] == [
        s <= now + timedelta(days=3) for s in starts
    ]
    for demand_id, start in zip(series["demand_ids"], within, strict=True):
        demand = await get(client, f"/v1/demands/{demand_id}")
        assert demand["series_id"] == series["id"]
        assert datetime.fromisoformat(demand["starts_at"]) == start
        assert start.astimezone(SHANGHAI).hour == 8
        assert demand["title"] == "Morning gate"
        assert demand["location"]["address"] == "2 Gate Road"
    published = await events.wait_for("series.published")
    batch = [e for e in published if e["subject"] == series["id"]]
    assert len(batch) == 1
    assert batch[0]["data"]["demand_ids"] == series["demand_ids"]
    assert batch[0]["data"]["rrule"] == "FREQ=DAILY;COUNT=10"
    assert "address" not in str(batch[0]["data"])
    await events.wait_for("demand.published", count=len(within))
    announced = {
        e["data"]["demand_id"]: e["data"]["series_id"] for e in events.of_type("demand.published")
    }
    assert {d: announced.get(d) for d in series["demand_ids"]} == dict.fromkeys(
        series["demand_ids"], series["id"]
    )
    listed = await get(client, "/v1/series")
    assert series["id"] in [item["id"] for item in listed["items"]]


async def test_the_timer_publishes_each_later_occurrence_once(
    client: httpx.AsyncClient, events: EventCollector, db: DispatchDb
) -> None:
    # Occurrences 1.5 s apart, published 1 s ahead: the timer does all but the first.
    starts = soon(1.0)
    series = await create(
        client,
        starts_at=iso(starts),
        ends_at=iso(starts + timedelta(hours=1)),
        rrule="FREQ=SECONDLY;INTERVAL=2;COUNT=4",
        horizon_days=1.0 / 86400,
    )
    done = await eventually(
        lambda: get(client, f"/v1/series/{series['id']}"),
        # The series and its records are read one after the other: wait for both.
        lambda shown: len(shown["demand_ids"]) == 4 and shown["status"] == "finished",
        timeout=20,
    )
    assert done["status"] == "finished", done
    assert done["next_occurrences"]
    assert all(o["demand_id"] for o in done["next_occurrences"])
    stored = await db.db["demands"].find({"series_id": series["id"]}).to_list(None)
    assert sorted(d["_id"] for d in stored) == sorted(done["demand_ids"])
    assert len({d["starts_at"] for d in stored}) == 4
    await events.settle(0.5)
    batches = of_series(events, "series.published", series["id"])
    assert sorted(d for b in batches for d in b["data"]["demand_ids"]) == sorted(done["demand_ids"])


async def test_an_edit_of_titles_and_slots_updates_the_future_demands_in_place(
    client: httpx.AsyncClient, events: EventCollector
) -> None:
    series = await create(client)
    response = await client.patch(
        f"/v1/series/{series['id']}",
        json={"title": "Morning gate (north)", "slots": 3},
        headers=bearer(SECRETARY),
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["demand_ids"] == series["demand_ids"]
    assert edited["title"] == "Morning gate (north)"
    for demand_id in series["demand_ids"]:
        demand = await get(client, f"/v1/demands/{demand_id}")
        assert (demand["title"], demand["slots"], demand["status"]) == (
            "Morning gate (north)",
            3,
            "open",
        )
    changed = await eventually(
        lambda: _now(of_series(events, "series.changed", series["id"])), bool
    )
    assert changed[0]["data"]["changed"] == ["title", "slots"]
    assert sorted(changed[0]["data"]["updated"]) == sorted(series["demand_ids"])
    assert changed[0]["data"]["cancelled"] == []
    updates = await eventually(
        lambda: _now(
            [e for e in events.of_type("demand.updated") if e["subject"] in series["demand_ids"]]
        ),
        lambda seen: len(seen) == len(series["demand_ids"]),
    )
    assert {u["subject"] for u in updates} == set(series["demand_ids"])


async def test_a_field_no_demand_event_carries_publishes_the_same_days_again(
    client: httpx.AsyncClient,
) -> None:
    series = await create(client)
    response = await client.patch(
        f"/v1/series/{series['id']}",
        json={"description": "Gate 3 now", "exposure": "medium"},
        headers=bearer(SECRETARY),
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert len(edited["demand_ids"]) == len(series["demand_ids"])
    assert set(edited["demand_ids"]).isdisjoint(series["demand_ids"])
    # The same days, each record naming the demand it replaced.
    assert [p["starts_at"] for p in edited["published"]] == [
        p["starts_at"] for p in series["published"]
    ]
    assert [p["replaced"] for p in edited["published"]] == [[d] for d in series["demand_ids"]]
    for demand_id in edited["demand_ids"]:
        demand = await get(client, f"/v1/demands/{demand_id}")
        assert (demand["description"], demand["exposure"]) == ("Gate 3 now", "medium")


async def test_a_new_rule_or_new_hours_replace_the_future_demands(
    client: httpx.AsyncClient, events: EventCollector
) -> None:
    series = await create(client, rrule="FREQ=DAILY;COUNT=6")
    first = series["demand_ids"]
    new_start = tomorrow_at(14)
    response = await client.patch(
        f"/v1/series/{series['id']}",
        json={"starts_at": iso(new_start), "ends_at": iso(new_start + timedelta(hours=3))},
        headers=bearer(SECRETARY),
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert set(edited["demand_ids"]).isdisjoint(first)
    for demand_id in first:
        old = await get(client, f"/v1/demands/{demand_id}")
        assert old["status"] == "cancelled"
        assert "changed" in old["cancel_reason"]
    for demand_id in edited["demand_ids"]:
        new = await get(client, f"/v1/demands/{demand_id}")
        assert datetime.fromisoformat(new["starts_at"]).astimezone(SHANGHAI).hour == 14
        assert new["series_id"] == series["id"]
    # New hours are new occurrences: the old days' records say their demands were superseded.
    superseded = [p["demand_id"] for p in edited["published"] if p["status"] == "superseded"]
    assert sorted(superseded) == sorted(first)
    changed = await eventually(
        lambda: _now(of_series(events, "series.changed", series["id"])), bool
    )
    assert sorted(changed[0]["data"]["cancelled"]) == sorted(first)
    assert changed[0]["data"]["changed"] == ["starts_at", "ends_at"]

    # A rule of every other day: the days it no longer has are cancelled, not re-published.
    response = await client.patch(
        f"/v1/series/{series['id']}",
        json={"rrule": "FREQ=DAILY;INTERVAL=2;COUNT=3"},
        headers=bearer(SECRETARY),
    )
    assert response.status_code == 200, response.text
    again = response.json()
    starts = [datetime.fromisoformat(o["starts_at"]) for o in again["next_occurrences"]]
    assert [b - a for a, b in itertools.pairwise(starts)] == [timedelta(days=2)] * (len(starts) - 1)
    live = [
        d
        for d in again["demand_ids"]
        if (await get(client, f"/v1/demands/{d}"))["status"] == "open"
    ]
    assert {
        datetime.fromisoformat((await get(client, f"/v1/demands/{d}"))["starts_at"]) for d in live
    } == {s for s in starts if s <= datetime.now(UTC) + timedelta(days=3)}


async def test_cancel_the_rest_cancels_future_demands_and_stops_the_series(
    client: httpx.AsyncClient, events: EventCollector, db: DispatchDb
) -> None:
    series = await create(client)
    response = await client.post(
        f"/v1/series/{series['id']}/cancel",
        json={"reason": "the checkpoint closes"},
        headers=bearer(SECRETARY),
    )
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["next_occurrences"] == []
    for demand_id in series["demand_ids"]:
        demand = await get(client, f"/v1/demands/{demand_id}")
        assert (demand["status"], demand["cancel_reason"]) == ("cancelled", "the checkpoint closes")
    said = await eventually(lambda: _now(of_series(events, "series.cancelled", series["id"])), bool)
    assert sorted(said[0]["data"]["cancelled"]) == sorted(series["demand_ids"])
    pending = await db.db["timers"].count_documents(
        {"kind": "series.publish", "payload.series_id": series["id"], "state": "pending"}
    )
    assert pending == 0
    again = await client.post(
        f"/v1/series/{series['id']}/cancel", json={"reason": "twice"}, headers=bearer(SECRETARY)
    )
    assert_problem(again, 409, "series-closed")
    edit = await client.patch(
        f"/v1/series/{series['id']}", json={"slots": 1}, headers=bearer(SECRETARY)
    )
    assert_problem(edit, 409, "series-closed")


@pytest.mark.parametrize(
    ("overrides", "slug", "field"),
    [
        ({"rrule": "FREQ=DAILY"}, "rrule-unbounded", "rrule"),
        ({"rrule": "FREQ=DAILY;COUNT=400"}, "rrule-unbounded", "rrule"),
        ({"rrule": "FREQ=DAILY;UNTIL=20991230T000000Z"}, "rrule-unbounded", "rrule"),
        ({"rrule": "FREQ=NEVER;COUNT=2"}, "invalid-rrule", "rrule"),
        ({"rrule": "FREQ=DAILY;BYDAY=XY;COUNT=2"}, "invalid-rrule", "rrule"),
        ({"rrule": "FREQ=DAILY;COUNT=2", "timezone": "Mars/Base"}, "validation-error", "timezone"),
        ({"rrule": ""}, "validation-error", "rrule"),
        ({"horizon_days": 0}, "validation-error", "horizon_days"),
        ({"community_id": "c-nowhere"}, "forbidden", None),
    ],
)
async def test_bad_series_are_refused_and_nothing_is_stored(
    client: httpx.AsyncClient,
    db: DispatchDb,
    overrides: dict[str, Any],
    slug: str,
    field: str | None,
) -> None:
    before = await db.db["series"].count_documents({})
    demands = await db.db["demands"].count_documents({})
    response = await client.post(
        "/v1/series", json=series_body(**overrides), headers=bearer(SECRETARY)
    )
    problem = assert_problem(response, 403 if slug == "forbidden" else 422, slug)
    if field is not None:
        assert field in str(problem["errors"][0]["loc"])
    preview = await client.post(
        "/v1/series/preview", json=series_body(**overrides), headers=bearer(SECRETARY)
    )
    assert_problem(preview, 403 if slug == "forbidden" else 422, slug)
    assert await db.db["series"].count_documents({}) == before
    assert await db.db["demands"].count_documents({}) == demands


async def test_preview_says_the_occurrences_and_stores_nothing(
    client: httpx.AsyncClient, db: DispatchDb
) -> None:
    before = await db.db["series"].count_documents({})
    response = await client.post(
        "/v1/series/preview",
        json=series_body(rrule="FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=30"),
        headers=bearer(SECRETARY),
    )
    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["count"] == 30
    assert len(shown["occurrences"]) == 20
    days = {
        datetime.fromisoformat(o["starts_at"]).astimezone(SHANGHAI).weekday()
        for o in shown["occurrences"]
    }
    assert days == {0, 2, 4}
    assert await db.db["series"].count_documents({}) == before


async def test_only_the_communitys_secretary_manages_or_reads_its_series(
    client: httpx.AsyncClient,
) -> None:
    series = await create(client, rrule="FREQ=DAILY;COUNT=2")
    for method, path, body in (
        ("PATCH", f"/v1/series/{series['id']}", {"slots": 1}),
        ("POST", f"/v1/series/{series['id']}/cancel", {"reason": "mine now"}),
    ):
        response = await client.request(method, path, json=body, headers=bearer(OTHER))
        assert_problem(response, 403, "forbidden")
    hidden = await client.get(f"/v1/series/{series['id']}", headers=bearer(OTHER))
    assert_problem(hidden, 404, "not-found")
    assert await get(client, f"/v1/series/{series['id']}", sign("auditor"))
    assert series["id"] not in [i["id"] for i in (await get(client, "/v1/series", OTHER))["items"]]
    volunteer = sign("volunteer", volunteer="v-1")
    refused = await client.post("/v1/series", json=series_body(), headers=bearer(volunteer))
    assert refused.status_code == 403
    unchanged = await get(client, f"/v1/series/{series['id']}")
    assert unchanged["version"] == series["version"]
    assert unchanged["slots"] == 2


async def _now[T](value: T) -> T:
    return value
