"""Notify's AMQP side: each consumed event type and each timer kind, to its handler."""

from collections.abc import Callable

from services.notify import handlers, notifying
from services.notify.notifying import Policy
from shared.broker.consumer import EventHandler
from shared.broker.topology import NOTIFY_EVENTS, NOTIFY_PRIVATE
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.mongo import Document
from shared.store.timers import TimerHandler
from shared.store.unit_of_work import Tx

CONSUMER = "notify"


def register_consumers(
    runtime: ServiceRuntime, policy: Policy, on_committed: Callable[[], None]
) -> None:
    """`on_committed` runs after an event's effects commit (wakes deliveries and streams)."""

    def consumer(handler: handlers.EventHandler) -> EventHandler:
        async def consume(event: CloudEvent) -> None:
            async def work(tx: Tx) -> None:
                await handler(tx, event, policy)

            if await runtime.uow.run_once(CONSUMER, event, work):
                on_committed()

        return consume

    def timer(handler: handlers.TimerRule) -> TimerHandler:
        async def fire(tx: Tx, document: Document) -> None:
            await handler(tx, document, policy)

        return fire

    runtime.consume(
        NOTIFY_EVENTS,
        {event_type: consumer(handler) for event_type, handler in handlers.EVENT_HANDLERS.items()},
    )
    # How to reach people arrives on the private exchange, which audit never records.
    runtime.consume(
        NOTIFY_PRIVATE,
        {
            event_type: consumer(handler)
            for event_type, handler in handlers.PRIVATE_HANDLERS.items()
        },
    )
    runtime.on_timer(handlers.REMINDER, timer(handlers.on_reminder_due))
    runtime.on_timer(handlers.REALERT, timer(handlers.on_realert_due))
    runtime.on_timer(notifying.FANOUT, timer(notifying.on_fanout_due))
