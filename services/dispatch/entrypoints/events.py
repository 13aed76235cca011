"""Dispatch's AMQP side and timers: units' events keep `filled` and `status` current and the
reach of volunteers and units; stored timers run the escalation ladder and expiry.

The consumer map is keyed by catalogue model, and must name exactly the models of dispatch's
queue (`DISPATCH_UNIT_EVENTS`): the service does not start otherwise.
"""

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from services.dispatch.config import DispatchSettings
from services.dispatch.handlers import events, series, timers
from shared.broker.consumer import Handler, HandlerMap, Incoming
from shared.broker.topology import DISPATCH_UNIT_EVENTS
from shared.events.catalogue import (
    ClaimAccepted,
    ClaimCheckedIn,
    ClaimPromoted,
    ClaimReleased,
    ClaimWithdrawn,
    DemandFilled,
    DemandReopened,
    EventData,
    UnitRegistered,
    VolunteerRegistered,
)
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx

Work = Callable[[Tx, Incoming[Any]], Awaitable[None]]


def handlers(settings: DispatchSettings) -> Mapping[type[EventData], Work]:
    """Each event dispatch consumes, and what applies it (inside its unit of work)."""
    units_fact = partial(events.on_units_fact, default_step_s=settings.escalation_step_s)
    return {
        ClaimAccepted: units_fact,
        ClaimPromoted: units_fact,
        ClaimWithdrawn: units_fact,
        ClaimReleased: units_fact,
        ClaimCheckedIn: units_fact,
        DemandFilled: units_fact,
        DemandReopened: units_fact,
        UnitRegistered: events.on_unit_registered,
        VolunteerRegistered: events.on_volunteer_registered,
    }


def _once(runtime: ServiceRuntime, work: Work) -> Handler:
    """Apply the effect exactly once: a redelivery finds the event processed, changes nothing."""

    async def handle(event: Incoming[Any]) -> None:
        await runtime.uow.run_once(
            DISPATCH_UNIT_EVENTS.name, event.envelope, lambda tx: work(tx, event)
        )

    return handle


def register_consumers(runtime: ServiceRuntime, settings: DispatchSettings) -> None:
    consumer: HandlerMap = {
        model: _once(runtime, work) for model, work in handlers(settings).items()
    }
    runtime.consume(DISPATCH_UNIT_EVENTS, consumer)
    runtime.on_timer(
        timers.ESCALATE, partial(timers.escalate, default_step_s=settings.escalation_step_s)
    )
    runtime.on_timer(timers.EXPIRE, partial(timers.expire, grace_s=settings.completion_grace_s))
    runtime.on_timer(series.PUBLISH, series.on_timer)
