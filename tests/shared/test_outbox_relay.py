"""The outbox relay against the real broker: confirmed, persistent, ordered, once, patient."""

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aio_pika import DeliveryMode
from pymongo import AsyncMongoClient

import shared.runtime
from services.topology import ALL_CONSUMER_QUEUES
from shared.events.catalogue import DemandCancelled
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.mongo import Database, Document
from shared.store.outbox import OUTBOX_COLLECTION, OutboxRelay, ensure_outbox_indexes
from shared.store.unit_of_work import Tx, UnitOfWork
from tests.shared.runtime_support import drain, eventually, running, runtime_settings
from tests.support.events import event_of
from tests.support.proxy import tcp_proxy

pytestmark = pytest.mark.broker

# audit's queue is bound to "#": in a test's own vhost it receives everything published.
EVERYTHING = "audit.events"


def _events(count: int, prefix: str = "d") -> list[CloudEvent]:
    return [
        event_of(
            DemandCancelled(demand_id=f"{prefix}_{n}", community_id="c-1", reason="rain"),
            subject=f"{prefix}_{n}",
        )
        for n in range(count)
    ]


async def _emit(runtime: ServiceRuntime, events: list[CloudEvent]) -> None:
    async def work(tx: Tx) -> None:
        # Envelopes built beforehand, so the test knows their ids (the relay's concern is
        # what is in the outbox, not how `tx.emit` builds an envelope).
        tx.events.extend(events)

    await runtime.uow.run(work)


def _pending(db: Database) -> Callable[[], Any]:
    async def none_pending() -> bool:
        return await db[OUTBOX_COLLECTION].count_documents({"status": "pending"}) == 0

    return none_pending


