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


@dataclass(frozen=True)
class TwoHop:
    messages: int
    p50_ms: float | None
    p99_ms: float | None


async def raw_two_hop(url: str, messages: int) -> TwoHop:
    """Publish -> consumer A (parse, republish confirmed, ack) -> consumer B: one at a time,
    as the whistle flow goes dispatch -> units/notify -> audit. Each hop is a persistent,
    confirmed message through a durable quorum queue."""
    from bench.report import percentile

    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        relay_channel = await connection.channel(publisher_confirms=True)
        arguments = {"x-queue-type": "quorum"}
        first = await channel.declare_queue("bench.hop1", durable=True, arguments=arguments)
        second = await channel.declare_queue("bench.hop2", durable=True, arguments=arguments)
        arrived: asyncio.Queue[float] = asyncio.Queue()

        async def relay(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            body = json.loads(message.body)
            await relay_channel.default_exchange.publish(
                aio_pika.Message(
                    json.dumps(body).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                ),
                routing_key="bench.hop2",
            )
            await message.ack()

        async def land(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            json.loads(message.body)
            await message.ack()
            arrived.put_nowait(time.perf_counter())

        tags = [await first.consume(relay), await second.consume(land)]
        latencies = []
        body = json.dumps({"n": 0, "payload": "x" * 400}).encode()
        for _ in range(messages):
            started = time.perf_counter()
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                routing_key="bench.hop1",
            )
            landed = await asyncio.wait_for(arrived.get(), 30)
            latencies.append((landed - started) * 1000)
        await first.cancel(tags[0])
        await second.cancel(tags[1])
        await first.delete(if_unused=False, if_empty=False)
        await second.delete(if_unused=False, if_empty=False)
    latencies.sort()
    return TwoHop(messages, percentile(latencies, 50), percentile(latencies, 99))
