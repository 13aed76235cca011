"""Units' AMQP side: dispatch's demand events keep units' copy of demands and communities.

Each map names exactly its queue's models (`shared.broker.topology`); the consumer refuses
to start otherwise. Every handler applies its effect once (`exactly_once`): a redelivery
finds the event processed and changes nothing.
"""

from functools import partial

from services.units.config import UnitsSettings
from services.units.handlers import events, timers, zones
from shared.broker.consumer import WorkMap, exactly_once
from shared.broker.topology import UNITS_DEMAND_EVENTS, UNITS_PRIVATE, UNITS_ZONE_EVENTS
from shared.events import catalogue as ev
from shared.runtime import ServiceRuntime


def demand_events(settings: UnitsSettings) -> WorkMap:
    return {
        ev.CommunityRegistered: events.on_community_registered,
        ev.CommunityUpdated: events.on_community_updated,
        ev.DemandPublished: events.on_demand_published,
        ev.DemandEscalated: events.on_demand_escalated,
        # Promotion checks the volunteers' weekly caps in the communities' week.
        ev.DemandUpdated: partial(events.on_demand_updated, zone=settings.week_zone),
        ev.DemandCancelled: events.on_demand_cancelled,
        ev.DemandCompleted: events.on_demand_completed,
        ev.DemandExpired: events.on_demand_expired,
    }


# From `whistle.private`, which audit does not record.
PRIVATE_EVENTS: WorkMap = {
    ev.DemandDetails: events.on_demand_details,
}


# The risk zones and the zone rule: a claim's eligibility is tightened by them.
ZONE_EVENTS: WorkMap = {
    ev.ZoneRated: zones.on_zone_rated,
    ev.ZoneRuleSet: zones.on_zone_rule_set,
}


def register_consumers(runtime: ServiceRuntime) -> None:
    settings = runtime.settings
    if not isinstance(settings, UnitsSettings):
        raise TypeError("units' consumers need UnitsSettings (the week's time zone)")
    demand_map = demand_events(settings)
    runtime.consume(UNITS_DEMAND_EVENTS, exactly_once(runtime.uow, UNITS_DEMAND_EVENTS, demand_map))
    runtime.consume(UNITS_PRIVATE, exactly_once(runtime.uow, UNITS_PRIVATE, PRIVATE_EVENTS))
    runtime.consume(UNITS_ZONE_EVENTS, exactly_once(runtime.uow, UNITS_ZONE_EVENTS, ZONE_EVENTS))
    runtime.on_timer(timers.NO_SHOW_TIMER, timers.on_no_show_due)
