"""The wrapper every event consumer runs through: parse, log context, ack, retry, dead-letter.

A service declares what it consumes once, as a handler map keyed by catalogue model; its
queue is built from the map's keys,

    DEMAND_EVENTS: Wiring[UnitsSettings] = {DemandCancelled: on_demand_cancelled, ...}
    UNITS_DEMAND_EVENTS = ConsumerQueue.of("units", "demand-events", DEMAND_EVENTS)
    async def on_demand_cancelled(tx: Tx, event: Incoming[DemandCancelled]) -> None: ...

and `EventConsumer` still refuses (ValueError, at start-up) a map that names other models
than its queue (a map built apart from its queue, as audit's is from every public model).
The consumer reads `data` once (`read_data`: older versions upcast) and hands the handler an
`Incoming[T]`: the typed data, the envelope and the producer's raw bytes.

- A message that is not a valid CloudEvent, or whose `data` does not fit its model, is a
  poison message: rejected without requeue, so it goes straight to the dead-letter queue.
  So is `data` of a dataversion this consumer cannot read (newer than its model, or with no
  upcast): the log line `event_dataversion_unreadable` says which and what to do.
- A handler failure is retried, and Whistle counts the attempts itself: after a backoff the
  message is published again to its own queue (confirmed, persistent) with the attempt count
  in the `x-whistle-attempt` header, and the original is acked. After `max_attempts` the
  message is rejected without requeue, so the queue's dead-letter route takes it to `.dlq`.
  RabbitMQ's own `x-delivery-count` is not relied on: RabbitMQ 4.3 stopped counting a
  `nack(requeue=True)` toward `x-delivery-limit`, so on 4.x a nack loop never ends. The
  queue's delivery limit stays as the backstop for messages whose consumer dies mid-handling.
  Nothing blocks the queue or loops forever. This is the message-level retry; a conflicting
  transaction is retried inside the unit of work (see `shared.store.unit_of_work`), never here.
- Handlers are idempotent (see `UnitOfWork.run_once`), so redelivery changes nothing twice.
"""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError

from shared.broker.topology import ConsumerQueue
from shared.events.catalogue import EventData, UnreadableDataversion, read_data
from shared.events.envelope import CloudEvent
from shared.logging import message_context
from shared.metrics import MESSAGES_CONSUMED
from shared.store.mongo import store_busy, store_unreachable
from shared.store.unit_of_work import TransactionConflict, Tx, UnitOfWork


@dataclass(frozen=True)
class Incoming[T: EventData]:
    """A consumed event: `data` read once (upcast to the current version), the envelope as
    sent, and `body`, the producer's message body byte for byte (audit stores and hashes it)."""

    data: T
    envelope: CloudEvent
    body: bytes
    # The broker's delivery tag on this consumer's channel (None when there is none, e.g. in
    # memory): audit appends in delivery order, which concurrent handlers can reach out of.
    delivery_tag: int | None = None


Handler = Callable[[Incoming[Any]], Awaitable[None]]
HandlerMap = Mapping[type[EventData], Handler]

# Publishes the message again to the named queue with these headers added; returns once the
# broker has confirmed it.
Republish = Callable[[str, RabbitMessage, Mapping[str, Any]], Awaitable[None]]

ATTEMPT_HEADER = "x-whistle-attempt"

MAX_OUTAGE_WAIT_S = 5.0

_log = structlog.get_logger("whistle.consumer")


def attempts_made(message: RabbitMessage) -> int:
    """How many times Whistle has already run a handler on this message (0 on first arrival)."""
    value = message.headers.get(ATTEMPT_HEADER)
    try:
        return max(0, int(value)) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def _store_unavailable(error: BaseException) -> str | None:
    """'unreachable' or 'busy' when the store, not the message, is why the handler failed."""
    if store_unreachable(error):
        return "unreachable"
    seen: BaseException | None = error
    while seen is not None:
        if store_busy(seen) or isinstance(seen, TransactionConflict):
            return "busy"
        seen = seen.__cause__
    return None


