"""Helpers for in-process tests of `ServiceRuntime`: build, start, read queues directly."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.runtime import ServiceRuntime
from shared.settings import WhistleSettings


def runtime_settings(rabbitmq_url: str, mongodb_url: str, **overrides: object) -> WhistleSettings:
    values: dict[str, object] = {
        "rabbitmq_url": rabbitmq_url,
        "mongodb_url": mongodb_url,
        "db_prefix": f"t{uuid.uuid4().hex[:10]}_",
        "env": "development",
        "outbox_poll_s": 0.1,
        "timer_poll_s": 0.1,
        "lease_ttl_s": 3.0,
    }
    return WhistleSettings.model_validate(values | overrides)


@asynccontextmanager
async def running(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


async def eventually[T](
    probe: Callable[[], Awaitable[T]], *, timeout: float = 15.0, interval: float = 0.05
) -> T:
    """Poll until `probe` returns something truthy; returns it, or raises on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met in {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


async def drain(
    rabbitmq_url: str, queue: str, *, quiet_s: float = 0.3
) -> list[AbstractIncomingMessage]:
    """Take every message now in `queue` (acked), waiting `quiet_s` after the last one."""
    taken: list[AbstractIncomingMessage] = []
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        deadline = time.monotonic() + quiet_s
        while time.monotonic() < deadline:
            message = await declared.get(fail=False, no_ack=True)
            if message is None:
                await asyncio.sleep(0.05)
                continue
            taken.append(message)
            deadline = time.monotonic() + quiet_s
    return taken
