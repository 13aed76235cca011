"""The process-level wiring every service shares: Mongo client, broker, outbox relay, timers.

A service's `bootstrap` builds one `ServiceRuntime`, registers its consumers, timer handlers
and indexes on it, and hands it to `create_service_app`. The runtime starts in the FastAPI
lifespan: the broker is started there (not through FastStream's deprecated FastAPI plugin).
HTTP comes up even while the broker is away: the outbox keeps what happens meanwhile, and
`/readyz` says 503 until the broker is back and every consumer is attached again.
"""

import asyncio
import contextlib
import functools
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import structlog
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker
from faststream.rabbit.annotations import RabbitMessage

from shared.broker.consumer import EventConsumer, HandlerMap
from shared.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    EVENTS_EXCHANGE,
    PRIVATE_EXCHANGE,
    ConsumerQueue,
    exchange_for,
)
from shared.events.envelope import CloudEvent
from shared.http.idempotency_keys import IdempotencyKeys, ensure_idempotency_indexes
from shared.settings import WhistleSettings
from shared.store.mongo import Database, make_client, ping, until_store_answers
from shared.store.outbox import OutboxRelay, ensure_outbox_indexes
from shared.store.timers import TimerHandler, TimerWheel, ensure_timer_indexes
from shared.store.unit_of_work import UnitOfWork

IndexSetup = Callable[[Database], Awaitable[None]]

_log = structlog.get_logger("whistle.runtime")


class TopologyNotDeclared(RuntimeError):
    """The broker is not (or no longer) started with every queue bound: publishing now could
    route an event to some of its queues and not others, and the confirm would hide that."""


def make_broker(settings: WhistleSettings) -> RabbitBroker:
    return RabbitBroker(
        settings.rabbitmq_url,
        default_channel=Channel(
            prefetch_count=settings.prefetch, publisher_confirms=True, on_return_raises=True
        ),
        # A consumer takes the whole message (`_the_message_itself`) and reads the envelope
        # itself: FastDepends would only resolve that one argument, through a worker thread
        # per message (its context lookup is sync), and decode a JSON body nobody reads.
        apply_types=False,
        # FastStream logs every message at the broker's log level: keep that at DEBUG.
        logger=logging.getLogger("faststream"),
        log_level=logging.DEBUG,
        reconnect_interval=1.0,
        graceful_timeout=10.0,
    )


async def _the_message_itself(message: RabbitMessage) -> RabbitMessage:
    """The subscriber's decoder: without FastDepends a handler is called with the decoded
    message, so decoding hands over the message (body, headers, ack) as it is. Async, since
    FastStream runs a sync decoder in a worker thread."""
    return message


async def declare_topology(broker: RabbitBroker, queues: Sequence[ConsumerQueue]) -> None:
    """Declare the exchanges and each queue with its bindings and dead-letter queue."""
    exchanges = {
        EVENTS_EXCHANGE.name: await broker.declare_exchange(EVENTS_EXCHANGE),
        PRIVATE_EXCHANGE.name: await broker.declare_exchange(PRIVATE_EXCHANGE),
    }
    dead = await broker.declare_exchange(DEAD_LETTER_EXCHANGE)
    for spec in queues:
        queue = await broker.declare_queue(spec.queue())
        for key in spec.routing_keys:
            await queue.bind(exchanges[spec.exchange_name], routing_key=key)
        dead_letters = await broker.declare_queue(spec.dead_letter_queue())
        await dead_letters.bind(dead, routing_key=spec.name)


