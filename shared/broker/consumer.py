"""The wrapper every event consumer runs through: parse, log context, ack, retry, dead-letter.

- A message that is not a valid CloudEvent, or whose `data` does not fit its model, is a
  poison message: rejected without requeue, so it goes straight to the dead-letter queue.
- A handler failure is retried: the message is nacked back to its quorum queue after a
  backoff that grows with `x-delivery-count`; past the queue's delivery limit RabbitMQ
  dead-letters it. Nothing blocks the queue or loops forever.
- Handlers are idempotent (see `UnitOfWork.run_once`), so redelivery changes nothing twice.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping

import structlog
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError
from pymongo.errors import ConnectionFailure

from shared.broker.topology import ConsumerQueue
from shared.events.envelope import CloudEvent
from shared.logging import message_context
from shared.metrics import MESSAGES_CONSUMED

EventHandler = Callable[[CloudEvent], Awaitable[None]]

MAX_OUTAGE_WAIT_S = 5.0

_log = structlog.get_logger("whistle.consumer")

CATCH_ALL = "#"


def _store_unreachable(error: BaseException) -> bool:
    """The database could not be reached (possibly wrapped, e.g. by TransactionConflict)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionFailure):
            return True
        seen = seen.__cause__
    return False


class EventConsumer:
    def __init__(
        self, service: str, spec: ConsumerQueue, handlers: Mapping[str, EventHandler]
    ) -> None:
        self.service = service
        self.spec = spec
        self.handlers = dict(handlers)

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
                if not _store_unreachable(error):
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
                deliveries = int(message.headers.get("x-delivery-count") or 0)
                backoff = min(5.0, 0.1 * 2**deliveries)
                _log.warning(
                    "event_handler_failed",
                    error=f"{type(error).__name__}: {error}",
                    deliveries=deliveries,
                    retry_in_s=backoff,
                    exc_info=error,
                )
                MESSAGES_CONSUMED.labels(self.service, queue, event.type, "retried").inc()
                await asyncio.sleep(backoff)
                await message.nack(requeue=True)
                return
            MESSAGES_CONSUMED.labels(self.service, queue, event.type, "ok").inc()
            await message.ack()
