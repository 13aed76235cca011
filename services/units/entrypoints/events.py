"""Units' AMQP side: dispatch's demand events keep units' copy of demands and communities.

Each map names exactly its queue's models (`shared.broker.topology`); the consumer refuses
to start otherwise. Every handler applies its effect once: a redelivery finds the event
processed and changes nothing.
"""

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from services.units.handlers import events, timers
from shared.broker.consumer import Handler, HandlerMap, Incoming
from shared.broker.topology import UNITS_DEMAND_EVENTS, UNITS_PRIVATE, ConsumerQueue
from shared.events import catalogue as ev
from shared.events.catalogue import EventData
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

Work = Callable[[Tx, Incoming[Any]], Awaitable[None]]

DEMAND_EVENTS: Mapping[type[EventData], Work] = {
    ev.CommunityRegistered: events.on_community_registered,
    ev.CommunityUpdated: events.on_community_updated,
    ev.DemandPublished: events.on_demand_published,
    ev.DemandEscalated: events.on_demand_escalated,
    ev.DemandCancelled: events.on_demand_cancelled,
    ev.DemandCompleted: events.on_demand_completed,
    ev.DemandExpired: events.on_demand_expired,
}
# From `whistle.private`, which audit does not record.
PRIVATE_EVENTS: Mapping[type[EventData], Work] = {
    ev.DemandDetails: events.on_demand_details,
}


def once(
    runtime: ServiceRuntime, spec: ConsumerQueue, works: Mapping[type[EventData], Work]
) -> HandlerMap:
    """Each work in its own transaction with the record that `spec`'s consumer applied it."""

    def handler(work: Work) -> Handler:
        async def handle(event: Incoming[Any]) -> None:
            async def apply(tx: Tx) -> None:
                await work(tx, event)

            await runtime.uow.run_once(spec.name, event.envelope, apply)

        return handle

    return {model: handler(work) for model, work in works.items()}


def register_consumers(runtime: ServiceRuntime) -> None:
    runtime.consume(UNITS_DEMAND_EVENTS, once(runtime, UNITS_DEMAND_EVENTS, DEMAND_EVENTS))
    runtime.consume(UNITS_PRIVATE, once(runtime, UNITS_PRIVATE, PRIVATE_EVENTS))
    runtime.on_timer(timers.NO_SHOW_TIMER, timers.on_no_show_due)
