"""Graceful stop: a handler in flight finishes and its message is acked, not redelivered."""

import asyncio
from typing import Any

import aio_pika
import pytest

from services.notify.entrypoints.events import NOTIFY_EVENTS
from shared.broker.consumer import Incoming
from shared.events.catalogue import DemandCancelled
from shared.runtime import ServiceRuntime
from tests.shared.runtime_support import eventually, runtime_settings
from tests.support.events import event_of, publish

pytestmark = pytest.mark.broker


async def test_stop_lets_the_handler_in_flight_finish_and_ack(
    rabbitmq_url: str, mongodb_url: str
) -> None:
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(event: Incoming[Any]) -> None:
        started.set()
        await asyncio.sleep(1.0)
        finished.append(event.envelope.id)

    runtime = ServiceRuntime("tests", runtime_settings(rabbitmq_url, mongodb_url))
    runtime.consume(NOTIFY_EVENTS, dict.fromkeys(NOTIFY_EVENTS.events, slow))
    await runtime.start()
    await eventually(runtime.broker_connected)
    event = event_of(
        DemandCancelled(demand_id="d_1", community_id="c", reason="rain"), subject="d_1"
    )
    await publish(rabbitmq_url, event)
    await asyncio.wait_for(started.wait(), 10)
    await runtime.stop()
    assert finished == [event.id]

    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        for name in (NOTIFY_EVENTS.name, NOTIFY_EVENTS.dead_letter_name):
            queue = await channel.declare_queue(name, passive=True)
            assert queue.declaration_result.message_count == 0, name
