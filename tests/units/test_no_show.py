"""No-show: a stored timer at `ends_at` that fires once, even when units was down at the time."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from shared.clock import utcnow
from tests.support.events import collect
from tests.support.processes import ServiceProcess
from tests.units.support import UnitsWorld, distinct, tok, wait_distinct

pytestmark = pytest.mark.e2e


@pytest.fixture
async def world(
    start_service: Callable[..., ServiceProcess], service_env: dict[str, str]
) -> AsyncIterator[tuple[UnitsWorld, ServiceProcess]]:
    units = start_service("units")
    async with UnitsWorld.opened(units.url, service_env) as units_world:
        yield units_world, units


async def test_claims_not_checked_in_become_no_shows_after_a_restart(
    world: tuple[UnitsWorld, ServiceProcess],
) -> None:
    units_world, units = world
    community = await units_world.community()
    now = utcnow()
    ends_at = now + timedelta(seconds=6)
    demand = await units_world.demand(
        community, starts_at=now - timedelta(minutes=30), ends_at=ends_at
    )
    absent = await units_world.volunteer(community)
    present = await units_world.volunteer(community)
    absent_claim = (await units_world.claim(absent.token, demand)).json()["id"]
    present_claim = (await units_world.claim(present.token, demand)).json()["id"]
    code = (await units_world.code_response(demand, tok("secretary", community=community))).json()
    checked_in = await units_world.act(
        present.token, present_claim, "check-in", {"code": code["code"]}
    )
    assert checked_in.status_code == 200, checked_in.text

    async with collect(units_world.rabbitmq_url, "claim.no_show") as seen:
        units.kill()  # a crash: the timer is due while nothing runs
        await asyncio.sleep(max(0.0, (ends_at - utcnow()).total_seconds()) + 0.5)
        assert seen.events == []
        await asyncio.to_thread(lambda: units.start().wait_ready())
        [no_show] = await wait_distinct(seen, "claim.no_show")
        await seen.settle(1.0)
    assert len(distinct(seen.events)) == 1
    assert no_show["subject"] == demand
    assert no_show["data"]["claim_id"] == absent_claim
    assert no_show["actor"] == "units"
    assert (await units_world.get_claim(absent_claim))["status"] == "no_show"
    assert (await units_world.get_claim(present_claim))["status"] == "checked_in"
    async with units_world.database() as db:
        timer = await db["timers"].find_one({"_id": f"no-show:{demand}"})
    assert timer is not None
    assert timer["state"] == "fired"
