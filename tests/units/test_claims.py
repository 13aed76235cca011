"""Claims against a running units service, the real RabbitMQ and the Mongo wire server.

Dispatch's side arrives as events published into the module's vhost; what units publishes is
collected from the exchange. Every refusal is checked to store no claim and put nothing in the
outbox (so nothing is ever published for it).
"""

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.clock import utcnow
from shared.events.catalogue import DemandEscalated
from tests.conftest import bearer
from tests.support.events import EventCollector, collect, event_of, publish
from tests.units.support import (
    ADMIN,
    UnitsWorld,
    distinct,
    problem_slug,
    tok,
    wait_distinct,
    wait_until,
)

pytestmark = pytest.mark.e2e


@asynccontextmanager
async def refused_without_trace(world: UnitsWorld) -> AsyncIterator[EventCollector]:
    """The block's refusals must leave no claim stored and publish no claim event."""
    await world.outbox_flushed()  # what happened before the block is out before we listen
    before = await world.counts()
    async with collect(world.rabbitmq_url, "claim.*", "demand.filled", "demand.reopened") as seen:
        yield seen
        await seen.settle(0.4)
        assert seen.events == []
    assert await world.counts() == before


def claim_id(response: httpx.Response) -> str:
    assert response.status_code in (201, 202), response.text
    identifier: str = response.json()["id"]
    return identifier


# --- the registry ----------------------------------------------------------------------------


async def test_registry_publishes_and_guards_who_registers(world: UnitsWorld) -> None:
    community = await world.community()
    async with collect(world.rabbitmq_url, "unit.registered", "volunteer.registered") as seen:
        unit = await world.unit([community], skills=("First Aid",))
        volunteer = await world.volunteer(community, skills=("checkpoint",), max_hours=12)
        [unit_event] = await wait_distinct(seen, "unit.registered")
        [volunteer_event] = await wait_distinct(seen, "volunteer.registered")
    assert unit_event["subject"] == unit.id
    assert unit_event["data"]["skills"] == ["first aid"]
    assert volunteer_event["subject"] == volunteer.id
    assert volunteer_event["data"]["max_hours_per_week"] == 12

    body = {"name": "Wang", "community_id": community, "skills": []}
    other_secretary = bearer(tok("secretary", community="c-elsewhere"))
    response = await world.http.post(
        f"{world.url}/v1/volunteers", json=body, headers=other_secretary
    )
    assert response.status_code == 403, response.text
    as_volunteer = bearer(volunteer.token)
    response = await world.http.post(f"{world.url}/v1/volunteers", json=body, headers=as_volunteer)
    assert response.status_code == 403
    unknown = {**body, "community_id": "c-nowhere"}
    response = await world.http.post(
        f"{world.url}/v1/volunteers", json=unknown, headers=bearer(ADMIN)
    )
    assert response.status_code == 422
    assert problem_slug(response) == "unknown-community"
    unit_body = {"name": "X", "kind": "school", "communities": [community]}
    response = await world.http.post(
        f"{world.url}/v1/units",
        json=unit_body,
        headers=bearer(tok("secretary", community=community)),
    )
    assert response.status_code == 403
    response = await world.http.post(
        f"{world.url}/v1/units", json={**unit_body, "kind": "spaceship"}, headers=bearer(ADMIN)
    )
    assert response.status_code == 422
    assert problem_slug(response) == "validation-error"


# --- open demands ----------------------------------------------------------------------------