def _names(models: Any) -> str:
    return ", ".join(sorted(model.__name__ for model in models))


def check_handlers(spec: ConsumerQueue, handlers: HandlerMap) -> None:
    """The map names exactly the queue's models, or the service does not start."""
    missing = set(spec.events) - set(handlers)
    extra = set(handlers) - set(spec.events)
    if missing or extra:
        raise ValueError(
            f"the handlers for queue {spec.name} do not match its events: "
            + "; ".join(
                part
                for part in (
                    f"no handler for {_names(missing)}" if missing else "",
                    f"handlers for events the queue does not receive: {_names(extra)}"
                    if extra
                    else "",
                )
                if part
            )
        )


# What a service's event handler is: one transaction's work on one consumed event.
Work = Callable[[Tx, Incoming[Any]], Awaitable[None]]
WorkMap = Mapping[type[EventData], Work]


@dataclass(frozen=True)
class Configured[C]:
    """A map entry whose work needs the service's configuration (a time zone, a step), built
    from it at registration. The map itself is declared at import, before any settings are
    read, because its keys are the queue's bindings (`ConsumerQueue.of`)."""

    build: Callable[[C], Work]


# A consumer's map as declared: each model's work, or how to build it from the config `C`.
type Wiring[C] = Mapping[type[EventData], Work | Configured[C]]


def configure[C](wiring: Wiring[C], config: C) -> WorkMap:
    """The map's works, the configured ones built from `config`."""
    return {
        model: entry.build(config) if isinstance(entry, Configured) else entry
        for model, entry in wiring.items()
    }


def exactly_once(
    uow: UnitOfWork,
    spec: ConsumerQueue,
    works: WorkMap,
    *,
    consumer: str | None = None,
    on_applied: Callable[[], None] | None = None,
) -> HandlerMap:
    """The handler map of a queue whose handlers change state: each runs in a transaction
    that also records the event id (`run_once`), under the event as its cause, so a
    redelivery changes nothing. `consumer` names the record (default: the queue's name);
    `on_applied` runs after an event's effect committed (not after a duplicate).

        runtime.consume(Q, exactly_once(runtime.uow, Q, {DemandCancelled: on_cancelled}))
        async def on_cancelled(tx: Tx, event: Incoming[DemandCancelled]) -> None: ...
    """
    name = consumer or spec.name

    def handler(work: Work) -> Handler:
        async def handle(event: Incoming[Any]) -> None:
            async def apply(tx: Tx) -> None:
                await work(tx, event)

            if await uow.run_once(name, event.envelope, apply) and on_applied is not None:
                on_applied()

        return handle

    return {model: handler(work) for model, work in works.items()}


