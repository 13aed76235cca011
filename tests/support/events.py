"""Publish CloudEvents into a test vhost as another service would, and collect what is published."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.broker.topology import EVENTS_EXCHANGE, PRIVATE_EXCHANGE
from shared.events.catalogue import EventData, is_private
from shared.events.envelope import CloudEvent, make_event


def event_of(
    data: EventData,
    *,
    subject: str,
    correlationid: str | None = None,
    source: str = "/whistle/tests",
    actor: str = "tests",
) -> CloudEvent:
    return make_event(
        data,
        source=source,
        subject=subject,
        correlationid=correlationid or subject,
        causationid=f"test-{uuid.uuid4().hex[:8]}",
        actor=actor,
    )


async def publish(rabbitmq_url: str, *events: CloudEvent) -> None:
    """Publish persistent, confirmed messages, routing key = type: to `whistle.events`, or to
    `whistle.private` for the private types (as the services' outbox relay does)."""
    connection = await aio_pika.connect_robust(rabbitmq_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchanges = {
            name: await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)
            for name in (EVENTS_EXCHANGE.name, PRIVATE_EXCHANGE.name)
        }
        for event in events:
            exchange = exchanges[
                PRIVATE_EXCHANGE.name if is_private(event.type) else EVENTS_EXCHANGE.name
            ]
            await exchange.publish(
                aio_pika.Message(
                    json.dumps(event.wire()).encode(),
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=event.id,
                    content_type="application/cloudevents+json",
                ),
                routing_key=event.type,
            )


class EventCollector:
    """Events seen on `whistle.events` by a temporary queue bound to the given patterns."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            self.events.append(json.loads(message.body))
            self._arrived.set()

    def of_type(self, event_type: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["type"] == event_type]

    async def wait_for(
        self, event_type: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until at least `count` events of the type arrived; returns them all."""
        deadline = time.monotonic() + timeout
        while len(self.of_type(event_type)) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                break
        return self.of_type(event_type)

    async def settle(self, quiet_s: float = 0.5) -> None:
        """Wait until no event has arrived for `quiet_s` (to check nothing more comes)."""
        while True:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), quiet_s)
            except TimeoutError:
                return


@asynccontextmanager
async def collect(rabbitmq_url: str, *patterns: str) -> AsyncIterator[EventCollector]:
    collector = EventCollector()
    connection = await aio_pika.connect_robust(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            EVENTS_EXCHANGE.name, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        for pattern in patterns or ("#",):
            await queue.bind(exchange, routing_key=pattern)
        await queue.consume(collector._on_message)
        yield collector
