"""Poison messages and handlers that keep failing end in the dead-letter queue, bounded."""

import json
from typing import Any

import aio_pika
import anyio.to_thread
import pytest

from services.notify.entrypoints.events import NOTIFY_EVENTS
from shared.broker.consumer import ATTEMPT_HEADER, Incoming
from shared.broker.topology import DEAD_LETTER_EXCHANGE, EVENTS_EXCHANGE, ConsumerQueue
from shared.events.catalogue import DemandCancelled
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from tests.shared.runtime_support import drain, eventually, running, runtime_settings
from tests.support.events import event_of, publish

pytestmark = pytest.mark.broker


async def _publish_raw(rabbitmq_url: str, body: bytes, routing_key: str) -> None:
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(EVENTS_EXCHANGE.name)
        await exchange.publish(
            aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=routing_key,
        )


def _event() -> CloudEvent:
    return event_of(
        DemandCancelled(demand_id="d_1", community_id="c-1", reason="rain"), subject="d_1"
    )


async def test_poison_message_goes_straight_to_the_dead_letter_queue(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    seen: list[CloudEvent] = []

    async def handle(event: Incoming[Any]) -> None:
        seen.append(event.envelope)

    runtime = ServiceRuntime("tests", runtime_settings(rabbitmq_url, mongodb_url))
    runtime.consume(NOTIFY_EVENTS, dict.fromkeys(NOTIFY_EVENTS.events, handle))
    async with running(runtime):
        await eventually(runtime.broker_connected)
        await _publish_raw(rabbitmq_url, b"{not json", "demand.cancelled")
        good = _event()
        await publish(rabbitmq_url, good)
        await eventually(lambda: _truthy(seen))
        dead = await drain(rabbitmq_url, NOTIFY_EVENTS.dead_letter_name)
    assert [event.id for event in seen] == [good.id]  # the poison did not block the queue
    assert [message.body for message in dead] == [b"{not json"]
    assert dead[0].headers["x-first-death-reason"] == "rejected"
    assert dead[0].headers["x-first-death-queue"] == NOTIFY_EVENTS.name


async def test_failing_handler_is_retried_then_dead_lettered_at_the_limit(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    attempts: list[str] = []

    async def always_fails(event: Incoming[Any]) -> None:
        attempts.append(event.envelope.id)
        raise RuntimeError("downstream is broken")

    runtime = ServiceRuntime("tests", runtime_settings(rabbitmq_url, mongodb_url))
    runtime.consume(NOTIFY_EVENTS, dict.fromkeys(NOTIFY_EVENTS.events, always_fails))
    event = _event()
    async with running(runtime):
        await eventually(runtime.broker_connected)
        await publish(rabbitmq_url, event)

        async def dead_lettered() -> list[aio_pika.abc.AbstractIncomingMessage]:
            return await drain(rabbitmq_url, NOTIFY_EVENTS.dead_letter_name, quiet_s=0.1)

        dead = await eventually(dead_lettered, timeout=30, interval=0.3)
        settled = len(attempts)
    # Whistle's own count of attempts, then Whistle dead-letters it (not the broker's limit).
    assert settled == NOTIFY_EVENTS.max_attempts
    assert set(attempts) == {event.id}
    assert [json.loads(message.body)["id"] for message in dead] == [event.id]
    assert dead[0].headers["x-first-death-reason"] == "rejected"
    assert dead[0].headers[ATTEMPT_HEADER] == NOTIFY_EVENTS.max_attempts - 1
    assert dead[0].message_id == event.id


# A queue whose broker never dead-letters on its own, as RabbitMQ 4.3 behaves for nacks (it
# no longer counts them toward `x-delivery-limit`): the bound must still hold.
UNCOUNTED = ConsumerQueue(
    "tests", "uncounted", (DemandCancelled,), max_attempts=3, delivery_limit=1000
)


async def test_attempts_are_bounded_without_the_brokers_delivery_count(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    attempts: list[str] = []

    async def always_fails(event: Incoming[Any]) -> None:
        attempts.append(event.envelope.id)
        raise RuntimeError("downstream is broken")

    runtime = ServiceRuntime("tests", runtime_settings(rabbitmq_url, mongodb_url))
    runtime.consume(UNCOUNTED, dict.fromkeys(UNCOUNTED.events, always_fails))
    event = _event()
    async with running(runtime):
        await eventually(runtime.broker_connected)
        await _declare_dead_letter_queue(rabbitmq_url, UNCOUNTED)
        await publish(rabbitmq_url, event)

        async def dead_lettered() -> list[aio_pika.abc.AbstractIncomingMessage]:
            return await drain(rabbitmq_url, UNCOUNTED.dead_letter_name, quiet_s=0.1)

        dead = await eventually(dead_lettered, timeout=20, interval=0.3)
        settled = len(attempts)
    assert settled == UNCOUNTED.max_attempts
    assert [json.loads(message.body)["id"] for message in dead] == [event.id]


async def _declare_dead_letter_queue(rabbitmq_url: str, spec: ConsumerQueue) -> None:
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        dead = await channel.get_exchange(DEAD_LETTER_EXCHANGE.name)
        queue = await channel.declare_queue(
            spec.dead_letter_name, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await queue.bind(dead, routing_key=spec.name)


async def _truthy(values: list[CloudEvent]) -> bool:
    return bool(values)


async def test_a_consumed_event_takes_no_worker_thread(
    rabbitmq_url: str, mongodb_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime's consumers run on the loop: FastDepends resolved the message argument
    through a worker thread per message (a third of audit's CPU per event)."""
    hops: list[object] = []
    run_sync = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    seen: list[str] = []

    async def handle(event: Incoming[Any]) -> None:
        seen.append(event.envelope.id)

    runtime = ServiceRuntime("tests", runtime_settings(rabbitmq_url, mongodb_url))
    runtime.consume(NOTIFY_EVENTS, dict.fromkeys(NOTIFY_EVENTS.events, handle))
    events = [_event() for _ in range(5)]
    async with running(runtime):
        await eventually(runtime.broker_connected)
        hops.clear()
        for event in events:
            await publish(rabbitmq_url, event)

        async def all_seen() -> bool:
            return len(seen) == len(events)

        await eventually(all_seen)
    assert seen == [event.id for event in events]
    assert hops == []
