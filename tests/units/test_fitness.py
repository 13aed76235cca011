"""`GET /v1/demands/{id}/fitness` at a real units process: the limits that apply to the
volunteer, what the shift counts (night hours 1.5x) and the claim's own refusal when a claim
now would be refused; a read that changes nothing."""

from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared.clock import utcnow
from tests.conftest import bearer
from tests.support.processes import ServiceProcess
from tests.units.support import UnitsWorld, tok

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def units(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_module_service("units")


@pytest.fixture
async def world(
    units: ServiceProcess, module_service_env: dict[str, str]
) -> AsyncIterator[UnitsWorld]:
    async with UnitsWorld.opened(units.url, module_service_env, timeout=60) as world:
        yield world


def wednesday() -> datetime:
    now = utcnow().astimezone(ZONE)
    return (now + timedelta(days=14 - now.weekday() + 2)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


async def fitness(world: UnitsWorld, token: str, demand: str) -> httpx.Response:
    return await world.http.get(f"{world.url}/v1/demands/{demand}/fitness", headers=bearer(token))


async def shift(world: UnitsWorld, community: str, day: datetime, start: float, end: float) -> str:
    return await world.demand(
        community, starts_at=day + timedelta(hours=start), ends_at=day + timedelta(hours=end)
    )


async def test_the_limits_and_what_a_night_shift_counts(world: UnitsWorld) -> None:
    community = await world.community(max_hours_per_day=9, min_rest_hours=10)
    day = wednesday()
    night = await shift(world, community, day, 20, 26)  # 6 h, 4 of them at night
    volunteer = await world.volunteer(community, max_hours=30)
    response = await fitness(world, volunteer.token, night)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    assert found["limits"] == {
        "max_hours_per_day": 9,
        "min_rest_hours": 10,
        "max_consecutive_days": 6,
        "max_hours_per_week": 30,
        "night_weight": 1.5,
        "night_starts": "22:00",
        "night_ends": "06:00",
        "same_period_gap_hours": 1,
    }
    assert found["shift"] == {"hours": 6, "weighted_hours": 8, "night_hours": 4}
    assert found["would_refuse"] is None


async def test_a_claim_that_would_be_refused_says_why_as_the_claim_would(
    world: UnitsWorld,
) -> None:
    community = await world.community()
    day = wednesday()
    morning = await shift(world, community, day, 8, 13)
    evening = await shift(world, community, day, 18, 21)  # 5 h rest after the morning
    volunteer = await world.volunteer(community, min_rest_hours=None)
    assert (await world.claim(volunteer.token, morning)).status_code == 201
    before = await world.counts()
    found = (await fitness(world, volunteer.token, evening)).json()
    would = found["would_refuse"]
    assert would["type"].endswith("/rest-too-short")
    assert would["status"] == 409
    assert would["collides_with"]["demand_id"] == morning
    claimed = await world.claim(volunteer.token, evening)
    assert claimed.status_code == 409
    assert claimed.json()["type"] == would["type"]
    assert await world.counts() == before
    # Their own claim's shift does not collide with itself.
    assert (await fitness(world, volunteer.token, morning)).json()["would_refuse"] is None


async def test_only_a_volunteer_asks_and_only_of_a_known_demand(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await shift(world, community, wednesday(), 9, 11)
    unit = await fitness(world, tok("unit", unit="u-1"), demand)
    assert unit.status_code == 403
    admin = await fitness(world, tok("admin"), demand)
    assert admin.status_code == 403
    volunteer = await world.volunteer(community)
    missing = await fitness(world, volunteer.token, "dem_nowhere")
    assert missing.status_code == 404
