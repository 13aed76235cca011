"""bench/district_model.py: the district simulation's traffic follows docs/scale.md's model,
and every demand's story is one the services can play out (no timings)."""

import itertools
import math
import random
import statistics
from collections import defaultdict

import pytest

from bench import scale_model
from bench.district_model import (
    FILL_BY_S,
    Action,
    District,
    TrafficModel,
    arrivals,
    plan,
)

pytestmark = pytest.mark.unit


def test_the_rate_is_the_scale_model_s_hour_by_hour() -> None:
    model = TrafficModel(district=District(communities=300), start_hour=9)
    per_day = 300 * scale_model.DEMANDS_PER_COMMUNITY_PER_DAY
    assert math.isclose(
        model.demands_per_s(0), per_day * scale_model.HOURLY_PERCENT[9] / 100 / 3600
    )
    assert math.isclose(
        model.demands_per_s(3600), per_day * scale_model.HOURLY_PERCENT[10] / 100 / 3600
    )
    # At 10x, the morning peak's events/s are ten times docs/scale.md's district peak hour.
    peak = max(scale_model.hourly_rates(300))
    assert math.isclose(TrafficModel(minutes=6).expected_events_per_s(), peak * 10, rel_tol=1e-9)


def test_a_whole_day_posts_five_demands_per_community() -> None:
    day = TrafficModel(district=District(communities=300), speed=1, start_hour=0, minutes=1440)
    assert math.isclose(day.expected_demands(), 300 * 5)
    counts = [len(arrivals(day, random.Random(seed))) for seed in range(20)]
    assert abs(statistics.mean(counts) - 1500) < 3 * math.sqrt(1500 / 20)


def test_arrivals_are_a_poisson_process_at_the_model_s_rate() -> None:
    model = TrafficModel(minutes=3)
    counts = [len(arrivals(model, random.Random(seed))) for seed in range(200)]
    mean = statistics.mean(counts)
    assert abs(mean - model.expected_demands()) < 4 * math.sqrt(model.expected_demands() / 200)
    assert statistics.variance(counts) == pytest.approx(mean, rel=0.35)  # Poisson: var = mean


def test_the_same_seed_replays_the_same_traffic() -> None:
    assert plan(TrafficModel(seed=7)).actions == plan(TrafficModel(seed=7)).actions
    assert plan(TrafficModel(seed=7)).actions != plan(TrafficModel(seed=8)).actions


def _by_demand(actions: list[Action]) -> dict[int, list[Action]]:
    stories: dict[int, list[Action]] = defaultdict(list)
    for action in actions:
        stories[action.demand].append(action)
    return stories


@pytest.mark.parametrize("seed", range(5))
def test_every_story_is_one_the_services_can_play(seed: int) -> None:
    the_plan = plan(TrafficModel(seed=seed, minutes=5))
    assert the_plan.demands
    assert [a.at for a in the_plan.actions] == sorted(a.at for a in the_plan.actions)
    for index, story in _by_demand(the_plan.actions).items():
        demand = the_plan.demands[index]
        assert story[0].kind == "post"
        assert story[0].at == demand.posted_at
        claims = [a for a in story if a.kind == "claim"]
        # Places asked for by claims not racing never exceed the slots: only a race's
        # second claim may be refused for want of a place.
        assert sum(c.headcount for c in claims if not c.race) <= demand.slots + sum(
            1 for a in story if a.kind == "withdraw"
        )
        claimants = [c.claimant for c in claims]
        assert len(claimants) == len(set(claimants)), "one claim per claimant and demand"
        for claim in claims:
            assert claim.claimant is not None
            if claim.claimant.kind == "volunteer":
                assert claim.claimant.home == demand.community
                assert claim.headcount == 1
            turns = [a for a in story if a.claimant == claim.claimant]
            kinds = [a.kind for a in turns]
            assert kinds[0] == "claim"
            assert kinds.index("check_in") < kinds.index("complete_claim")
            check_in = next(a for a in turns if a.kind == "check_in")
            assert demand.starts_at <= check_in.at <= demand.ends_at
        code = next(a for a in story if a.kind == "code")
        assert code.at < min(a.at for a in story if a.kind == "check_in")
        assert story[-1].kind == "complete_demand"
        assert story[-1].at < demand.ends_at
        assert demand.fill_by <= demand.starts_at


def test_escalating_demands_are_left_alone_until_the_level_that_answers() -> None:
    the_plan = plan(TrafficModel(seed=3, minutes=10))
    district = the_plan.model.district
    stories = _by_demand(the_plan.actions)
    seen = {"street": 0, "district": 0}
    for demand in the_plan.demands:
        if demand.escalates_to == "community":
            continue
        seen[demand.escalates_to] += 1
        [claim] = [a for a in stories[demand.index] if a.kind == "claim"]
        assert claim.at > demand.posted_at + FILL_BY_S
        assert claim.claimant is not None
        assert claim.claimant.kind == "unit"
        assert claim.headcount == demand.slots
        served = district.unit_communities(claim.claimant.home, claim.claimant.number)
        # The unit that answers does not serve the community: only the escalation reaches it.
        assert demand.community not in served
        if demand.escalates_to == "street":
            assert claim.claimant.home == district.street_of(demand.community)
        else:
            assert claim.claimant.home != district.street_of(demand.community)
    assert seen["street"]
    assert seen["district"]


@pytest.mark.parametrize("seed", range(3))
def test_no_volunteer_is_asked_to_hold_two_overlapping_shifts(seed: int) -> None:
    the_plan = plan(TrafficModel(district=District(communities=20), seed=seed, minutes=30))
    shifts: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for action in the_plan.actions:
        if action.kind == "claim" and action.claimant and action.claimant.kind == "volunteer":
            demand = the_plan.demands[action.demand]
            shifts[action.claimant.key].append((demand.starts_at, demand.ends_at))
    assert shifts
    for held in shifts.values():
        held.sort()
        for (_, end), (start, _) in itertools.pairwise(held):
            assert end <= start


def test_each_community_has_a_stationed_unit_in_its_half_of_the_street() -> None:
    district = District(communities=35, communities_per_street=10)
    assert district.streets == 4
    for community in range(35):
        street, half = district.street_of(community), district.half_of(community)
        assert community in district.unit_communities(street, half)
    assert sum(len(district.unit_communities(u.home, u.number)) for u in district.units()) == 35
