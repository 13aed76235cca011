"""Dispatch's AMQP side and timers: units' events keep `filled` and `status` current and the
reach of volunteers and units; stored timers run the escalation ladder and expiry.

`UNIT_EVENTS` is the one declaration of what dispatch consumes: its queue
(`DISPATCH_UNIT_EVENTS`) is built from the map's keys, so consuming one more event type is
one more entry (and its handler).
"""

from functools import partial

from services.dispatch.config import DispatchSettings
from services.dispatch.handlers import events, rosters, series, timers
from shared.broker.consumer import Configured, Wiring, configure, exactly_once
from shared.broker.topology import ConsumerQueue
from shared.events import catalogue as ev
from shared.runtime import ServiceRuntime

# Units' facts about a demand's claims: the count and status follow, and the ladder's step.
_units_fact: Configured[DispatchSettings] = Configured(
    lambda settings: partial(events.on_units_fact, default_step_s=settings.escalation_step_s)
)

# Each event dispatch consumes, and what applies it (inside its unit of work, once).
UNIT_EVENTS: Wiring[DispatchSettings] = {
    ev.DemandFilled: _units_fact,
    ev.DemandReopened: _units_fact,
    ev.ClaimAccepted: _units_fact,
    ev.ClaimPromoted: _units_fact,
    ev.ClaimWithdrawn: _units_fact,
    ev.ClaimReleased: _units_fact,
    ev.ClaimCheckedIn: _units_fact,
    # Who serves which community: dispatch scopes volunteers' and units' reads by it, and a
    # relay roster chooses among the units serving the community (with their skills).
    ev.UnitRegistered: rosters.on_unit_registered,
    ev.UnitUpdated: rosters.on_unit_updated,
    ev.VolunteerRegistered: events.on_volunteer_registered,
}
DISPATCH_UNIT_EVENTS = ConsumerQueue.of("dispatch", "unit-events", UNIT_EVENTS)

QUEUES = (DISPATCH_UNIT_EVENTS,)


def register_consumers(runtime: ServiceRuntime, settings: DispatchSettings) -> None:
    works = configure(UNIT_EVENTS, settings)
    runtime.consume(DISPATCH_UNIT_EVENTS, exactly_once(runtime.uow, DISPATCH_UNIT_EVENTS, works))
    runtime.on_timer(
        timers.ESCALATE, partial(timers.escalate, default_step_s=settings.escalation_step_s)
    )
    runtime.on_timer(timers.EXPIRE, partial(timers.expire, grace_s=settings.completion_grace_s))
    runtime.on_timer(series.PUBLISH, series.on_timer)
