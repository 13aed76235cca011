"""Units' handlers for the risk zones: keep each grid's level and each community's zone rule,
by which a claim's eligibility is tightened (`handlers/commands._check_eligible`)."""

from services.units.adapters import zones_store
from shared.broker.consumer import Incoming
from shared.events.catalogue import ZoneRated, ZoneRuleSet
from shared.store.unit_of_work import Tx


async def on_zone_rated(tx: Tx, event: Incoming[ZoneRated]) -> None:
    data = event.data
    await zones_store.save_level(tx, data.community_id, data.grid_id, data.level, data.version)


async def on_zone_rule_set(tx: Tx, event: Incoming[ZoneRuleSet]) -> None:
    data = event.data
    await zones_store.save_rule(tx, data.community_id, data.exposure_by_level, data.version)
