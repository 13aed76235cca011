"""Units' AMQP side: dispatch's demand events keep units' copy of demands and communities.

Each map below is the one declaration of what its queue receives: the queue is built from
the map's keys (`ConsumerQueue.of`), so consuming one more event type is one more entry (and
its handler). Every handler applies its effect once (`exactly_once`): a redelivery finds the
event processed and changes nothing.
"""

from functools import partial

from services.units.config import UnitsSettings
from services.units.handlers import events, timers, zones
from shared.broker.consumer import Configured, Wiring, WorkMap, configure, exactly_once
from shared.broker.topology import ConsumerQueue
from shared.events import catalogue as ev
from shared.runtime import ServiceRuntime

DEMAND_EVENTS: Wiring[UnitsSettings] = {
    ev.CommunityRegistered: events.on_community_registered,
    ev.CommunityUpdated: events.on_community_updated,
    ev.DemandPublished: events.on_demand_published,
    ev.DemandEscalated: events.on_demand_escalated,
    # Promotion checks the volunteers' weekly caps in the communities' week.
    ev.DemandUpdated: Configured(
        lambda settings: partial(events.on_demand_updated, zone=settings.week_zone)
    ),
    ev.DemandCancelled: events.on_demand_cancelled,
    ev.DemandCompleted: events.on_demand_completed,
    ev.DemandExpired: events.on_demand_expired,
}
UNITS_DEMAND_EVENTS = ConsumerQueue.of("units", "demand-events", DEMAND_EVENTS)

# From `whistle.private`, which audit does not record.
PRIVATE_EVENTS: WorkMap = {
    ev.DemandDetails: events.on_demand_details,
}
UNITS_PRIVATE = ConsumerQueue.of("units", "private", PRIVATE_EVENTS)

# The risk zones and the zone rule: a claim's eligibility is tightened by them.
ZONE_EVENTS: WorkMap = {
    ev.ZoneRated: zones.on_zone_rated,
    ev.ZoneRuleSet: zones.on_zone_rule_set,
}
UNITS_ZONE_EVENTS = ConsumerQueue.of("units", "zone-events", ZONE_EVENTS)

QUEUES = (UNITS_DEMAND_EVENTS, UNITS_ZONE_EVENTS, UNITS_PRIVATE)


def register_consumers(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    if not isinstance(settings, UnitsSettings):
        raise TypeError("units' consumers need UnitsSettings (the week's time zone)")
    demand_map = configure(DEMAND_EVENTS, settings)
    runtime.consume(UNITS_DEMAND_EVENTS, exactly_once(runtime.uow, UNITS_DEMAND_EVENTS, demand_map))
    runtime.consume(UNITS_PRIVATE, exactly_once(runtime.uow, UNITS_PRIVATE, PRIVATE_EVENTS))
    runtime.consume(UNITS_ZONE_EVENTS, exactly_once(runtime.uow, UNITS_ZONE_EVENTS, ZONE_EVENTS))
    runtime.on_timer(timers.NO_SHOW_TIMER, timers.on_no_show_due)
