"""Fatigue limits and who may take risky work (issue 14), against two running units
processes sharing one database, the real RabbitMQ and audit.

Times are Shanghai's (the services' default zone): the shifts sit on one Tuesday well ahead,
so "08:00" below is 08:00 local. Every refusal names the shift it collides with and stores
nothing.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from shared.clock import utcnow
from shared.events.catalogue import CommunityUpdated
from tests.conftest import bearer
from tests.support.events import event_of, publish
from tests.support.processes import ServiceProcess
from tests.units.support import UnitsWorld, problem_slug, tok, wait_until

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Asia/Shanghai")
AUDITOR = tok("auditor")


@dataclass
class Cluster:
    audit: ServiceProcess
    units: tuple[ServiceProcess, ServiceProcess]


@pytest.fixture(scope="module")
def cluster(start_module_service: Callable[..., ServiceProcess]) -> Cluster:
    return Cluster(
        audit=start_module_service("audit"),
        units=(start_module_service("units"), start_module_service("units")),
    )


@pytest.fixture
async def world(cluster: Cluster, module_service_env: dict[str, str]) -> AsyncIterator[UnitsWorld]:
    async with UnitsWorld.opened(cluster.units[0].url, module_service_env, timeout=60) as world:
        yield world


def tuesday() -> datetime:
    """00:00 local of a Tuesday three weeks ahead: a week of its own for every test."""
    now = utcnow().astimezone(ZONE)
    return (now + timedelta(days=21 - now.weekday() + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


async def shift(
    world: UnitsWorld, community: str, day: datetime, start: float, end: float, **data: Any
) -> str:
    starts = day + timedelta(hours=start)
    return await world.demand(
        community, starts_at=starts, ends_at=day + timedelta(hours=end), **data
    )


async def refused(world: UnitsWorld, token: str, demand: str, slug: str) -> dict[str, Any]:
    """Claim and expect the refusal `slug`, with nothing stored or queued for it."""
    await world.outbox_flushed()
    before = await world.counts()
    response = await world.claim(token, demand)
    assert response.status_code == 409, response.text
    assert problem_slug(response) == slug
    assert await world.counts() == before
    body: dict[str, Any] = response.json()
    return body


def names(body: dict[str, Any], demand: str, day: datetime, start: float, end: float) -> None:
    """The problem names the colliding shift: in the detail and as `collides_with`."""
    collides = body["collides_with"]
    assert collides["demand_id"] == demand
    assert datetime.fromisoformat(collides["starts_at"]) == day + timedelta(hours=start)
    assert datetime.fromisoformat(collides["ends_at"]) == day + timedelta(hours=end)
    assert demand in body["detail"]


# --- fatigue ---------------------------------------------------------------------------------


async def test_the_daily_cap_counts_any_24_hours(world: UnitsWorld) -> None:
    community = await world.community(max_hours_per_day=8)
    day = tuesday()
    morning = await shift(world, community, day, 8, 13)
    afternoon = await shift(world, community, day, 13.5, 17.5)  # one working period
    next_day = await shift(world, community, day + timedelta(days=1), 13, 17)
    volunteer = await world.volunteer(community)
    assert (await world.claim(volunteer.token, morning)).status_code == 201
    body = await refused(world, volunteer.token, afternoon, "daily-hours-exceeded")
    names(body, morning, day, 8, 13)
    assert body["hours"] == 9
    assert body["max_hours_per_day"] == 8
    assert (await world.claim(volunteer.token, next_day)).status_code == 201


async def test_night_hours_count_one_and_a_half(world: UnitsWorld) -> None:
    community = await world.community()
    day = tuesday()
    night = await shift(world, community, day, 22, 30)  # 8 hours, 12 by the caps
    daytime = await shift(world, community, day + timedelta(days=2), 8, 16)
    volunteer = await world.volunteer(community)
    body = await refused(world, volunteer.token, night, "daily-hours-exceeded")
    assert body["collides_with"] is None  # too long by itself
    assert body["hours"] == 12
    assert (await world.claim(volunteer.token, daytime)).status_code == 201


async def test_rest_between_two_working_periods(world: UnitsWorld) -> None:
    community = await world.community()
    day = tuesday()
    morning = await shift(world, community, day, 8, 12)
    evening = await shift(world, community, day, 19, 22)  # 7 hours' rest, under 11
    rested = await shift(world, community, day, 23, 25)  # 11 hours after 12:00
    volunteer = await world.volunteer(community)
    assert (await world.claim(volunteer.token, morning)).status_code == 201
    body = await refused(world, volunteer.token, evening, "rest-too-short")
    names(body, morning, day, 8, 12)
    assert body["rest_hours"] == 7
    assert (await world.claim(volunteer.token, rested)).status_code == 201


async def test_too_many_consecutive_days(world: UnitsWorld) -> None:
    community = await world.community(max_consecutive_days=3)
    day = tuesday()
    days = [await shift(world, community, day + timedelta(days=n), 8, 10) for n in range(4)]
    volunteer = await world.volunteer(community)
    for demand in days[:3]:
        assert (await world.claim(volunteer.token, demand)).status_code == 201
    body = await refused(world, volunteer.token, days[3], "too-many-consecutive-days")
    names(body, days[0], day, 8, 10)
    assert body["days"] == 4


async def test_a_volunteers_own_limit_overrides_the_communitys(world: UnitsWorld) -> None:
    community = await world.community()
    day = tuesday()
    long_day = await shift(world, community, day, 8, 14)
    volunteer = await world.volunteer(community, max_hours_per_day=5)
    body = await refused(world, volunteer.token, long_day, "daily-hours-exceeded")
    assert body["max_hours_per_day"] == 5
    # The secretary clears the volunteer's own limit: the community's 10 hours apply again.
    patched = await world.http.patch(
        f"{world.url}/v1/volunteers/{volunteer.id}",
        headers=bearer(tok("secretary", community=community)),
        json={"max_hours_per_day": None},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["max_hours_per_day"] is None
    assert (await world.claim(volunteer.token, long_day)).status_code == 201


async def test_two_claims_racing_against_the_daily_cap_never_both_succeed(
    world: UnitsWorld, cluster: Cluster
) -> None:
    """Each volunteer sends two claims at once, one to each units process, on two shifts
    that fit the cap apart and not together: exactly one is accepted, every time."""
    community = await world.community()
    day = tuesday()
    # Places for everyone on both: only the cap stands between a volunteer and both shifts.
    first = await shift(world, community, day, 8, 14, slots=20)
    second = await shift(world, community, day, 14.5, 20.5, slots=20)
    volunteers = [await world.volunteer(community) for _ in range(6)]
    start = asyncio.Event()

    async def claim(index: int, token: str, demand: str) -> httpx.Response:
        await start.wait()
        return await world.claim(token, demand, url=cluster.units[index % 2].url)

    tasks = [
        asyncio.create_task(claim(index, volunteer.token, demand))
        for volunteer in volunteers
        for index, demand in enumerate((first, second))
    ]
    await asyncio.sleep(0)
    start.set()
    responses = await asyncio.gather(*tasks)
    for pair in zip(responses[::2], responses[1::2], strict=True):
        statuses = sorted(response.status_code for response in pair)
        assert statuses == [201, 409], [response.text for response in pair]
        [refusal] = [response for response in pair if response.status_code == 409]
        assert problem_slug(refusal) == "daily-hours-exceeded"
    async with world.database() as db:
        accepted = await db["claims"].count_documents(
            {"demand_id": {"$in": [first, second]}, "status": "accepted"}
        )
    assert accepted == len(volunteers)


# --- who may take risky work ------------------------------------------------------------------


async def test_high_exposure_is_kept_from_the_old_and_the_at_risk(world: UnitsWorld) -> None:
    community = await world.community()
    day = tuesday()
    high = await shift(world, community, day, 8, 12, exposure="high")
    low = await shift(world, community, day + timedelta(days=1), 8, 12)
    sixty = await world.volunteer(community, birth_year=day.year - 60)
    at_risk = await world.volunteer(community, risk_factors=["immunocompromised"])
    fifty_nine = await world.volunteer(community, birth_year=day.year - 59)
    for volunteer in (sixty, at_risk):
        body = await refused(world, volunteer.token, high, "not-eligible")
        assert body["rule"] == "high-exposure"
        assert "60" in body["detail"]
        assert (await world.claim(volunteer.token, low)).status_code == 201
    assert (await world.claim(fifty_nine.token, high)).status_code == 201


async def test_a_volunteer_declares_their_own_risk(world: UnitsWorld) -> None:
    community = await world.community()
    high = await shift(world, community, tuesday(), 8, 12, exposure="high")
    volunteer = await world.volunteer(community)
    mine = bearer(volunteer.token)
    declared = await world.http.patch(
        f"{world.url}/v1/volunteers/{volunteer.id}",
        headers=mine,
        json={"risk_factors": ["pregnancy"]},
    )
    assert declared.status_code == 200, declared.text
    assert declared.json()["risk_factors"] == ["pregnancy"]
    # Their own skills or limits are the secretary's to correct, not theirs.
    other = await world.http.patch(
        f"{world.url}/v1/volunteers/{volunteer.id}", headers=mine, json={"skills": ["x"]}
    )
    assert other.status_code == 403
    await refused(world, volunteer.token, high, "not-eligible")


async def audited(world: UnitsWorld, cluster: Cluster, demand: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        response = await world.http.get(
            f"{cluster.audit.url}/v1/events",
            params={"type": "claim.eligibility_overridden", "subject": demand},
            headers=bearer(AUDITOR),
        )
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    return await wait_until(read, lambda items: len(items) >= 1, timeout=20)


async def test_a_secretary_grants_one_claim_past_the_rule_in_the_audit_log(
    world: UnitsWorld, cluster: Cluster
) -> None:
    community = await world.community()
    high = await shift(world, community, tuesday(), 8, 12, exposure="high")
    volunteer = await world.volunteer(community, birth_year=1950, risk_factors=["chronic_illness"])
    url = f"{world.url}/v1/demands/{high}/eligibility-overrides"
    grant = {"volunteer_id": volunteer.id, "reason": "retired doctor, asked to lead triage"}
    secretary = tok("secretary", community=community, sub="sec-zhang")
    for who in (
        tok("secretary", community=f"c-{uuid.uuid4().hex[:8]}"),
        volunteer.token,
    ):
        response = await world.http.post(url, headers=bearer(who), json=grant)
        assert response.status_code == 403, response.text
    empty = await world.http.post(
        url, headers=bearer(secretary), json={"volunteer_id": volunteer.id, "reason": ""}
    )
    assert empty.status_code == 422
    granted = await world.http.post(url, headers=bearer(secretary), json=grant)
    assert granted.status_code == 201, granted.text
    assert granted.json()["rule"] == "high-exposure"

    [item] = await audited(world, cluster, high)
    event = item["event"]
    assert event["actor"] == "sec-zhang"
    assert event["data"] == {
        "demand_id": high,
        "community_id": community,
        "volunteer_id": volunteer.id,
        "rule": "high-exposure",
        "reason": grant["reason"],
        "granted_by": "sec-zhang",
    }

    # The grant lets one claim through, and that claim consumes it.
    claimed = await world.claim(volunteer.token, high)
    assert claimed.status_code == 201, claimed.text
    withdrawn = await world.act(volunteer.token, claimed.json()["id"], "withdraw", {})
    assert withdrawn.status_code == 200, withdrawn.text
    await refused(world, volunteer.token, high, "not-eligible")


async def test_an_override_for_an_unknown_demand_or_volunteer_is_404(world: UnitsWorld) -> None:
    community = await world.community()
    high = await shift(world, community, tuesday(), 8, 12, exposure="high")
    secretary = bearer(tok("secretary", community=community))
    missing_demand = await world.http.post(
        f"{world.url}/v1/demands/dem_nope/eligibility-overrides",
        headers=secretary,
        json={"volunteer_id": "vol_nope", "reason": "r"},
    )
    assert missing_demand.status_code == 404
    missing_volunteer = await world.http.post(
        f"{world.url}/v1/demands/{high}/eligibility-overrides",
        headers=secretary,
        json={"volunteer_id": "vol_nope", "reason": "r"},
    )
    assert missing_volunteer.status_code == 404


async def test_a_change_of_the_communitys_limits_applies_to_later_claims(
    world: UnitsWorld,
) -> None:
    community = await world.community()
    day = tuesday()
    eight = await shift(world, community, day, 8, 16)
    later = await shift(world, community, day + timedelta(days=2), 8, 16)
    volunteer = await world.volunteer(community)
    assert (await world.claim(volunteer.token, eight)).status_code == 201

    async def limits(version: int, hours: float) -> str:
        data = CommunityUpdated(
            community_id=community,
            version=version,
            max_hours_per_day=hours,
            min_rest_hours=11,
            max_consecutive_days=6,
        )
        event = event_of(data, subject=community)
        await publish(world.rabbitmq_url, event)
        return event.id

    async def applied(event_id: str) -> bool:
        async with world.database() as db:
            count: int = await db["processed_events"].count_documents({"event_id": event_id})
        return count == 1

    async def stored_cap() -> float:
        async with world.database() as db:
            document = await db["communities"].find_one({"_id": community})
        assert document is not None
        return float(document["max_hours_per_day"])

    await limits(3, 6)
    assert await wait_until(stored_cap, lambda cap: cap == 6) == 6
    stale = await limits(2, 12)  # an older change arriving late: ignored
    assert await wait_until(lambda: applied(stale), bool)
    await refused(world, volunteer.token, later, "daily-hours-exceeded")
    assert await stored_cap() == 6


async def test_health_data_is_read_only_by_the_volunteer_and_their_secretary(
    world: UnitsWorld,
) -> None:
    community = await world.community()
    volunteer = await world.volunteer(community, birth_year=1950, risk_factors=["chronic_illness"])
    url = f"{world.url}/v1/volunteers/{volunteer.id}"
    for reader in (volunteer.token, tok("secretary", community=community)):
        shown = (await world.http.get(url, headers=bearer(reader))).json()
        assert (shown["birth_year"], shown["risk_factors"]) == (1950, ["chronic_illness"])
    for reader in (AUDITOR, tok("admin")):
        response = await world.http.get(url, headers=bearer(reader))
        assert response.status_code == 200, response.text
        # The record, without what only the override decision needs.
        assert (response.json()["birth_year"], response.json()["risk_factors"]) == (None, [])