async def test_open_demands_most_urgent_first_and_only_what_the_claimant_may_claim(
    world: UnitsWorld,
) -> None:
    community = await world.community()
    elsewhere = await world.community(street="s-2")
    soon = utcnow() + timedelta(days=2)
    routine = await world.demand(community, priority="routine", starts_at=soon)
    urgent_late = await world.demand(
        community, priority="urgent", starts_at=soon + timedelta(hours=5)
    )
    urgent_early = await world.demand(community, priority="urgent", starts_at=soon)
    critical = await world.demand(
        community, priority="critical", skills=("driving",), starts_at=soon
    )
    other = await world.demand(elsewhere, priority="critical", starts_at=soon)
    volunteer = await world.volunteer(community)

    response = await world.http.get(
        f"{world.url}/v1/open-demands", params={"community_id": community}, headers=bearer(ADMIN)
    )
    assert response.status_code == 200, response.text
    ids = [item["id"] for item in response.json()["items"]]
    assert ids == [critical, urgent_early, urgent_late, routine]

    response = await world.http.get(f"{world.url}/v1/open-demands", headers=bearer(volunteer.token))
    seen = [item["id"] for item in response.json()["items"]]
    assert critical not in seen
    assert other not in seen
    assert {routine, urgent_early, urgent_late} <= set(seen)

    assert (await world.claim(volunteer.token, routine)).status_code == 201
    response = await world.http.get(f"{world.url}/v1/open-demands", headers=bearer(volunteer.token))
    assert routine not in [item["id"] for item in response.json()["items"]]  # claimed already

    response = await world.http.get(
        f"{world.url}/v1/open-demands", params={"skill": "Driving"}, headers=bearer(ADMIN)
    )
    assert [item["id"] for item in response.json()["items"]] == [critical]


# --- claiming ----------------------------------------------------------------------------------


async def test_a_claim_is_accepted_and_published_once_per_claimant(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, slots=5, skills=("checkpoint",))
    volunteer = await world.volunteer(community, skills=("Checkpoint",))
    unit = await world.unit([community], skills=("checkpoint", "first aid"))
    async with collect(world.rabbitmq_url, "claim.*") as seen:
        response = await world.claim(volunteer.token, demand, headcount=1)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["claimant"] == {"type": "volunteer", "id": volunteer.id}
        assert body["status"] == "accepted"
        assert body["demand_id"] == demand
        assert response.headers["location"] == f"/v1/claims/{body['id']}"
        unit_claim = await world.claim(unit.token, demand, headcount=3, members=["Zhang", "Liu"])
        assert unit_claim.status_code == 201, unit_claim.text
        accepted = await wait_distinct(seen, "claim.accepted", 2)
    first = accepted[0]
    assert first["subject"] == demand
    assert first["correlationid"] == demand
    assert first["source"] == "/whistle/units"
    assert first["data"]["claim_id"] == body["id"]
    assert (first["data"]["filled"], first["data"]["slots"]) == (1, 5)
    assert accepted[1]["data"]["filled"] == 4
    # The members' names stay in units (issue 10): the event says how many, and a digest.
    assert "members" not in accepted[1]["data"]
    assert accepted[1]["data"]["members_named"] == 2
    assert accepted[1]["data"]["members_digest"].startswith("hmac-sha256:")
    assert "Zhang" not in json.dumps(accepted[1])

    async with refused_without_trace(world):
        again = await world.claim(volunteer.token, demand)
        assert again.status_code == 409
        assert problem_slug(again) == "already-claimed"
        too_many = await world.claim(volunteer.token, demand, headcount=2)
        assert too_many.status_code == 422
        missing = await world.claim(ADMIN, demand)
        assert missing.status_code == 403
        unknown = await world.claim(volunteer.token, "dem_nope")
        assert unknown.status_code == 404


