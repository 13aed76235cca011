"""Notify's AMQP side: each consumed event, by its catalogue model, to its handler; and each
timer kind to its handler.

Each map below is the one declaration of what its queue receives: the queue is built from
the map's keys (`ConsumerQueue.of`), so consuming one more event type is one more entry (and
its handler). Every handler runs once per event (`exactly_once`), in the consumer's
transaction, under the event's cause.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from services.notify.domain.model import (
    CLAIM_STATUS,
    TIMER_FANOUT,
    TIMER_REALERT,
    TIMER_REMINDER,
    Policy,
)
from services.notify.handlers import events, timers
from shared.broker.consumer import Incoming, Work, exactly_once
from shared.broker.topology import ConsumerQueue
from shared.events import catalogue as ev
from shared.events.catalogue import EventData
from shared.runtime import ServiceRuntime
from shared.store.mongo import Document
from shared.store.timers import TimerHandler
from shared.store.unit_of_work import Tx

CONSUMER = "notify"

EventWork = Callable[[Tx, Incoming[Any], Policy], Awaitable[None]]
TimerWork = Callable[[Tx, Document, Policy], Awaitable[None]]

EVENTS: dict[type[EventData], EventWork] = {
    ev.DemandPublished: events.on_demand_published,
    ev.DemandEscalated: events.on_demand_escalated,
    ev.DemandFilled: events.on_demand_filled,
    ev.DemandReopened: events.on_demand_reopened,
    ev.DemandCancelled: events.on_demand_cancelled,
    ev.DemandCompleted: events.on_demand_completed,
    ev.DemandExpired: events.on_demand_expired,
    **dict.fromkeys(CLAIM_STATUS, events.on_claim),
    ev.CommunityRegistered: events.on_community_registered,
    ev.UnitRegistered: events.on_unit_registered,
    ev.UnitUpdated: events.on_unit_updated,
    ev.VolunteerRegistered: events.on_volunteer_registered,
    ev.VolunteerUpdated: events.on_volunteer_updated,
    ev.VolunteerErased: events.on_volunteer_erased,
}
NOTIFY_EVENTS = ConsumerQueue.of("notify", "events", EVENTS)

# From `whistle.private` (queue `notify.private`): how to reach people, never audited.
PRIVATE: dict[type[EventData], EventWork] = {
    ev.UnitDetails: events.on_unit_details,
    ev.VolunteerDetails: events.on_volunteer_details,
}
NOTIFY_PRIVATE = ConsumerQueue.of("notify", "private", PRIVATE)

QUEUES = (NOTIFY_EVENTS, NOTIFY_PRIVATE)

TIMERS: dict[str, TimerWork] = {
    TIMER_REMINDER: timers.on_reminder_due,
    TIMER_REALERT: timers.on_realert_due,
    TIMER_FANOUT: timers.on_fanout_due,
}


def register_consumers(
    runtime: ServiceRuntime, policy: Policy, on_committed: Callable[[], None]
) -> None:
    """`on_committed` runs after an event's effects commit (wakes deliveries and streams)."""

    def under_policy(work: EventWork) -> Work:
        async def apply(tx: Tx, event: Incoming[Any]) -> None:
            await work(tx, event, policy)

        return apply

    def timer(work: TimerWork) -> TimerHandler:
        async def fire(tx: Tx, document: Document) -> None:
            await work(tx, document, policy)

        return fire

    for spec, works in ((NOTIFY_EVENTS, EVENTS), (NOTIFY_PRIVATE, PRIVATE)):
        handlers = {model: under_policy(work) for model, work in works.items()}
        # One record of applied events for both queues (`notify:<event id>`), as ever.
        runtime.consume(
            spec,
            exactly_once(runtime.uow, spec, handlers, consumer=CONSUMER, on_applied=on_committed),
        )
    for kind, work in TIMERS.items():
        runtime.on_timer(kind, timer(work))
