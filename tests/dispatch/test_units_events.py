"""Dispatch keeps `filled` and `status` current from units' events, published here on the real
broker as units would: in order, out of order and twice."""

from collections.abc import AsyncIterator
from typing import Any

import aio_pika
import bson
import httpx
import pytest

from services.dispatch.entrypoints.events import DISPATCH_UNIT_EVENTS
from tests.conftest import bearer
from tests.dispatch.support import (
    DispatchDb,
    UnitsFacts,
    demand_body,
    demand_state,
    eventually,
    post_demand,
    register_community,
    sign,
)
from tests.support.events import publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

COMMUNITY = "c-units"
SECRETARY = sign("secretary", community=COMMUNITY)


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        await register_community(http, sign("admin"), COMMUNITY)
        yield http


async def new_demand(client: httpx.AsyncClient, slots: int = 4) -> dict[str, Any]:
    return await post_demand(client, SECRETARY, demand_body(COMMUNITY, slots=slots))


async def settles_at(client: httpx.AsyncClient, demand_id: str, **expected: Any) -> dict[str, Any]:
    """The demand once it shows the expected fields (or as it stands after the timeout)."""
    state = await eventually(
        lambda: demand_state(client, SECRETARY, demand_id),
        lambda value: all(value[key] == wanted for key, wanted in expected.items()),
    )
    assert {key: state[key] for key in expected} == expected
    return state