async def test_an_idempotency_key_replays_the_first_claim(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, slots=3)
    volunteer = await world.volunteer(community)
    headers = {**bearer(volunteer.token), "Idempotency-Key": "tap-twice"}
    url = f"{world.url}/v1/demands/{demand}/claims"
    first = await world.http.post(url, json={"headcount": 1}, headers=headers)
    second = await world.http.post(url, json={"headcount": 1}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json()["id"] == first.json()["id"]
    assert second.headers["idempotent-replayed"] == "true"
    assert (await world.demand_document(demand))["accepted"] == 1


async def test_skills_missing_is_refused_without_trace(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, skills=("first aid", "driving"))
    volunteer = await world.volunteer(community, skills=("first aid",))
    unit = await world.unit([community], skills=("driving",))
    async with refused_without_trace(world):
        for token in (volunteer.token, unit.token):
            response = await world.claim(token, demand)
            assert response.status_code == 422
            assert problem_slug(response) == "skills-missing"
            assert (
                "driving" in response.json()["detail"] or "first aid" in response.json()["detail"]
            )
    assert (await world.demand_document(demand))["accepted"] == 0


async def test_a_volunteer_cannot_take_overlapping_shifts(world: UnitsWorld) -> None:
    community = await world.community()
    start = utcnow() + timedelta(days=4)
    morning = await world.demand(community, starts_at=start, hours=4)
    overlapping = await world.demand(community, starts_at=start + timedelta(hours=3), hours=4)
    back_to_back = await world.demand(community, starts_at=start + timedelta(hours=4), hours=2)
    volunteer = await world.volunteer(community)
    assert (await world.claim(volunteer.token, morning)).status_code == 201
    async with refused_without_trace(world):
        response = await world.claim(volunteer.token, overlapping)
        assert response.status_code == 409
        assert problem_slug(response) == "overlapping-shift"
        waiting = await world.claim(volunteer.token, overlapping, waitlist=True)
        assert waiting.status_code == 409
        assert problem_slug(waiting) == "overlapping-shift"
    assert (await world.claim(volunteer.token, back_to_back)).status_code == 201


async def test_the_weekly_cap_refuses_a_shift_past_the_volunteers_hours(world: UnitsWorld) -> None:
    community = await world.community()
    # A Tuesday well ahead, at 08:00 in Shanghai: both shifts fall in one ISO week.
    now = utcnow()
    tuesday = (now + timedelta(days=14 - now.weekday() + 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    long_shift = await world.demand(community, starts_at=tuesday, hours=8)
    next_day = await world.demand(community, starts_at=tuesday + timedelta(days=1), hours=4)
    short = await world.demand(community, starts_at=tuesday + timedelta(days=2), hours=2)
    volunteer = await world.volunteer(community, max_hours=10)
    assert (await world.claim(volunteer.token, long_shift)).status_code == 201
    async with refused_without_trace(world):
        response = await world.claim(volunteer.token, next_day)
        assert response.status_code == 409
        assert problem_slug(response) == "hours-exceeded"
        assert "12 hours" in response.json()["detail"]
    assert (await world.claim(volunteer.token, short)).status_code == 201  # exactly 10 hours


async def test_full_waitlisted_promoted_on_withdrawal_then_reopened(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, slots=3)
    first, second, third, fourth = [await world.volunteer(community) for _ in range(4)]
    big_unit = await world.unit([community])
    async with collect(world.rabbitmq_url, "claim.*", "demand.*") as seen:
        a = claim_id(await world.claim(first.token, demand))
        claim_id(await world.claim(second.token, demand))
        claim_id(await world.claim(third.token, demand))
        [filled] = await wait_distinct(seen, "demand.filled")
        assert filled["data"] == {
            "demand_id": demand,
            "community_id": community,
            "filled": 3,
            "slots": 3,
        }

        async with refused_without_trace(world):
            full = await world.claim(fourth.token, demand)
            assert full.status_code == 409
            assert problem_slug(full) == "demand-full"
        # The unit's 2 people wait first, the volunteer after: one place frees, only the
        # volunteer fits, so the volunteer is promoted past the unit.
        unit_wait = await world.claim(big_unit.token, demand, headcount=2, waitlist=True)
        assert unit_wait.status_code == 202
        assert unit_wait.json()["status"] == "waitlisted"
        waiting = await world.claim(fourth.token, demand, waitlist=True)
        assert waiting.status_code == 202, waiting.text
        d = claim_id(waiting)
        await seen.wait_for("claim.waitlisted", 2)

        withdrawn = await world.act(first.token, a, "withdraw", {})
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "withdrawn"
        [promoted] = await wait_distinct(seen, "claim.promoted")
        assert promoted["data"]["claim_id"] == d
        assert (promoted["data"]["filled"], promoted["data"]["slots"]) == (3, 3)
        [withdrawal] = distinct(seen.of_type("claim.withdrawn"))
        assert withdrawal["data"]["was_accepted"]
        assert withdrawal["data"]["filled"] == 2
        types = [event["type"] for event in seen.events]
        assert types.index("claim.withdrawn") < types.index("claim.promoted")
        assert (await world.get_claim(d))["status"] == "accepted"

        # Withdrawing a waitlisted claim gives nothing back.
        unit_claim = claim_id(unit_wait)
        assert (await world.act(big_unit.token, unit_claim, "withdraw")).status_code == 200
        # A second place frees with nobody waiting: the demand is open again.
        assert (await world.act(fourth.token, d, "withdraw")).status_code == 200
        [reopened] = await wait_distinct(seen, "demand.reopened")
        assert reopened["data"]["filled"] == 2
        await seen.settle(0.3)
    assert len(distinct(seen.of_type("demand.filled"))) == 1
    assert (await world.demand_document(demand))["accepted"] == 2
    assert (await world.act(first.token, a, "withdraw")).status_code == 409
    metrics = (await world.http.get(f"{world.url}/metrics")).text
    assert 'whistle_units_claims_total{outcome="demand-full"}' in metrics
    assert 'whistle_units_claims_total{outcome="waitlisted"}' in metrics


async def test_withdrawing_in_the_last_hour_needs_a_reason(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, starts_at=utcnow() + timedelta(minutes=40))
    volunteer = await world.volunteer(community)
    other = await world.volunteer(community)
    claim = claim_id(await world.claim(volunteer.token, demand))
    async with refused_without_trace(world):
        response = await world.act(volunteer.token, claim, "withdraw", {})
        assert response.status_code == 422
        assert problem_slug(response) == "reason-required"
        response = await world.act(other.token, claim, "withdraw", {"reason": "not mine"})
        assert response.status_code == 403
    async with collect(world.rabbitmq_url, "claim.withdrawn") as seen:
        response = await world.act(volunteer.token, claim, "withdraw", {"reason": "fever"})
        assert response.status_code == 200
        assert response.json()["reason"] == "fever"
        [event] = await wait_distinct(seen, "claim.withdrawn")
    assert event["data"]["reason"] == "fever"


async def test_a_claimant_claims_the_same_demand_at_most_three_times(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, starts_at=utcnow() + timedelta(hours=5))
    volunteer = await world.volunteer(community)
    for _ in range(3):
        claim = claim_id(await world.claim(volunteer.token, demand))
        withdrawn = await world.act(volunteer.token, claim, "withdraw", {"reason": "cycle"})
        assert withdrawn.status_code == 200, withdrawn.text
    async with refused_without_trace(world):
        response = await world.claim(volunteer.token, demand)
        assert response.status_code == 409
        assert problem_slug(response) == "too-many-claims"
        assert response.headers["content-type"].startswith("application/problem+json")
    other = await world.volunteer(community)  # the bound is per claimant, not per demand
    claim_id(await world.claim(other.token, demand))


# --- on site -----------------------------------------------------------------------------------


async def test_check_in_needs_the_current_code_inside_the_window(world: UnitsWorld) -> None:
    community = await world.community()
    secretary = tok("secretary", community=community)
    now = utcnow()
    soon = await world.demand(community, starts_at=now + timedelta(minutes=30), hours=1)
    later = await world.demand(community, starts_at=now + timedelta(hours=3))
    # Two shifts 1.5 hours apart: this test is about check-in, not the rest between them.
    volunteer = await world.volunteer(community, min_rest_hours=0)
    unit = await world.unit([community])
    claim = claim_id(await world.claim(volunteer.token, soon))
    early = claim_id(await world.claim(volunteer.token, later))
    unit_claim = claim_id(await world.claim(unit.token, soon, headcount=2))

    assert (await world.code_response(soon, volunteer.token)).status_code == 403
    assert (
        await world.code_response(soon, tok("secretary", community="c-other"))
    ).status_code == 403
    shown = await world.code_response(soon, secretary)
    assert shown.status_code == 200, shown.text
    old_code = shown.json()["code"]
    rotated = await world.http.post(
        f"{world.url}/v1/demands/{soon}/check-in-code/rotate", headers=bearer(secretary)
    )
    assert rotated.status_code == 200
    code = rotated.json()["code"]
    assert code != old_code
    assert (await world.code_response(soon, secretary)).json()["code"] == code
    later_code = (await world.code_response(later, secretary)).json()["code"]

    async with refused_without_trace(world):
        stale = await world.act(volunteer.token, claim, "check-in", {"code": old_code})
        assert stale.status_code == 422
        assert problem_slug(stale) == "wrong-check-in-code"
        too_early = await world.act(volunteer.token, early, "check-in", {"code": later_code})
        assert too_early.status_code == 409
        assert problem_slug(too_early) == "check-in-closed"
        not_done = await world.act(volunteer.token, claim, "complete", {"report": "done"})
        assert not_done.status_code == 409
        assert problem_slug(not_done) == "invalid-claim-state"

    async with collect(world.rabbitmq_url, "claim.*") as seen:
        response = await world.act(volunteer.token, claim, "check-in", {"code": code.lower()})
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "checked_in"
        [event] = await wait_distinct(seen, "claim.checked_in")
        assert event["subject"] == soon
        assert event["data"]["checked_in_at"]

        twice = await world.act(volunteer.token, claim, "check-in", {"code": code})
        assert twice.status_code == 409

        too_many = {"code": code, "members": ["Zhao", "Qian", "Sun"]}
        refused = await world.act(unit.token, unit_claim, "check-in", too_many)
        assert refused.status_code == 422
        named = {"code": code, "members": ["Zhao", "Qian"]}
        reported = await world.act(unit.token, unit_claim, "check-in", named)
        assert reported.status_code == 200, reported.text
        unit_checked_in = await wait_distinct(seen, "claim.checked_in", 2)
        assert unit_checked_in[1]["data"]["members_named"] == 2
        assert "Zhao" not in json.dumps(unit_checked_in[1])

        done = await world.act(
            volunteer.token, claim, "complete", {"report": "Gate held", "served": 120}
        )
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed"
        [completed] = await wait_distinct(seen, "claim.completed")
    data: dict[str, Any] = completed["data"]
    assert (data["report"], data["served"], data["person_times"]) == ("Gate held", 120, 1)
    assert data["hours"] == 0  # completed before the shift started: no hours on duty yet
    assert (await world.get_claim(claim))["person_times"] == 1
    record = await world.http.get(
        f"{world.url}/v1/volunteers/{volunteer.id}", headers=bearer(volunteer.token)
    )
    assert record.json()["totals"] == {"completed": 1, "person_times": 1, "hours": 0}
    stranger = await world.volunteer(community)
    hidden = await world.http.get(
        f"{world.url}/v1/volunteers/{volunteer.id}", headers=bearer(stranger.token)
    )
    assert hidden.status_code == 403
    again = await world.act(volunteer.token, claim, "complete", {"report": "again"})
    assert again.status_code == 409


async def test_cancelling_a_demand_releases_its_claims(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, slots=1)
    holder = await world.volunteer(community)
    waiter = await world.volunteer(community)
    late = await world.volunteer(community)
    held = claim_id(await world.claim(holder.token, demand))
    waiting = claim_id(await world.claim(waiter.token, demand, waitlist=True))
    async with collect(world.rabbitmq_url, "claim.*") as seen:
        await world.cancel(demand, community, reason="storm warning")
        released = await wait_distinct(seen, "claim.released", 2)
    assert {event["data"]["claim_id"] for event in released} == {held, waiting}
    assert all(event["data"]["reason"] == "storm warning" for event in released)
    assert (await world.get_claim(held))["status"] == "released"
    async with refused_without_trace(world):
        response = await world.claim(late.token, demand)
        assert response.status_code == 409
        assert problem_slug(response) == "demand-closed"
    listed = await world.http.get(
        f"{world.url}/v1/claims", params={"demand_id": demand}, headers=bearer(holder.token)
    )
    assert [item["id"] for item in listed.json()["items"]] == [held]


async def test_escalation_lets_the_street_answer(world: UnitsWorld) -> None:
    community = await world.community(street="s-esc")
    neighbour = await world.community(street="s-esc")
    demand = await world.demand(community, slots=4, street="s-esc")
    unit = await world.unit([neighbour])
    async with refused_without_trace(world):
        response = await world.claim(unit.token, demand, headcount=2)
        assert response.status_code == 403
    data = DemandEscalated(
        demand_id=demand,
        community_id=community,
        from_level="community",
        to_level="street",
        target="s-esc",
        filled=0,
        slots=4,
    )
    await publish(world.rabbitmq_url, event_of(data, subject=demand))
    escalated = await wait_until(
        lambda: world.demand_document(demand), lambda document: document["level"] == "street"
    )
    assert escalated["level"] == "street"
    response = await world.claim(unit.token, demand, headcount=2)
    assert response.status_code == 201, response.text
