"""A series across dispatch restarts: a real dispatch process is killed (SIGKILL) right when
its series timer is due, again and again, and restarted; every occurrence is published
exactly once (no day lost, none doubled), in the store and on the broker."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.dispatch.support import (
    DispatchDb,
    dispatch_db,
    eventually,
    iso,
    register_community,
    sign,
    soon,
)
from tests.support.events import collect
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

COMMUNITY = "c-series-restart"
SECRETARY = sign("secretary", community=COMMUNITY)
OCCURRENCES = 15
EVERY_S = 4
# Each kill lands this long after the timer fell due (the wheel polls every 0.1 s): before,
# during and after its transaction.
KILL_AFTER_S = (0.0, 0.08, 0.15, 0.3)


async def _next_due(db: DispatchDb, series_id: str) -> datetime | None:
    timer = await db.db["timers"].find_one(
        {"kind": "series.publish", "payload.series_id": series_id, "state": "pending"}
    )
    return None if timer is None else timer["due_at"]


async def test_every_occurrence_is_published_once_across_kills(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str]
) -> None:
    dispatch = start_service(
        "dispatch",
        WHISTLE_TIMER_LEASE_S="1",
        WHISTLE_TIMER_POLL_S="0.1",
        WHISTLE_LEASE_TTL_S="1.5",
    )
    async with (
        collect(service_env["RABBITMQ_URL"], "series.published", "demand.published") as events,
        dispatch_db(service_env["MONGODB_URL"], service_env["WHISTLE_DB_PREFIX"]) as db,
    ):
        async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as client:
            await register_community(client, sign("admin"), COMMUNITY)
            # One occurrence every 4 s, each published 3 s ahead; an hour long, so none ends
            # while dispatch is down (a day lost would then be a bug, not the outage).
            starts = soon(4.0).replace(microsecond=0)  # a rule counts whole seconds
            body: dict[str, Any] = {
                "community_id": COMMUNITY,
                "kind": "staffing",
                "title": "Night watch",
                "slots": 1,
                "starts_at": iso(starts),
                "ends_at": iso(starts + timedelta(hours=1)),
                "rrule": f"FREQ=SECONDLY;INTERVAL={EVERY_S};COUNT={OCCURRENCES}",
                "horizon_days": 3 / 86400,
            }
            response = await client.post("/v1/series", json=body, headers=bearer(SECRETARY))
            assert response.status_code == 201, response.text
            series_id = response.json()["id"]

        kills = 0
        for delay in KILL_AFTER_S:
            due = await eventually(lambda: _next_due(db, series_id), lambda d: d is not None)
            if due is None:
                break  # the series is done (restarts took longer than its occurrences)
            wait = (due - datetime.now(UTC)).total_seconds() + delay
            await asyncio.sleep(max(wait, 0))
            dispatch.kill()
            kills += 1
            await asyncio.sleep(0.3)
            await asyncio.to_thread(lambda: dispatch.start().wait_ready())
        assert kills >= 2

        records = await eventually(
            lambda: db.db["series_occurrences"].find({"series_id": series_id}).to_list(None),
            lambda found: len(found) >= OCCURRENCES,
            timeout=45,
        )
        assert sorted(r["status"] for r in records) == ["published"] * OCCURRENCES
        expected = [starts + timedelta(seconds=EVERY_S * n) for n in range(OCCURRENCES)]
        assert sorted(r["starts_at"] for r in records) == expected

        demands = await db.db["demands"].find({"series_id": series_id}).to_list(None)
        assert len(demands) == OCCURRENCES
        assert sorted(d["starts_at"] for d in demands) == expected
        assert {d["_id"] for d in demands} == {r["demand_id"] for r in records}

        # On the broker: every demand announced (the relay may send an event twice after a
        # kill, under one id: count ids), and no demand of another run.
        await eventually(
            lambda: _now(_announced(events.of_type("demand.published"), series_id)),
            lambda seen: len(seen) >= OCCURRENCES,
            timeout=30,
        )
        await events.settle(1.0)
        announced = _announced(events.of_type("demand.published"), series_id)
        assert announced == {d["_id"] for d in demands}
        batches = {e["id"]: e for e in events.of_type("series.published")}.values()
        in_batches = [d for batch in batches for d in batch["data"]["demand_ids"]]
        assert sorted(in_batches) == sorted(announced)

    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as client:
        shown = (await client.get(f"/v1/series/{series_id}", headers=bearer(SECRETARY))).json()
    assert shown["status"] == "finished"
    assert len(shown["demand_ids"]) == OCCURRENCES


def _announced(published: list[dict[str, Any]], series_id: str) -> set[str]:
    unique = {event["id"]: event for event in published}.values()
    ids = [e["data"]["demand_id"] for e in unique if e["data"].get("series_id") == series_id]
    assert len(ids) == len(set(ids)), "a demand announced under two event ids"
    return set(ids)


async def _now[T](value: T) -> T:
    return value
