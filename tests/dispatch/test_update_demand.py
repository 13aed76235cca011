"""A secretary edits a live demand (PATCH /v1/demands/{id}) at a real dispatch process: the
edit is stored as a new version, `demand.updated` goes out on the real broker, and every edit
the rules refuse changes nothing."""

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from faststream import AckPolicy

from shared.broker.consumer import EventConsumer, Incoming
from shared.broker.topology import ConsumerQueue
from shared.events.catalogue import DemandUpdated
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
from tests.support.brokers import Brokers
from tests.support.events import EventCollector, collect, publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

COMMUNITY = "c-edit"
SECRETARY = sign("secretary", community=COMMUNITY)


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        await register_community(http, sign("admin"), COMMUNITY)
        await register_community(http, sign("admin"), "c-elsewhere", street="s-9", district="d-9")
        yield http


@pytest.fixture(scope="module")
async def events(module_rabbitmq_url: str) -> AsyncIterator[EventCollector]:
    async with collect(module_rabbitmq_url, "demand.updated") as collector:
        yield collector


async def new_demand(client: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    body = demand_body(COMMUNITY, description="Ring twice at the back door", **overrides)
    return await post_demand(client, SECRETARY, body)


async def patch(
    client: httpx.AsyncClient,
    demand_id: str,
    body: dict[str, Any],
    token: str = SECRETARY,
    **headers: str,
) -> httpx.Response:
    return await client.patch(
        f"/v1/demands/{demand_id}", json=body, headers={**bearer(token), **headers}
    )


async def updates_of(db: DispatchDb, demand_id: str) -> list[dict[str, Any]]:
    documents = (
        await db.db["outbox"]
        .find({"event.subject": demand_id, "type": "demand.updated"})
        .to_list(None)
    )
    return [document["event"] for document in documents]


async def test_an_edit_is_stored_as_a_new_version_and_announced(
    client: httpx.AsyncClient, db: DispatchDb, events: EventCollector
) -> None:
    demand = await new_demand(client)
    response = await patch(
        client,
        demand["id"],
        {"title": "South gate", "priority": "critical", "skills": ["Radio ", "radio", "First aid"]},
        **{"If-Match": f'"{demand["version"]}"'},
    )
    assert response.status_code == 200, response.text
    edited = response.json()
    assert edited["title"] == "South gate"
    assert edited["priority"] == "critical"
    assert edited["skills"] == ["first aid", "radio"]
    assert edited["slots"] == demand["slots"]
    assert edited["version"] == demand["version"] + 1
    assert response.headers["etag"] == f'"{edited["version"]}"'
    assert (await demand_state(client, SECRETARY, demand["id"]))["title"] == "South gate"

    [sent] = [e for e in await events.wait_for("demand.updated") if e["subject"] == demand["id"]]
    assert sent["data"]["changed"] == ["title", "priority", "skills"]
    assert sent["data"]["version"] == edited["version"]
    assert sent["data"]["slots"] == demand["slots"]  # every editable field, changed or not
    assert datetime.fromisoformat(sent["data"]["fill_by"]) == datetime.fromisoformat(
        demand["fill_by"]
    )
    # Public: the description and the exact place never ride on the audited exchange.
    assert "Ring twice" not in str(sent)
    assert "North gate" not in str(sent)
    assert sent["causationid"].startswith("req")
    assert sent["actor"] == f"secretary-{COMMUNITY}"


async def test_an_edit_that_changes_nothing_keeps_the_version_and_says_nothing(
    client: httpx.AsyncClient, db: DispatchDb
) -> None:
    demand = await new_demand(client)
    response = await patch(client, demand["id"], {"title": demand["title"], "slots": 4})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == demand["version"]
    assert await updates_of(db, demand["id"]) == []


async def test_slots_follow_the_accepted_people_and_never_go_below_them(
    client: httpx.AsyncClient, db: DispatchDb, module_rabbitmq_url: str
) -> None:
    demand = await new_demand(client, slots=4)
    facts = UnitsFacts(demand)
    await publish(module_rabbitmq_url, facts.accepted("a", 3, filled=3))
    await eventually(
        lambda: demand_state(client, SECRETARY, demand["id"]), lambda d: d["filled"] == 3
    )
    refused = await patch(client, demand["id"], {"slots": 2})
    problem = assert_problem(refused, 409, "slots-below-accepted")
    assert problem["errors"][0]["loc"] == ["body", "slots"]
    assert (await demand_state(client, SECRETARY, demand["id"]))["slots"] == 4

    filled = await patch(client, demand["id"], {"slots": 3})
    assert filled.status_code == 200, filled.text
    assert (filled.json()["slots"], filled.json()["status"]) == (3, "filled")
    reopened = await patch(client, demand["id"], {"slots": 5})
    assert (reopened.json()["slots"], reopened.json()["status"]) == (5, "open")
    changed = [event["data"]["changed"] for event in await updates_of(db, demand["id"])]
    assert changed == [["slots"], ["slots"]]


async def test_moving_fill_by_moves_the_first_escalation(
    client: httpx.AsyncClient, db: DispatchDb
) -> None:
    demand = await new_demand(client)
    fill_by = soon(24 * 3600)
    response = await patch(client, demand["id"], {"fill_by": iso(fill_by)})
    assert response.status_code == 200, response.text
    timer = await db.db["timers"].find_one({"_id": f"escalate:{demand['id']}:street"})
    assert timer is not None
    assert timer["state"] == "pending"
    assert abs(timer["due_at"] - fill_by) < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"fill_by": iso(soon(-24 * 3600))}, "fill_by"),  # in the past
        ({"fill_by": iso(soon(30 * 24 * 3600))}, "fill_by"),  # after starts_at
        ({"fill_by": "0001-01-01T00:00:00+14:00"}, None),  # no UTC instant
        ({}, None),  # nothing to change
        ({"title": None}, None),  # null is not a value
        ({"slots": 0}, None),
        ({"title": ""}, None),
        ({"status": "completed"}, None),  # not editable
        ({"description": "elsewhere"}, None),
    ],
)
async def test_an_invalid_edit_is_a_422_and_changes_nothing(
    client: httpx.AsyncClient, db: DispatchDb, body: dict[str, Any], field: str | None
) -> None:
    demand = await new_demand(client)
    problem = assert_problem(await patch(client, demand["id"], body), 422, "validation-error")
    if field is not None:
        assert problem["errors"][0]["loc"] == ["body", field]
    assert (await demand_state(client, SECRETARY, demand["id"]))["version"] == demand["version"]
    assert await updates_of(db, demand["id"]) == []