async def test_accepted_claims_fill_the_demand_and_a_withdrawal_reopens_it(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    demand = await new_demand(client)
    facts = UnitsFacts(demand)
    await publish(module_rabbitmq_url, facts.accepted("a", 2, filled=2))
    await settles_at(client, demand["id"], filled=2, status="open")
    await publish(module_rabbitmq_url, facts.accepted("b", 2, filled=4), facts.filled(4))
    await settles_at(client, demand["id"], filled=4, status="filled")
    await publish(module_rabbitmq_url, facts.withdrawn("a", 2, filled=2), facts.reopened(2))
    await settles_at(client, demand["id"], filled=2, status="open")


async def test_an_accepted_arriving_after_its_withdrawal_does_not_count(
    client: httpx.AsyncClient, module_rabbitmq_url: str, db: DispatchDb
) -> None:
    demand = await new_demand(client)
    facts = UnitsFacts(demand)
    accepted = facts.accepted("a", 3, filled=3)
    withdrawn = facts.withdrawn("a", 3, filled=0)
    await publish(module_rabbitmq_url, withdrawn)
    await publish(module_rabbitmq_url, accepted)
    await eventually(
        lambda: db.db["processed_events"].count_documents({"event_id": accepted.id}),
        lambda count: count == 1,
    )
    state = await demand_state(client, SECRETARY, demand["id"])
    assert (state["filled"], state["status"]) == (0, "open")


async def test_a_duplicate_delivery_counts_once(
    client: httpx.AsyncClient, module_rabbitmq_url: str, db: DispatchDb
) -> None:
    demand = await new_demand(client)
    facts = UnitsFacts(demand)
    first = facts.accepted("a", 1, filled=1)
    # The same event twice, and the same fact again under a new event id (a units replay).
    replay = first.model_copy(update={"id": "replayed-" + first.id})
    await publish(module_rabbitmq_url, first, first, replay)
    await eventually(
        lambda: db.db["processed_events"].count_documents(
            {"event_id": {"$in": [first.id, replay.id]}}
        ),
        lambda count: count == 2,
    )
    state = await demand_state(client, SECRETARY, demand["id"])
    assert state["filled"] == 1
    assert state["version"] == 2


async def test_units_saying_filled_shows_before_the_last_acceptance_arrives(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    demand = await new_demand(client, slots=2)
    facts = UnitsFacts(demand)
    accepted = facts.accepted("a", 2, filled=2)
    await publish(module_rabbitmq_url, facts.filled(2))
    await settles_at(client, demand["id"], filled=2, status="filled")
    await publish(module_rabbitmq_url, accepted)
    await settles_at(client, demand["id"], filled=2, status="filled")


async def test_the_first_check_in_starts_the_demand_and_stops_the_ladder(
    client: httpx.AsyncClient, module_rabbitmq_url: str, db: DispatchDb
) -> None:
    demand = await new_demand(client, slots=3)
    facts = UnitsFacts(demand)
    await publish(module_rabbitmq_url, facts.accepted("a", 1, filled=1), facts.checked_in("a", 1))
    state = await settles_at(client, demand["id"], status="in_progress", filled=1)
    assert state["started_at"] is not None
    timer = await db.db["timers"].find_one({"_id": f"escalate:{demand['id']}:street"})
    assert timer is not None
    assert timer["state"] == "cancelled"
    # Further fills change the count, not the status.
    await publish(module_rabbitmq_url, facts.accepted("b", 2, filled=3), facts.filled(3))
    await settles_at(client, demand["id"], status="in_progress", filled=3)
    completed = await client.post(
        f"/v1/demands/{demand['id']}/complete",
        json={"summary": "gate staffed all day"},
        headers=bearer(SECRETARY),
    )
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "completed"
    assert completed.json()["summary"] == "gate staffed all day"


async def test_a_filled_demand_can_be_completed_and_cancelled(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    for action, body in (("complete", {}), ("cancel", {"reason": "rain"})):
        demand = await new_demand(client, slots=1)
        facts = UnitsFacts(demand)
        await publish(module_rabbitmq_url, facts.accepted("a", 1, filled=1), facts.filled(1))
        await settles_at(client, demand["id"], status="filled")
        response = await client.post(
            f"/v1/demands/{demand['id']}/{action}", json=body, headers=bearer(SECRETARY)
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == {"complete": "completed", "cancel": "cancelled"}[action]


async def test_claims_released_after_a_cancellation_empty_it_but_it_stays_cancelled(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    demand = await new_demand(client, slots=3)
    facts = UnitsFacts(demand)
    await publish(
        module_rabbitmq_url, facts.accepted("a", 1, filled=1), facts.accepted("b", 1, filled=2)
    )
    await settles_at(client, demand["id"], filled=2)
    response = await client.post(
        f"/v1/demands/{demand['id']}/cancel",
        json={"reason": "called off"},
        headers=bearer(SECRETARY),
    )
    assert response.status_code == 200
    await publish(module_rabbitmq_url, facts.released("a", 1), facts.released("b", 1))
    await settles_at(client, demand["id"], filled=0, status="cancelled")


async def test_events_that_do_not_fit_are_dead_lettered_and_the_rest_go_on(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    demand = await new_demand(client)
    facts = UnitsFacts(demand)
    poison = facts.accepted("a", 1, filled=1)
    poison = poison.model_copy(update={"data": {"demand_id": demand["id"], "headcount": "lots"}})
    unknown_demand = UnitsFacts({**demand, "id": "dem_000000000000unknown"}).accepted("x", 1, 1)
    await publish(module_rabbitmq_url, poison, unknown_demand, facts.accepted("b", 2, filled=2))
    await settles_at(client, demand["id"], filled=2)
    connection = await aio_pika.connect_robust(module_rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        dlq = await channel.declare_queue(DISPATCH_UNIT_EVENTS.dead_letter_name, passive=True)
        message = await eventually(lambda: dlq.get(fail=False), lambda found: found is not None)
        assert message is not None
        assert b'"lots"' in message.body
        await message.ack()


async def test_a_demand_in_progress_can_be_cancelled_and_a_partly_filled_one_completed(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    started = await new_demand(client, slots=2)
    facts = UnitsFacts(started)
    await publish(module_rabbitmq_url, facts.accepted("a", 1, filled=1), facts.checked_in("a", 1))
    await settles_at(client, started["id"], status="in_progress")
    cancelled = await client.post(
        f"/v1/demands/{started['id']}/cancel",
        json={"reason": "gas leak, site evacuated"},
        headers=bearer(SECRETARY),
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"

    partly = await new_demand(client, slots=3)
    await publish(module_rabbitmq_url, UnitsFacts(partly).accepted("a", 1, filled=1))
    await settles_at(client, partly["id"], status="open", filled=1)
    completed = await client.post(
        f"/v1/demands/{partly['id']}/complete", json={}, headers=bearer(SECRETARY)
    )
    assert completed.status_code == 200, completed.text
    assert completed.json()["status"] == "completed"


async def test_claim_and_withdraw_cycles_do_not_grow_the_demand_document(
    client: httpx.AsyncClient, module_rabbitmq_url: str, db: DispatchDb
) -> None:
    demand = await new_demand(client, slots=2)
    facts = UnitsFacts(demand)

    async def cycle(n: int) -> None:
        await publish(
            module_rabbitmq_url,
            facts.accepted(f"cyc{n}", 1, filled=1),
            facts.withdrawn(f"cyc{n}", 1, filled=0),
        )

    await cycle(0)
    await settles_at(client, demand["id"], filled=0)
    await eventually(
        lambda: db.db["claim_ledger"].count_documents({"demand_id": demand["id"]}),
        lambda count: count == 1,
    )
    first = await db.db["demands"].find_one({"_id": demand["id"]})
    assert first is not None
    small = len(bson.encode(first))
    for n in range(1, 25):
        await cycle(n)
    await eventually(
        lambda: db.db["claim_ledger"].count_documents({"demand_id": demand["id"]}),
        lambda count: count == 25,
    )
    # One accepted claim on top of the 25 tombstones: the totals still come out right.
    await publish(module_rabbitmq_url, facts.accepted("stays", 2, filled=2), facts.filled(2))
    await settles_at(client, demand["id"], filled=2, status="filled")
    document = await db.db["demands"].find_one({"_id": demand["id"]})
    assert document is not None
    assert "claims" not in document["ledger"]
    assert document["ledger"]["accepted_headcount"] == 2
    # Bounded: the same few totals whatever the number of cycles (was one record per claim).
    assert len(bson.encode(document)) <= small + 64
    assert await db.db["claim_ledger"].find_one({"_id": f"{demand['id']}:cyc7"}) == {
        "_id": f"{demand['id']}:cyc7",
        "demand_id": demand["id"],
        "id": "cyc7",
        "headcount": 1,
        "state": "withdrawn",
        "checked_in": False,
    }
    # A late `accepted` for a withdrawn claim still cannot revive it (its tombstone is read).
    await publish(module_rabbitmq_url, facts.accepted("cyc7", 1, filled=3))
    await publish(module_rabbitmq_url, facts.reopened(1))
    await settles_at(client, demand["id"], filled=1)
