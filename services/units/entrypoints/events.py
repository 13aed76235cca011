"""Units' AMQP side: dispatch's demand events keep units' copy of demands and communities."""

from collections.abc import Awaitable, Callable

from services.units.handlers import events, timers
from shared.broker.consumer import EventHandler
from shared.broker.topology import UNITS_DEMAND_EVENTS, UNITS_PRIVATE, ConsumerQueue
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

Work = Callable[[Tx, CloudEvent], Awaitable[None]]

HANDLERS: dict[str, Work] = {
    "community.registered": events.on_community_registered,
    "demand.published": events.on_demand_published,
    "demand.escalated": events.on_demand_escalated,
    "demand.cancelled": events.on_demand_cancelled,
    "demand.completed": events.on_demand_completed,
    "demand.expired": events.on_demand_expired,
}
# From `whistle.private`, which audit does not record.
PRIVATE_HANDLERS: dict[str, Work] = {
    "demand.details": events.on_demand_details,
}


def once(
    runtime: ServiceRuntime, work: Work, spec: ConsumerQueue = UNITS_DEMAND_EVENTS
) -> EventHandler:
    """Apply the effect exactly once: a redelivery finds the event processed, changes nothing."""

    async def handle(event: CloudEvent) -> None:
        async def apply(tx: Tx) -> None:
            await work(tx, event)

        await runtime.uow.run_once(spec.name, event, apply)

    return handle


def register_consumers(runtime: ServiceRuntime) -> None:
    runtime.consume(
        UNITS_DEMAND_EVENTS,
        {event_type: once(runtime, work) for event_type, work in HANDLERS.items()},
    )
    runtime.consume(
        UNITS_PRIVATE,
        {
            event_type: once(runtime, work, UNITS_PRIVATE)
            for event_type, work in PRIVATE_HANDLERS.items()
        },
    )
    runtime.on_timer(timers.NO_SHOW_TIMER, timers.on_no_show_due)
