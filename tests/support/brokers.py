"""Consumer tests written once, run twice: in memory (TestRabbitBroker) and on the real broker.

FastStream's own pattern: a broker test is written against a broker, and run both with the
broker patched in memory (the fast loop for the rules) and connected to RabbitMQ (the
wiring: declared queues, bindings, acks, dead-lettering). Use the `brokers` fixture:

    async def test_x(brokers: Brokers, ...) -> None:
        runtime = ServiceRuntime("units", settings(rabbitmq_url=brokers.url, ...))
        register_consumers(runtime)
        async with brokers.running(runtime.broker):
            await brokers.deliver(runtime.broker, event, to=runtime.consumers)
        assert ...  # the same assertions in both modes

`deliver` publishes as a producer would (exchange by the event's channel, routing key = its
type) and returns once the consumers have settled the message (acked, rejected or retried):
in memory that is at once, on the real broker it waits (bounded) for the settle count.

In memory, FastStream binds a subscriber's queue with one routing key only; the real broker
gets every binding from `declare_topology` (the system's queues, `services.topology`, and
the test's own). `route_every_binding` makes the in-memory broker
route by all of a queue's bindings (`BoundQueue.bindings`), as RabbitMQ does; tests/conftest
turns it on for the whole suite.
"""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from faststream.exceptions import SubscriberNotFound
from faststream.rabbit import Channel, RabbitBroker, RabbitExchange, TestRabbitBroker
from faststream.rabbit import testing as rabbit_testing

from services.topology import ALL_CONSUMER_QUEUES
from shared.broker.consumer import EventConsumer
from shared.broker.topology import ConsumerQueue, exchange_for
from shared.events.envelope import CloudEvent
from shared.runtime import declare_topology

BrokerKind = Literal["memory", "real"]
# The in-memory broker never connects; a URL is still needed to build one.
UNUSED_URL = "amqp://guest:guest@127.0.0.1:5672/"
SETTLE_TIMEOUT_S = 15.0

_original_matches = rabbit_testing._is_handler_matches


def _matches_every_binding(
    handler: Any,
    routing_key: str,
    headers: Mapping[Any, Any] | None = None,
    exchange: RabbitExchange | None = None,
) -> bool:
    bindings: tuple[str, ...] = getattr(handler.queue, "bindings", ())
    if not bindings:
        return bool(_original_matches(handler, routing_key, headers, exchange))
    if handler.exchange.name != RabbitExchange.validate(exchange).name:
        return False
    return any(rabbit_testing.apply_pattern(key, routing_key) for key in bindings)


@contextlib.contextmanager
def route_every_binding() -> Iterator[None]:
    """In-memory routing by every binding of a `BoundQueue` (FastStream's private matcher)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rabbit_testing, "_is_handler_matches", _matches_every_binding)
        yield


@dataclass(frozen=True)
class Brokers:
    kind: BrokerKind
    url: str

    def broker(self) -> RabbitBroker:
        """A broker for this test, with publisher confirms like the services'."""
        return RabbitBroker(
            self.url,
            default_channel=Channel(publisher_confirms=True),
        )

    @asynccontextmanager
    async def running(
        self, broker: RabbitBroker, *queues: ConsumerQueue
    ) -> AsyncIterator[RabbitBroker]:
        """The broker with its subscribers consuming; `queues` not in the system's topology
        (test-only ones) are declared and bound too, dead-letter queue included."""
        if self.kind == "memory":
            async with TestRabbitBroker(broker) as patched:
                yield patched
            return
        await broker.start()
        try:
            await declare_topology(broker, (*ALL_CONSUMER_QUEUES, *queues))
            yield broker
        finally:
            await broker.stop()

    async def deliver(
        self,
        broker: RabbitBroker,
        message: CloudEvent | bytes,
        *,
        to: Sequence[EventConsumer],
        routing_key: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> None:
        """Publish as a producer would and return once one of `to` settled the message."""
        if isinstance(message, CloudEvent):
            body = json.dumps(message.wire()).encode()
            key = routing_key or message.type
            message_id: str | None = message.id
        else:
            body, key, message_id = message, routing_key or "", None
        before = sum(consumer.settled for consumer in to)
        await broker.publish(
            body,
            exchange=exchange_for(key),
            routing_key=key,
            headers=dict(headers or {}),
            message_id=message_id,
            content_type="application/cloudevents+json",
            persist=True,
        )
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while sum(consumer.settled for consumer in to) <= before:
            if time.monotonic() > deadline:
                raise AssertionError(f"no consumer settled the {key} message")
            await asyncio.sleep(0.02)

    async def publish(self, broker: RabbitBroker, event: CloudEvent) -> None:
        """Publish without waiting: for an event the consumers under test may never get (in
        memory, FastStream raises when no subscriber matches; that is no error here)."""
        with contextlib.suppress(SubscriberNotFound):
            await broker.publish(
                json.dumps(event.wire()).encode(),
                exchange=exchange_for(event.type),
                routing_key=event.type,
                message_id=event.id,
                persist=True,
            )


@pytest.fixture(
    params=[
        pytest.param("memory", marks=pytest.mark.memory),
        pytest.param("real", marks=pytest.mark.broker),
    ]
)
def brokers(request: pytest.FixtureRequest) -> Brokers:
    """Each test using it runs in memory and against the real RabbitMQ (a fresh vhost)."""
    if request.param == "memory":
        return Brokers("memory", UNUSED_URL)
    url: str = request.getfixturevalue("rabbitmq_url")
    return Brokers("real", url)