class EventConsumer:
    def __init__(
        self, service: str, spec: ConsumerQueue, handlers: HandlerMap, republish: Republish
    ) -> None:
        self.service = service
        self.spec = spec
        self.republish = republish
        self._models = {model.TYPE: model for model in spec.events}
        check_handlers(spec, handlers)
        # event type -> its handler
        self._routes = {model.TYPE: handler for model, handler in handlers.items()}
        # Messages this consumer has settled (acked, rejected or retried): tests wait on it.
        self.settled = 0

    async def _through_outages(self, handler: Handler, event: Incoming[Any]) -> None:
        """Run the handler, running it again for as long as the database is unreachable or
        too busy to take the work (its bounded wait ran out, or transactions kept colliding).

        Neither is the message's fault: counting them as failed attempts would dead-letter good
        events whenever the store is slow (two replicas on one embedded store under a burst
        did exactly that). The message stays unacked meanwhile, so the prefetch window bounds
        what waits.
        """
        outages = 0
        while True:
            try:
                await handler(event)
                return
            except Exception as error:
                reason = _store_unavailable(error)
                if reason is None:
                    raise
                outages += 1
                delay = min(MAX_OUTAGE_WAIT_S, 0.2 * 2 ** min(outages, 5))
                _log.warning(
                    f"store_{reason}_waiting",
                    error=f"{type(error).__name__}: {str(error)[:200]}",
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)

    async def __call__(self, message: RabbitMessage) -> None:
        try:
            await self._consume(message)
        finally:
            self.settled += 1

    async def _consume(self, message: RabbitMessage) -> None:
        queue = self.spec.name
        try:
            event = CloudEvent.model_validate_json(message.body)
        except (ValueError, ValidationError) as error:
            _log.error(
                "poison_message", queue=queue, error=str(error)[:500], message_id=message.message_id
            )
            MESSAGES_CONSUMED.labels(self.service, queue, "invalid", "dead_lettered").inc()
            await message.reject(requeue=False)
            return

        context = {
            "queue": queue,
            "event_id": event.id,
            "event_type": event.type,
            "correlationid": event.correlationid,
            "causationid": event.causationid,
        }
        with message_context(**context):
            model = self._models.get(event.type)
            handler = self._routes.get(event.type)
            if model is None or handler is None:
                # Not bound here (a hand-made publish).
                _log.debug("event_ignored")
                MESSAGES_CONSUMED.labels(self.service, queue, event.type, "ignored").inc()
                await message.ack()
                return
            try:
                data = read_data(model, event.data, event.dataversion)
            except UnreadableDataversion as error:
                _log.error(
                    "event_dataversion_unreadable",
                    dataversion=event.dataversion,
                    reads=model.DATAVERSION,
                    reason=str(error),
                )
                MESSAGES_CONSUMED.labels(self.service, queue, event.type, "dead_lettered").inc()
                await message.reject(requeue=False)
                return
            except ValidationError as error:
                _log.error("poison_event_data", error=str(error)[:500])
                MESSAGES_CONSUMED.labels(self.service, queue, event.type, "dead_lettered").inc()
                await message.reject(requeue=False)
                return
            tag = getattr(message.raw_message, "delivery_tag", None)
            incoming: Incoming[Any] = Incoming(
                data=data,
                envelope=event,
                body=bytes(message.body),
                delivery_tag=tag if isinstance(tag, int) else None,
            )
            try:
                await self._through_outages(handler, incoming)
            except ValidationError as error:
                _log.error("poison_event_data", error=str(error)[:500])
                MESSAGES_CONSUMED.labels(self.service, queue, event.type, "dead_lettered").inc()
                await message.reject(requeue=False)
                return
            except Exception as error:
                await self._retry_or_dead_letter(message, event.type, error)
                return
            MESSAGES_CONSUMED.labels(self.service, queue, event.type, "ok").inc()
            await message.ack()

    async def _retry_or_dead_letter(
        self, message: RabbitMessage, event_type: str, error: Exception
    ) -> None:
        queue = self.spec.name
        attempt = attempts_made(message) + 1
        failure = f"{type(error).__name__}: {error}"
        if attempt >= self.spec.max_attempts:
            _log.error("event_handler_gave_up", error=failure, attempts=attempt, exc_info=error)
            MESSAGES_CONSUMED.labels(self.service, queue, event_type, "dead_lettered").inc()
            await message.reject(requeue=False)
            return
        backoff = min(5.0, 0.1 * 2**attempt)
        _log.warning(
            "event_handler_failed",
            error=failure,
            attempts=attempt,
            retry_in_s=backoff,
            exc_info=error,
        )
        MESSAGES_CONSUMED.labels(self.service, queue, event_type, "retried").inc()
        await asyncio.sleep(backoff)
        try:
            await self.republish(queue, message, {ATTEMPT_HEADER: attempt})
        except Exception as publish_error:
            # Not confirmed: the original goes back instead (the broker's delivery limit is
            # then the bound); acking it unconfirmed could lose the event.
            _log.warning("retry_republish_failed", error=str(publish_error)[:200])
            await message.nack(requeue=True)
            return
        await message.ack()
