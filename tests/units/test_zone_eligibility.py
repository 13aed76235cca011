"""Who may take risky work, tightened by the risk zones (issues 13 and 14), against a
running units process and the real RabbitMQ: dispatch's `zone.rated` and `zone.rule_set`
arrive as dispatch sends them, and a claim on a demand in a grid the rule raises to `high` is
refused `not-eligible` to a volunteer aged 60+ or with a risk factor, naming the zone rule."""

from datetime import datetime, timedelta
from typing import Any

import pytest

from services.units.domain.zone_rules import ZONE_EXPOSURE_RULE, Exposed, effective_exposure
from shared.clock import utcnow
from shared.events.catalogue import Exposure, ZoneLevel, ZoneRated, ZoneRuleSet
from tests.support.events import event_of, publish
from tests.units.support import UnitsWorld, problem_slug, wait_until

pytestmark = pytest.mark.e2e


def test_the_zone_rule_only_ever_raises_the_exposure() -> None:
    rule: dict[ZoneLevel, Exposure] = {"red": "high", "orange": "medium"}
    assert effective_exposure("low", "red", rule) == Exposed("high", "red")
    assert effective_exposure("low", "orange", rule) == Exposed("medium", "orange")
    assert effective_exposure("high", "orange", rule) == Exposed("high")  # never lowered
    assert effective_exposure("low", "yellow", rule) == Exposed("low")  # not in the rule
    assert effective_exposure("low", None, rule) == Exposed("low")  # no grid, or unrated


async def rate(
    world: UnitsWorld, community: str, grid: str, level: ZoneLevel, version: int
) -> None:
    data = ZoneRated(
        community_id=community,
        grid_id=grid,
        level=level,
        reason="cases reported",
        rated_by="acc_street",
        rated_at=utcnow(),
        version=version,
    )
    await publish(world.rabbitmq_url, event_of(data, subject=f"{community}/{grid}"))
    await _applied(world, "zone_levels", f"{community}/{grid}", version)


async def set_rule(
    world: UnitsWorld, community: str, rule: dict[ZoneLevel, Exposure], version: int
) -> None:
    data = ZoneRuleSet(community_id=community, version=version, exposure_by_level=rule)
    await publish(world.rabbitmq_url, event_of(data, subject=community))
    await _applied(world, "zone_rules", community, version)


async def _applied(world: UnitsWorld, collection: str, key: str, version: int) -> None:
    async def stored() -> dict[str, Any] | None:
        async with world.database() as db:
            found: dict[str, Any] | None = await db[collection].find_one({"_id": key})
            return found

    found = await wait_until(stored, lambda doc: doc is not None and doc["version"] >= version)
    assert found is not None, (collection, key)
    assert found["version"] >= version, (collection, key, found)


async def processed(world: UnitsWorld, event_id: str) -> None:
    """Wait until units has applied (or knowingly skipped) the event."""

    async def seen() -> int:
        async with world.database() as db:
            count: int = await db["processed_events"].count_documents({"event_id": event_id})
            return count

    assert await wait_until(seen, lambda count: count > 0) > 0


def ahead(days: int) -> datetime:
    return (utcnow() + timedelta(days=days)).replace(microsecond=0)


async def test_red_and_orange_zones_keep_the_vulnerable_out(world: UnitsWorld) -> None:
    community = await world.community()
    starts = ahead(10)
    year = starts.year
    await rate(world, community, "g-red", "red", 1)
    await rate(world, community, "g-yellow", "yellow", 1)
    await set_rule(world, community, {"red": "high", "orange": "high"}, 1)
    in_red = await world.demand(community, starts_at=starts, location={"grid": "g-red"})
    in_yellow = await world.demand(
        community, starts_at=starts + timedelta(days=1), location={"grid": "g-yellow"}
    )
    sixty = await world.volunteer(community, birth_year=year - 60)
    at_risk = await world.volunteer(community, risk_factors=["chronic_illness"])
    young = await world.volunteer(community, birth_year=year - 30)

    for volunteer in (sixty, at_risk):
        before = await world.counts()
        response = await world.claim(volunteer.token, in_red)
        assert response.status_code == 409, response.text
        assert problem_slug(response) == "not-eligible"
        body = response.json()
        assert body["rule"] == ZONE_EXPOSURE_RULE
        assert body["zone_level"] == "red"
        assert "red risk zone" in body["detail"]
        assert await world.counts() == before  # nothing stored, nothing announced
        # The same demand's exposure in a yellow grid is its own (`low`): theirs to take.
        assert (await world.claim(volunteer.token, in_yellow)).status_code == 201
    assert (await world.claim(young.token, in_red)).status_code == 201


async def test_a_newer_rating_or_rule_wins_and_a_late_older_one_does_not(
    world: UnitsWorld,
) -> None:
    community = await world.community()
    starts = ahead(12)
    await set_rule(world, community, {"red": "high"}, 1)
    await rate(world, community, "g-1", "red", 1)
    demand = await world.demand(community, starts_at=starts, location={"grid": "g-1"})
    sixty = await world.volunteer(community, birth_year=starts.year - 61)
    assert problem_slug(await world.claim(sixty.token, demand)) == "not-eligible"

    # The grid is rated green (version 2); the red rating redelivered late changes nothing.
    await rate(world, community, "g-1", "green", 2)
    late = event_of(
        ZoneRated(
            community_id=community,
            grid_id="g-1",
            level="red",
            reason="late",
            rated_by="acc_street",
            rated_at=utcnow(),
            version=1,
        ),
        subject=f"{community}/g-1",
    )
    await publish(world.rabbitmq_url, late)
    await processed(world, late.id)
    other = await world.demand(
        community, starts_at=starts + timedelta(days=1), location={"grid": "g-1"}
    )
    await world.outbox_flushed()
    response = await world.claim(sixty.token, other)
    assert response.status_code == 201, response.text

    # Red again, but the rule is lifted (version 2): the demand's own exposure holds.
    await rate(world, community, "g-1", "red", 3)
    await set_rule(world, community, {}, 2)
    third = await world.demand(
        community, starts_at=starts + timedelta(days=2), location={"grid": "g-1"}
    )
    assert (await world.claim(sixty.token, third)).status_code == 201
