"""Stored timers against real process faults: a timer due while dispatch was killed fires once
when it comes back; two dispatch processes at once fire each timer once."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.dispatch.support import (
    dispatch_db,
    eventually,
    post_demand,
    register_community,
    sign,
)
from tests.dispatch.test_escalation import urgent
from tests.support.events import EventCollector, collect
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

COMMUNITY = "c-fault"
SECRETARY = sign("secretary", community=COMMUNITY)


def escalated(events: EventCollector, demand_id: str) -> list[dict[str, Any]]:
    return [e for e in events.of_type("demand.escalated") if e["subject"] == demand_id]


async def test_a_timer_due_while_dispatch_was_killed_fires_once_when_it_is_back(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
) -> None:
    # A long step: only the street escalation falls inside this test.
    # A short relay lease, so the restarted process takes over the killed one's sooner.
    dispatch = start_service(
        "dispatch", WHISTLE_ESCALATION_STEP_S="3600", WHISTLE_LEASE_TTL_S="1.5"
    )
    async with (
        collect(service_env["RABBITMQ_URL"], "demand.*") as events,
        dispatch_db(service_env["MONGODB_URL"], service_env["WHISTLE_DB_PREFIX"]) as db,
    ):
        async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as client:
            await register_community(client, sign("admin"), COMMUNITY)
            demand = await post_demand(client, SECRETARY, urgent(COMMUNITY, 3.0))
        dispatch.kill()
        fill_by = datetime.fromisoformat(demand["fill_by"])
        # Well past due, with nobody running (a fixed wait: there is no condition to poll).
        await asyncio.sleep((fill_by - datetime.now(UTC)).total_seconds() + 0.5)
        assert escalated(events, demand["id"]) == []

        await asyncio.to_thread(lambda: dispatch.start().wait_ready())
        fired = await eventually(
            lambda: _now(escalated(events, demand["id"])), lambda seen: len(seen) >= 1
        )
        assert len(fired) == 1
        await events.settle(1.5)
        assert len(escalated(events, demand["id"])) == 1
        assert (await db.outbox_types(demand["id"])).count("demand.escalated") == 1
        # The demand published before the kill was not lost either (the relay may publish it
        # twice if the kill fell between the broker's confirm and marking it sent: one id).
        assert {event["id"] for event in events.of_type("demand.published")} == {
            (await db.db["outbox"].find_one({"type": "demand.published"}) or {}).get("_id")
        }


async def test_two_dispatch_processes_fire_each_timer_once(
    start_service: Callable[..., ServiceProcess],
    service_env: dict[str, str],
) -> None:
    first = start_service("dispatch", wait=False, WHISTLE_ESCALATION_STEP_S="1")
    second = start_service("dispatch", wait=False, WHISTLE_ESCALATION_STEP_S="1")
    await asyncio.gather(asyncio.to_thread(first.wait_ready), asyncio.to_thread(second.wait_ready))
    async with collect(service_env["RABBITMQ_URL"], "demand.escalated") as events:
        demands = []
        async with (
            httpx.AsyncClient(base_url=first.url, timeout=15) as one,
            httpx.AsyncClient(base_url=second.url, timeout=15) as two,
        ):
            await register_community(one, sign("admin"), COMMUNITY)
            for n, client in enumerate((one, two, one, two)):
                body = urgent(COMMUNITY, 0.5 + 0.2 * n, title=f"Checkpoint shift {n}")
                demands.append(await post_demand(client, SECRETARY, body))
        ids = [demand["id"] for demand in demands]
        await events.wait_for("demand.escalated", count=2 * len(ids), timeout=20)
        await events.settle(1.5)
        fired = events.of_type("demand.escalated")
        per_step = sorted((e["subject"], e["data"]["to_level"]) for e in fired)
        assert per_step == sorted(
            (demand_id, level) for demand_id in ids for level in ("street", "district")
        )
    async with dispatch_db(service_env["MONGODB_URL"], service_env["WHISTLE_DB_PREFIX"]) as db:
        for demand_id in ids:
            assert (await db.outbox_types(demand_id)).count("demand.escalated") == 2


async def _now[T](value: T) -> T:
    return value
