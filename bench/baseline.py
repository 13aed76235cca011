"""The raw aio-pika baseline: persistent, confirmed messages through a durable quorum queue.

Publishing keeps up to `window` confirms in flight (as a careful producer would); consuming
acks each message after a JSON parse, with the same prefetch the services use.
"""

import asyncio
import json
import time
from dataclasses import dataclass

import aio_pika


@dataclass(frozen=True)
class Throughput:
    messages: int
    publish_s: float
    end_to_end_s: float

    @property
    def publish_per_s(self) -> float:
        return self.messages / self.publish_s

    @property
    def end_to_end_per_s(self) -> float:
        return self.messages / self.end_to_end_s


async def publish_confirmed(
    exchange: aio_pika.abc.AbstractExchange,
    bodies: list[tuple[str, bytes]],
    window: int = 100,
) -> None:
    """Publish (routing key, body) pairs, persistent, at most `window` unconfirmed at once."""
    for start in range(0, len(bodies), window):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                    routing_key=key,
                )
                for key, body in bodies[start : start + window]
            )
        )


async def raw_round_trip(url: str, messages: int, prefetch: int) -> Throughput:
    connection = await aio_pika.connect_robust(url)
    async with connection:
        publisher = await connection.channel(publisher_confirms=True)
        consumer = await connection.channel()
        await consumer.set_qos(prefetch_count=prefetch)
        queue = await consumer.declare_queue(
            "bench.raw", durable=True, arguments={"x-queue-type": "quorum"}
        )
        received = 0
        done = asyncio.Event()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal received
            json.loads(message.body)
            await message.ack()
            received += 1
            if received == messages:
                done.set()

        tag = await queue.consume(on_message)
        body = json.dumps({"n": 0, "payload": "x" * 400}).encode()
        started = time.perf_counter()
        await publish_confirmed(publisher.default_exchange, [("bench.raw", body)] * messages)
        published = time.perf_counter()
        await done.wait()
        finished = time.perf_counter()
        await queue.cancel(tag)
        await queue.delete(if_unused=False, if_empty=False)
    return Throughput(messages, published - started, finished - started)
