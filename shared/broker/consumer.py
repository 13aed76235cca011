"""The wrapper every event consumer runs through: parse, log context, ack, retry, dead-letter.

- A message that is not a valid CloudEvent, or whose `data` does not fit its model, is a
  poison message: rejected without requeue, so it goes straight to the dead-letter queue.
- A handler failure is retried, and Whistle counts the attempts itself: after a backoff the
  message is published again to its own queue (confirmed, persistent) with the attempt count
  in the `x-whistle-attempt` header, and the original is acked. After `max_attempts` the
  message is rejected without requeue, so the queue's dead-letter route takes it to `.dlq`.
  RabbitMQ's own `x-delivery-count` is not relied on: RabbitMQ 4.3 stopped counting a
  `nack(requeue=True)` toward `x-delivery-limit`, so on 4.x a nack loop never ends. The
  queue's delivery limit stays as the backstop for messages whose consumer dies mid-handling.
  Nothing blocks the queue or loops forever.
- Handlers are idempotent (see `UnitOfWork.run_once`), so redelivery changes nothing twice.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError

from shared.broker.topology import ConsumerQueue
from shared.events.envelope import CloudEvent
from shared.logging import message_context
from shared.metrics import MESSAGES_CONSUMED
from shared.store.mongo import store_unreachable

EventHandler = Callable[[CloudEvent], Awaitable[None]]
# Publishes the message again to the named queue with these headers added; returns once the
# broker has confirmed it.
Republish = Callable[[str, RabbitMessage, Mapping[str, Any]], Awaitable[None]]

ATTEMPT_HEADER = "x-whistle-attempt"

MAX_OUTAGE_WAIT_S = 5.0

_log = structlog.get_logger("whistle.consumer")

CATCH_ALL = "#"


def attempts_made(message: RabbitMessage) -> int:
    """How many times Whistle has already run a handler on this message (0 on first arrival)."""
    value = message.headers.get(ATTEMPT_HEADER)
    try:
        return max(0, int(value)) if value is not None else 0
    except (TypeError, ValueError):
        return 0


class EventConsumer:
    def __init__(
        self,
        service: str,
        spec: ConsumerQueue,
        handlers: Mapping[str, EventHandler],
        republish: Republish,
    ) -> None:
        self.service = service
        self.spec = spec
        self.handlers = dict(handlers)
        self.republish = republish

    async def _through_outages(self, handler: EventHandler, event: CloudEvent) -> None:
        """Run the handler, running it again for as long as the database is unreachable.

        An outage is not the message's fault: nacking would spend its bounded deliveries and
        dead-letter good events during a long outage. The message stays unacked meanwhile.
        """
        outages = 0
        while True:
            try:
                await handler(event)
                return
            except Exception as error:
                if not store_unreachable(error):
                    raise
                outages += 1
                delay = min(MAX_OUTAGE_WAIT_S, 0.2 * 2 ** min(outages, 5))
                _log.warning(
                    "store_unreachable_waiting",
                    error=f"{type(error).__name__}: {str(error)[:200]}",
                    retry_in_s=delay,
                )
                await asyncio.sleep(delay)

    def handler_for(self, event_type: str) -> EventHandler | None:
        return self.handlers.get(event_type) or self.handlers.get(CATCH_ALL)

    async def __call__(self, message: RabbitMessage) -> None:
        queue = self.spec.name
        try:
            event = CloudEvent.model_validate(json.loads(message.body))
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
            handler = self.handler_for(event.type)
            if handler is None:
                _log.debug("event_ignored")
                MESSAGES_CONSUMED.labels(self.service, queue, event.type, "ignored").inc()
                await message.ack()
                return
            try:
                await self._through_outages(handler, event)
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
