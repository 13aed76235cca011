"""The escalation ladder and expiry with stored timers, windows shortened to seconds:
community -> street at `fill_by`, street -> district a step later, stopped by a fill, a
cancellation or a start; `expired` when `ends_at` passes without completion."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import bearer
from tests.dispatch.support import (
    DispatchDb,
    UnitsFacts,
    assert_problem,
    demand_body,
    demand_state,
    eventually,
    iso,
    post_demand,
    register_community,
    sign,
    soon,
)
from tests.support.events import EventCollector, collect, publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

STEP_S = 1.5
COMMUNITY = "c-ladder"
SLOW = "c-slow"  # a community that sets its own, long step
SECRETARY = sign("secretary", community=COMMUNITY)
STREET = sign("secretary", "street-staff", community="s-ladder")
DISTRICT = sign("secretary", "district-staff", community="d-ladder")


@pytest.fixture(scope="module")
def dispatch(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_module_service(
        "dispatch", WHISTLE_ESCALATION_STEP_S=str(STEP_S), WHISTLE_COMPLETION_GRACE_S="1"
    )


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        admin = sign("admin")
        await register_community(http, admin, COMMUNITY, street="s-ladder", district="d-ladder")
        slow = await register_community(
            http, admin, SLOW, street="s-ladder", district="d-ladder", escalation_step_s=600
        )
        assert slow["escalation_step_s"] == 600
        yield http


@pytest.fixture
async def events(module_rabbitmq_url: str) -> AsyncIterator[EventCollector]:
    async with collect(module_rabbitmq_url, "demand.escalated", "demand.expired") as collector:
        yield collector


def urgent(community: str, fill_in_s: float, **overrides: Any) -> dict[str, Any]:
    """A demand whose `fill_by` is seconds away (and whose shift is a day away)."""
    starts = soon(24 * 3600)
    return demand_body(
        community,
        starts_at=iso(starts),
        ends_at=iso(starts + timedelta(hours=8)),
        fill_by=iso(soon(fill_in_s)),
        **overrides,
    )


def of(events: list[dict[str, Any]], demand_id: str) -> list[dict[str, Any]]:
    return [event for event in events if event["subject"] == demand_id]


async def escalations(events: EventCollector, demand_id: str, count: int) -> list[dict[str, Any]]:
    await eventually(
        lambda: _ready(events.of_type("demand.escalated")),
        lambda seen: len(of(seen, demand_id)) >= count,
        timeout=15,
    )
    return of(events.of_type("demand.escalated"), demand_id)


async def _ready(value: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return value


async def test_an_unfilled_demand_climbs_to_the_street_then_the_district(
    client: httpx.AsyncClient, events: EventCollector, db: DispatchDb
) -> None:
    demand = await post_demand(client, SECRETARY, urgent(COMMUNITY, 0.5))
    url = f"/v1/demands/{demand['id']}"
    street_event, *_ = await escalations(events, demand["id"], 1)
    assert street_event["data"] | {"demand_id": None} == {
        "demand_id": None,
        "community_id": COMMUNITY,
        "from_level": "community",
        "to_level": "street",
        "target": "s-ladder",
        "filled": 0,
        "slots": 4,
    }
    assert street_event["correlationid"] == demand["id"]
    assert street_event["actor"] == "dispatch"
    assert (await client.get(url, headers=bearer(STREET))).status_code == 200

    both = await escalations(events, demand["id"], 2)
    district_event = both[1]
    assert district_event["data"]["from_level"] == "street"
    assert district_event["data"]["to_level"] == "district"
    assert district_event["data"]["target"] == "d-ladder"
    state = await demand_state(client, DISTRICT, demand["id"])
    assert state["level"] == "district"
    assert state["escalated_at"] is not None
    listed = await client.get("/v1/demands", params={"level": "district"}, headers=bearer(DISTRICT))
    assert demand["id"] in [item["id"] for item in listed.json()["items"]]

    # The top of the ladder: nothing further, ever.
    await events.settle(STEP_S + 0.5)
    assert len(of(events.of_type("demand.escalated"), demand["id"])) == 2
    assert (await db.outbox_types(demand["id"])).count("demand.escalated") == 2


async def test_a_community_sets_its_own_step(
    client: httpx.AsyncClient, events: EventCollector, db: DispatchDb
) -> None:
    secretary = sign("secretary", community=SLOW)
    demand = await post_demand(client, secretary, urgent(SLOW, 0.3))
    await escalations(events, demand["id"], 1)
    state = await demand_state(client, secretary, demand["id"])
    timer = await db.db["timers"].find_one({"_id": f"escalate:{demand['id']}:district"})
    assert timer is not None
    assert timer["state"] == "pending"
    escalated_at = state["escalated_at"]
    wait = timer["due_at"] - datetime.fromisoformat(escalated_at)
    assert timedelta(seconds=599) < wait < timedelta(seconds=601)


async def test_a_demand_filled_in_time_does_not_escalate(
    client: httpx.AsyncClient, events: EventCollector, db: DispatchDb, module_rabbitmq_url: str
) -> None:
    demand = await post_demand(client, SECRETARY, urgent(COMMUNITY, 3.0, slots=1))
    facts = UnitsFacts(demand)
    await publish(module_rabbitmq_url, facts.accepted("a", 1, filled=1), facts.filled(1))
    timer = await eventually(
        lambda: db.db["timers"].find_one({"_id": f"escalate:{demand['id']}:street"}),
        lambda found: found is not None and found["state"] == "fired",
    )
    assert timer is not None
    assert timer["state"] == "fired"
    state = await demand_state(client, SECRETARY, demand["id"])
    assert (state["status"], state["level"]) == ("filled", "community")
    assert of(events.of_type("demand.escalated"), demand["id"]) == []

    # A slot opening after `fill_by` takes the ladder up again, one step later.
    await publish(module_rabbitmq_url, facts.withdrawn("a", 1, filled=0), facts.reopened(0))
    (resumed,) = await escalations(events, demand["id"], 1)
    assert resumed["data"]["to_level"] == "street"


async def test_a_cancelled_demand_does_not_escalate(
    client: httpx.AsyncClient, events: EventCollector, db: DispatchDb
) -> None:
    demand = await post_demand(client, SECRETARY, urgent(COMMUNITY, 2.5))
    response = await client.post(
        f"/v1/demands/{demand['id']}/cancel", json={"reason": "handled"}, headers=bearer(SECRETARY)
    )
    assert response.status_code == 200
    timers = await db.db["timers"].find({"payload.demand_id": demand["id"]}).to_list(None)
    assert {timer["state"] for timer in timers} == {"cancelled"}
    # Past `fill_by` with the timer wheel running: still nothing (absence needs a bounded wait).
    fill_by = datetime.fromisoformat(demand["fill_by"])
    await asyncio.sleep(max(0.0, (fill_by - datetime.now(UTC)).total_seconds()) + 1.0)
    assert of(events.events, demand["id"]) == []
    assert_problem(
        await client.get(f"/v1/demands/{demand['id']}", headers=bearer(STREET)), 403, "forbidden"
    )


async def test_an_unfinished_demand_expires_when_its_shift_ends(
    client: httpx.AsyncClient, events: EventCollector
) -> None:
    starts = soon(0.5)  # one moment for both: two calls may land in different milliseconds
    body = demand_body(
        COMMUNITY, starts_at=iso(starts), ends_at=iso(soon(3.0)), fill_by=iso(starts)
    )
    demand = await post_demand(client, SECRETARY, body)
    await eventually(
        lambda: _ready(events.of_type("demand.expired")),
        lambda seen: len(of(seen, demand["id"])) == 1,
    )
    (expired,) = of(events.of_type("demand.expired"), demand["id"])
    assert expired["data"]["filled"] == 0
    assert expired["data"]["slots"] == 4
    state = await demand_state(client, SECRETARY, demand["id"])
    assert state["status"] == "expired"
    complete = await client.post(
        f"/v1/demands/{demand['id']}/complete", json={}, headers=bearer(SECRETARY)
    )
    assert_problem(complete, 409, "demand-closed")


async def test_a_filled_demand_nobody_checked_in_for_expires(
    client: httpx.AsyncClient, events: EventCollector, module_rabbitmq_url: str
) -> None:
    body = demand_body(COMMUNITY, starts_at=iso(soon(0.5)), ends_at=iso(soon(4.0)), slots=1)
    demand = await post_demand(client, SECRETARY, body)
    facts = UnitsFacts(demand)
    await publish(module_rabbitmq_url, facts.accepted("a", 1, filled=1), facts.filled(1))
    await eventually(
        lambda: _ready(events.of_type("demand.expired")),
        lambda seen: len(of(seen, demand["id"])) == 1,
    )
    (expired,) = of(events.of_type("demand.expired"), demand["id"])
    assert (expired["data"]["filled"], expired["data"]["slots"]) == (1, 1)
    state = await demand_state(client, SECRETARY, demand["id"])
    assert state["status"] == "expired"


async def test_a_demand_in_progress_gets_a_grace_period_to_be_confirmed(
    client: httpx.AsyncClient, events: EventCollector, module_rabbitmq_url: str
) -> None:
    ends = soon(4.0)  # time enough for the check-in to arrive first, even on a busy machine
    body = demand_body(COMMUNITY, starts_at=iso(soon(0.5)), ends_at=iso(ends), slots=1)
    demand = await post_demand(client, SECRETARY, body)
    facts = UnitsFacts(demand)
    await publish(module_rabbitmq_url, facts.accepted("a", 1, filled=1), facts.checked_in("a", 1))
    await eventually(
        lambda: demand_state(client, SECRETARY, demand["id"]),
        lambda state: state["status"] == "in_progress",
    )
    # `ends_at` passes; the grace (1 s here) follows; then it expires.
    await eventually(
        lambda: _ready(events.of_type("demand.expired")),
        lambda seen: len(of(seen, demand["id"])) == 1,
    )
    (expired,) = of(events.of_type("demand.expired"), demand["id"])
    assert datetime.fromisoformat(expired["time"]) >= ends + timedelta(seconds=1)
    state = await demand_state(client, SECRETARY, demand["id"])
    assert state["status"] == "expired"