class ServiceRuntime:
    """`topology`: every consumer queue in the system (`services.topology.ALL_CONSUMER_QUEUES`),
    declared at start-up besides the runtime's own, so that an event is never unroutable (and
    so never lost) because its consumer has not started yet. Only `services/` knows them all
    (each queue is declared beside its service's handler map), so a service passes it in."""

    def __init__(
        self, name: str, settings: WhistleSettings, *, topology: Sequence[ConsumerQueue] = ()
    ) -> None:
        self.name = name
        self.settings = settings
        self.topology: dict[str, ConsumerQueue] = {spec.name: spec for spec in topology}
        self.instance = f"{name}@{socket.gethostname()}:{os.getpid()}"
        self.client = make_client(settings.mongodb_url, app_name=f"whistle-{name}")
        self.db: Database = self.client[settings.database_name(name)]
        self.broker = make_broker(settings)
        self.relay = OutboxRelay(
            self.db,
            self.publish,
            service=name,
            owner=self.instance,
            lease_ttl_s=settings.lease_ttl_s,
            poll_s=settings.outbox_poll_s,
        )
        self.uow = UnitOfWork(self.client, self.db, service=name, on_commit=self.relay.wake)
        self.idempotency = IdempotencyKeys(self.db)
        self.consumers: list[EventConsumer] = []
        self._timer_handlers: dict[str, TimerHandler] = {}
        self._index_setups: list[IndexSetup] = [
            ensure_outbox_indexes,
            ensure_timer_indexes,
            ensure_idempotency_indexes,
        ]
        self._tasks: list[asyncio.Task[Any]] = []
        self._timers: TimerWheel | None = None
        self._broker_started = asyncio.Event()
        self._rebuild = asyncio.Event()
        self._probe_channel: AbstractChannel | None = None
        self._subscribers: dict[str, Any] = {}

    # --- registration (before start) -------------------------------------------------------

    def consume(self, spec: ConsumerQueue, handlers: HandlerMap) -> None:
        """Consume `spec`'s queue; raises ValueError when `handlers` names other models, or
        when the system's topology was given and lacks this queue or declares it otherwise
        (the other services would not declare it, or would bind it differently)."""
        declared = self.topology.get(spec.name)
        if self.topology and declared != spec:
            why = "is missing from" if declared is None else "is declared otherwise in"
            raise ValueError(
                f"{self.name} consumes queue {spec.name}, which {why} the system's topology "
                "(services/topology.py, ALL_CONSUMER_QUEUES)"
            )
        consumer = EventConsumer(self.name, spec, handlers, self.republish)
        subscriber = self.broker.subscriber(
            spec.queue(),
            spec.exchange,
            ack_policy=AckPolicy.MANUAL,
            decoder=_the_message_itself,
            title=spec.name,
            description=f"{self.name} consumes {', '.join(spec.routing_keys)}",
        )
        subscriber(consumer)
        self.consumers.append(consumer)
        self._subscribers[spec.name] = subscriber

    def queues(self) -> list[ConsumerQueue]:
        """What start-up declares: the system's topology, and this runtime's own queues."""
        own = [consumer.spec for consumer in self.consumers]
        return [*self.topology.values(), *(spec for spec in own if spec.name not in self.topology)]

    def on_timer(self, kind: str, handler: TimerHandler) -> None:
        self._timer_handlers[kind] = handler

    def add_indexes(self, setup: IndexSetup) -> None:
        self._index_setups.append(setup)

    # --- publishing (the outbox relay is the only caller) -----------------------------------

    async def publish(self, event: CloudEvent) -> None:
        if not self._broker_started.is_set():
            # The connection may already be up while start-up is still declaring queues: an
            # event published then reaches the queues bound so far, is confirmed (it was
            # routed somewhere, so `mandatory` does not return it) and is lost to the rest.
            raise TopologyNotDeclared("the broker is not ready: its queues are not all declared")
        # Personal data goes to the private exchange, which audit never records.
        exchange = exchange_for(event.type)
        await self.broker.publish(
            event.wire(),
            exchange=exchange,
            routing_key=event.type,
            persist=True,
            mandatory=True,
            message_id=event.id,
            correlation_id=event.correlationid,
            content_type="application/cloudevents+json",
            message_type=event.type,
            timestamp=event.time,
        )

    async def republish(
        self, queue: str, message: RabbitMessage, headers: Mapping[str, Any]
    ) -> None:
        """Put a message back at the end of `queue`, with `headers` added.

        Through the default exchange, so it reaches only that queue (not every queue bound
        to its event type). Confirmed and persistent like every publish.
        """
        kept = {
            key: value
            for key, value in message.headers.items()
            if not key.startswith(("x-death", "x-first-death", "x-last-death", "x-delivery"))
        }
        raw = message.raw_message
        await self.broker.publish(
            message.body,
            queue,
            persist=True,
            mandatory=True,
            headers=kept | dict(headers),
            message_id=message.message_id,
            correlation_id=message.correlation_id,
            content_type=message.content_type or "application/cloudevents+json",
            message_type=raw.type,
            timestamp=raw.timestamp,
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        for setup in self._index_setups:
            await until_store_answers(
                functools.partial(setup, self.db), what=getattr(setup, "__qualname__", "indexes")
            )
        self._tasks.append(asyncio.create_task(self._connect_broker(), name="broker-connect"))
        self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        if self._timer_handlers:
            self._timers = TimerWheel(
                self.uow,
                self._timer_handlers,
                service=self.name,
                owner=self.instance,
                poll_s=self.settings.timer_poll_s,
                lease_s=self.settings.timer_lease_s,
            )
            self._tasks.append(asyncio.create_task(self._timers.run(), name="timers"))
        _log.info("service_started", instance=self.instance, database=self.db.name)

    async def _connect_broker(self) -> None:
        await self._start_broker()
        await self._watch_consumers()

    async def _start_broker(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.broker.start()
                await declare_topology(self.broker, self.queues())
                break
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning(
                    "broker_unreachable", error=f"{type(error).__name__}: {error}", retry_in_s=delay
                )
                try:
                    await self.broker.stop()
                except Exception as stop_error:
                    _log.debug("broker_stop_after_failed_start", error=str(stop_error))
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        connection = self._connection()
        if connection is not None:
            connection.reconnect_callbacks.add(self._on_reconnect)
        self._broker_started.set()
        self.relay.wake()  # what piled up in the outbox goes now, not at its next retry
        _log.info("broker_connected")

    def _on_reconnect(self, *_: Any) -> None:
        # aio-pika reconnects the connection, but a robust channel whose restore ran while
        # the broker was still away stays dead (aio-pika #563/#577/#668), and FastStream
        # keeps using it: consumers never come back and publishes fail. Rebuild instead.
        self._rebuild.set()

    async def _rebuild_broker(self) -> None:
        """Stop the broker (all channels, consumers, caches) and start it from scratch."""
        _log.warning("broker_rebuilding")
        self._broker_started.clear()
        self._probe_channel = None
        try:
            await self.broker.stop()
        except Exception as error:
            _log.info("broker_stop_before_rebuild_failed", error=str(error))
        await self._start_broker()

    async def _watch_consumers(self) -> None:
        """Rebuild the broker after a reconnect, or when the broker says a consumer is gone."""
        suspect = False
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rebuild.wait(), 2.0)
            if self._rebuild.is_set():
                self._rebuild.clear()
                await self._rebuild_broker()
                suspect = False
                continue
            try:
                missing = await self.detached_consumers()
            except Exception as error:
                _log.debug("consumer_check_failed", error=str(error))
                continue
            if not missing:
                suspect = False
            elif not suspect:
                suspect = True  # seen once: could be a consumer that is still starting
            else:
                _log.warning("consumer_detached", queues=missing)
                self._rebuild.set()

    def _connection(self) -> AbstractRobustConnection | None:
        connection: AbstractRobustConnection | None = getattr(self.broker, "_connection", None)
        return connection

    async def broker_connected(self) -> bool:
        if not self._broker_started.is_set():
            return False
        connection = self._connection()
        return connection is not None and connection.connected.is_set()

    def _subscriber_channel_closed(self, name: str) -> bool:
        # The broker's consumer count includes other replicas; our own consumer is gone when
        # its channel is. FastStream keeps the queue object private, hence the getattr.
        queue = getattr(self._subscribers.get(name), "_queue_obj", None)
        channel = getattr(queue, "channel", None)
        return queue is None or bool(getattr(channel, "is_closed", False))

    async def detached_consumers(self) -> list[str]:
        """Names of this service's queues where our consumer, or any consumer, is missing."""
        connection = self._connection()
        if connection is None or not connection.connected.is_set():
            return [consumer.spec.name for consumer in self.consumers]
        if self._probe_channel is None or self._probe_channel.is_closed:
            self._probe_channel = await connection.channel(publisher_confirms=False)
        missing = []
        for consumer in self.consumers:
            if self._subscriber_channel_closed(consumer.spec.name):
                missing.append(consumer.spec.name)
                continue
            queue = await self._probe_channel.declare_queue(consumer.spec.name, passive=True)
            result = queue.declaration_result
            if result is None or result.consumer_count == 0:
                missing.append(consumer.spec.name)
        return missing

    async def readiness(self) -> dict[str, str]:
        timeout = self.settings.readiness_timeout_s
        checks: dict[str, str] = {}
        try:
            await asyncio.wait_for(ping(self.db), timeout)
            checks["mongodb"] = "ok"
        except Exception as error:
            checks["mongodb"] = f"unreachable: {type(error).__name__}"
        if await self.broker_connected():
            checks["broker"] = "ok"
            try:
                missing = await asyncio.wait_for(self.detached_consumers(), timeout)
                checks["consumers"] = "ok" if not missing else "detached: " + ", ".join(missing)
            except Exception as error:
                checks["consumers"] = f"unknown: {type(error).__name__}"
        else:
            checks["broker"] = "unreachable"
            checks["consumers"] = "detached" if self.consumers else "ok"
        return checks

    async def stop(self) -> None:
        self.relay.stop()
        if self._timers is not None:
            self._timers.stop()
        relay_and_timers = [t for t in self._tasks if t.get_name() != "broker-connect"]
        await asyncio.wait(relay_and_timers, timeout=5.0) if relay_and_timers else None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            await self.broker.stop()  # stops consuming, waits for in-flight handlers
        except Exception as error:
            _log.warning("broker_stop_failed", error=str(error))
        await self.client.close()
        _log.info("service_stopped")