async def test_edits_the_rules_refuse_change_nothing(
    client: httpx.AsyncClient, db: DispatchDb
) -> None:
    demand = await new_demand(client)
    stale = await patch(client, demand["id"], {"title": "x"}, **{"If-Match": '"99"'})
    assert_problem(stale, 412, "version-mismatch")
    other = sign("secretary", community="c-elsewhere")
    assert_problem(await patch(client, demand["id"], {"title": "x"}, other), 403, "forbidden")
    volunteer = sign("volunteer", volunteer="v-1")
    assert_problem(await patch(client, demand["id"], {"title": "x"}, volunteer), 403, "forbidden")
    assert_problem(await patch(client, "dem_nothing", {"title": "x"}), 404, "not-found")
    assert (await demand_state(client, SECRETARY, demand["id"]))["version"] == demand["version"]

    cancel = await client.post(
        f"/v1/demands/{demand['id']}/cancel", json={"reason": "rain"}, headers=bearer(SECRETARY)
    )
    assert cancel.status_code == 200, cancel.text
    assert_problem(await patch(client, demand["id"], {"title": "x"}), 409, "demand-closed")
    assert await updates_of(db, demand["id"]) == []


# A consumer of the new event, as a service would declare it: its queue by model, its map one
# entry, its handler typed. (Units should hold the real one: see the branch's report.)
EDITS = ConsumerQueue("tests", "demand-edits", (DemandUpdated,))


async def test_a_consumer_of_demand_updated_is_one_map_entry_and_its_handler(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    seen: list[Incoming[DemandUpdated]] = []

    async def on_demand_updated(event: Incoming[DemandUpdated]) -> None:
        seen.append(event)

    async def republish(*_: Any) -> None:
        raise AssertionError("the handler never fails here")

    consumer = EventConsumer("tests", EDITS, {DemandUpdated: on_demand_updated}, republish)
    brokers = Brokers("real", module_rabbitmq_url)
    broker = brokers.broker()
    broker.subscriber(EDITS.queue(), EDITS.exchange, ack_policy=AckPolicy.MANUAL)(consumer)
    demand = await new_demand(client)
    async with brokers.running(broker, EDITS):
        response = await patch(client, demand["id"], {"slots": 6})
        assert response.status_code == 200, response.text
        await eventually(lambda: _settled(consumer), lambda settled: settled >= 1)
    [event] = seen
    assert event.data == DemandUpdated.model_validate(event.envelope.data)
    assert (event.data.demand_id, event.data.slots, event.data.changed) == (
        demand["id"],
        6,
        ("slots",),
    )


async def _settled(consumer: EventConsumer) -> int:
    return consumer.settled