async def test_relay_publishes_persistent_confirmed_in_order_and_marks_sent(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    runtime = ServiceRuntime(
        "tests", runtime_settings(rabbitmq_url, mongodb_url), topology=ALL_CONSUMER_QUEUES
    )
    events = _events(5)
    async with running(runtime):
        await eventually(runtime.broker_connected)
        for event in events:
            await _emit(runtime, [event])
        await eventually(_pending(runtime.db))
        sent = await runtime.db[OUTBOX_COLLECTION].find({}).to_list()
    assert {doc["status"] for doc in sent} == {"sent"}
    assert all(doc["sent_at"] is not None for doc in sent)
    messages = await drain(rabbitmq_url, EVERYTHING)
    assert [m.message_id for m in messages] == [e.id for e in events]
    assert {m.delivery_mode for m in messages} == {DeliveryMode.PERSISTENT}
    assert {m.routing_key for m in messages} == {"demand.cancelled"}
    assert {m.content_type for m in messages} == {"application/cloudevents+json"}
    assert [json.loads(m.body) for m in messages] == [e.wire() for e in events]


async def test_relay_keeps_retrying_while_the_broker_is_away_then_delivers_once(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    with tcp_proxy(rabbitmq_url) as proxy:
        settings = runtime_settings(proxy.url_for(rabbitmq_url), mongodb_url)
        runtime = ServiceRuntime("tests", settings, topology=ALL_CONSUMER_QUEUES)
        async with running(runtime):
            await eventually(runtime.broker_connected)
            proxy.cut()
            await eventually(lambda: _not(runtime.broker_connected()))
            events = _events(3)
            await _emit(runtime, events)

            async def failed_at_least_twice() -> bool:
                return runtime.relay.last_error is not None and runtime.relay._failures >= 2

            await eventually(failed_at_least_twice)
            pending = await runtime.db[OUTBOX_COLLECTION].count_documents({"status": "pending"})
            assert pending == 3
            proxy.restore()
            await eventually(_pending(runtime.db), timeout=30)
            assert runtime.relay.last_error is None
    messages = await drain(rabbitmq_url, EVERYTHING)
    assert sorted(m.message_id or "" for m in messages) == sorted(e.id for e in events)


async def test_relay_started_while_the_broker_is_down_delivers_when_it_comes(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    with tcp_proxy(rabbitmq_url) as proxy:
        proxy.cut()
        runtime = ServiceRuntime(
            "tests",
            runtime_settings(proxy.url_for(rabbitmq_url), mongodb_url),
            topology=ALL_CONSUMER_QUEUES,
        )
        async with running(runtime):
            events = _events(2)
            await _emit(runtime, events)
            await asyncio.sleep(1.0)  # let the relay and the connector fail a few times
            assert not await runtime.broker_connected()
            assert (await runtime.readiness())["broker"] == "unreachable"
            proxy.restore()
            await eventually(_pending(runtime.db), timeout=30)
    messages = await drain(rabbitmq_url, EVERYTHING)
    assert sorted(m.message_id or "" for m in messages) == sorted(e.id for e in events)


async def test_nothing_is_published_until_every_queue_is_declared(
    rabbitmq_url: str, mongodb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection comes up before start-up has declared the queues. An event published
    in between reaches the queues bound so far and is confirmed, so the outbox would mark
    it sent while audit, declared later, never gets it."""
    declare_everything = shared.runtime.declare_topology
    halfway = asyncio.Event()

    async def audit_declared_last(broker: Any, queues: Any) -> None:
        others = [spec for spec in queues if spec.name != EVERYTHING]
        await declare_everything(broker, others)
        halfway.set()
        await asyncio.sleep(1.5)  # the window in which the relay would publish
        await declare_everything(broker, queues)

    monkeypatch.setattr(shared.runtime, "declare_topology", audit_declared_last)
    runtime = ServiceRuntime(
        "tests", runtime_settings(rabbitmq_url, mongodb_url), topology=ALL_CONSUMER_QUEUES
    )
    events = _events(2)
    async with running(runtime):
        await _emit(runtime, events)
        await asyncio.wait_for(halfway.wait(), 10)
        await asyncio.sleep(0.5)
        pending = await runtime.db[OUTBOX_COLLECTION].count_documents({"status": "pending"})
        assert pending == 2  # held: other queues are bound, audit's is not yet
        await eventually(_pending(runtime.db), timeout=30)
    messages = await drain(rabbitmq_url, EVERYTHING)
    assert sorted(m.message_id or "" for m in messages) == sorted(e.id for e in events)


async def _not(value: Any) -> bool:
    return not await value


async def test_two_relays_sharing_the_lease_never_both_publish(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    runtime = ServiceRuntime(
        "tests", runtime_settings(rabbitmq_url, mongodb_url), topology=ALL_CONSUMER_QUEUES
    )
    published: list[tuple[str, str]] = []

    def recording(relay_name: str) -> Callable[[CloudEvent], Any]:
        async def publish(event: CloudEvent) -> None:
            published.append((relay_name, event.id))
            await runtime.publish(event)

        return publish

    async with running(runtime):
        runtime.relay.stop()  # replaced by two competing relays on the same database
        await eventually(runtime.broker_connected)
        relays = [
            OutboxRelay(
                runtime.db,
                recording(name),
                service="tests",
                owner=name,
                lease_ttl_s=3.0,
                poll_s=0.05,
                batch_size=4,
            )
            for name in ("replica-a", "replica-b")
        ]
        tasks = [asyncio.create_task(relay.run()) for relay in relays]
        events = _events(12)
        for chunk in (events[:4], events[4:8], events[8:]):
            await _emit(runtime, chunk)
            for relay in relays:
                relay.wake()
        await eventually(_pending(runtime.db))
        for relay in relays:
            relay.stop()
        await asyncio.gather(*tasks)
    ids = [event_id for _, event_id in published]
    assert sorted(ids) == sorted(e.id for e in events)  # each published once, by one relay
    messages = await drain(rabbitmq_url, EVERYTHING)
    assert sorted(m.message_id or "" for m in messages) == sorted(e.id for e in events)


async def test_a_publish_that_never_confirms_does_not_hold_the_batch_past_its_lease(
    db: Database, mongo_client: AsyncMongoClient[Document]
) -> None:
    await ensure_outbox_indexes(db)
    events = _events(3)
    stuck = events[1].id
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        if event.id == stuck:
            await asyncio.Event().wait()  # a confirm that never comes
        published.append(event.id)

    uow = UnitOfWork(mongo_client, db)

    async def work(tx: Tx) -> None:
        # Envelopes built beforehand, so the test knows their ids (the relay's concern is
        # what is in the outbox, not how `tx.emit` builds an envelope).
        tx.events.extend(events)

    await uow.run(work)
    relay = OutboxRelay(db, publish, service="t", owner="me", lease_ttl_s=1.0, poll_s=0.05)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await relay.relay_batch()
    assert time.monotonic() - started < 1.0  # returned before the lease could lapse
    status = {doc["_id"]: doc["status"] async for doc in db[OUTBOX_COLLECTION].find({})}
    assert status == {events[0].id: "sent", stuck: "pending", events[2].id: "sent"}


async def test_an_outbox_document_that_no_longer_validates_is_set_aside_not_blocking(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    runtime = ServiceRuntime(
        "tests", runtime_settings(rabbitmq_url, mongodb_url), topology=ALL_CONSUMER_QUEUES
    )
    events = _events(2, "after")
    async with running(runtime):
        await eventually(runtime.broker_connected)
        # An older version's document (its event lacks `specversion` and `time`), first in line.
        await runtime.db[OUTBOX_COLLECTION].insert_one(
            {
                "_id": "legacy-1",
                "order": 0,
                "status": "pending",
                "type": "demand.cancelled",
                "event": {"id": "legacy-1", "type": "demand.cancelled", "data": {}},
                "attempts": 0,
            }
        )
        await _emit(runtime, events)
        await eventually(_pending(runtime.db))
        published = await drain(rabbitmq_url, EVERYTHING)
        legacy = await runtime.db[OUTBOX_COLLECTION].find_one({"_id": "legacy-1"})
    assert [json.loads(m.body)["id"] for m in published] == [e.id for e in events]
    assert legacy is not None
    assert legacy["status"] == "invalid"
    assert "specversion" in legacy["error"] or "time" in legacy["error"]
