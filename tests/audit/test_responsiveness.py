"""The report's numbers against a hand-computed fixture (see tests/audit/scenario.py).

Worked by hand, rule set responsiveness/1 (speed: 1 at <= 600 s, 0 at >= 14,400 s, linear):

by=community
  c-north: d1, d2. Claims k1 k2 (d1), k3 k4 (d2) = 4. First claim: d1 300 s, d2 1,800 s:
    median 1,050, p90 (nearest rank 2 of 2) 1,800. Fill: d1 min(2+2, 4) = 4 (a no-show
    still held its slots), d2 min(0 + 1, 2) = 1 (k3 withdrawn): 5 / 6 = 0.8333.
    Attendance: checked in k1, k4; no-show k2: 2 / 3 = 0.6667. Completion 2 / 2 = 1.
    Person-times 2 + 1 = 3, hours 4 + 3 = 7.
    Score: speed 1 - 450/13,800 = 0.96739; 30(0.96739) + 30(0.83333) + 25(0.66667) + 15(1)
    = 29.0217 + 25 + 16.6667 + 15 = 85.6884 -> 85.7, rank 1.
  c-south: d3, d4 (d5 is after the period). Claims k5 = 1. First claim d3 3,600 s (median and
    p90). Fill: d3 1/1, d4 0/3: 1 / 4 = 0.25. Attendance 1 / 1, completion 1 / 1.
    Person-times 1, hours 2. Score: speed 1 - 3,000/13,800 = 0.78261;
    23.4783 + 7.5 + 25 + 15 = 70.9783 -> 71.0, rank 2.
by=unit (volunteers are not units)
  u-a: d1 (k1), d2 (k3, withdrawn): 2 demands, 2 claims. First claims 300, 1,800: median 1,050,
    p90 1,800. Fill: d1 2 of 4, d2 0 of 2: 2 / 6 = 0.3333. Attendance 1/1, completion 1/1.
    Person-times 2, hours 4. Score 29.0217 + 10 + 25 + 15 = 79.0217 -> 79.0, rank 1.
  u-b: d1 (k2, no-show), d3 (k5): 2 and 2. First claims 1,200, 3,600: median 2,400, p90 3,600.
    Fill: d1 2 of 4, d3 1 of 1: 3 / 5 = 0.6. Attendance 1 / 2 = 0.5, completion 1 / 1.
    Person-times 1, hours 2. Score: speed 1 - 1,800/13,800 = 0.86957;
    26.0870 + 18 + 12.5 + 15 = 71.5870 -> 71.6, rank 2.
by=volunteer
  v-1: d2: 1 and 1. First claim 7,200 s. Fill 1 / 2. Attendance 1, completion 1.
    Score: speed 1 - 6,600/13,800 = 0.52174; 15.6522 + 15 + 25 + 15 = 70.6522 -> 70.7.
"""

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.audit.domain.demand_state import ClaimState, DemandState, apply
from services.audit.domain.responsiveness import (
    Tallies,
    jain_index,
    median,
    night_hours_within,
    night_person_hours,
    p90,
    report_rows,
    score,
    speed_component,
    whistled_between,
)
from tests.audit.scenario import BEIJING, PERIOD_FROM, PERIOD_TO, T0, scenario

pytestmark = pytest.mark.unit

EXPECTED: dict[str, list[dict[str, Any]]] = {
    "community": [
        {
            "rank": 1,
            "key": "c-north",
            "demands": 2,
            "claims": 4,
            "median_first_claim_s": 1050.0,
            "p90_first_claim_s": 1800.0,
            "fill_rate": 0.8333,
            "attendance_rate": 0.6667,
            "no_shows": 1,
            "completion_rate": 1.0,
            "person_times": 3,
            "hours": 7.0,
            "night_hours": 0.0,
            "score": 85.7,
        },
        {
            "rank": 2,
            "key": "c-south",
            "demands": 2,
            "claims": 1,
            "median_first_claim_s": 3600.0,
            "p90_first_claim_s": 3600.0,
            "fill_rate": 0.25,
            "attendance_rate": 1.0,
            "no_shows": 0,
            "completion_rate": 1.0,
            "person_times": 1,
            "hours": 2.0,
            "night_hours": 0.0,
            "score": 71.0,
        },
    ],
    "unit": [
        {
            "rank": 1,
            "key": "u-a",
            "demands": 2,
            "claims": 2,
            "median_first_claim_s": 1050.0,
            "p90_first_claim_s": 1800.0,
            "fill_rate": 0.3333,
            "attendance_rate": 1.0,
            "no_shows": 0,
            "completion_rate": 1.0,
            "person_times": 2,
            "hours": 4.0,
            "night_hours": 0.0,
            "score": 79.0,
        },
        {
            "rank": 2,
            "key": "u-b",
            "demands": 2,
            "claims": 2,
            "median_first_claim_s": 2400.0,
            "p90_first_claim_s": 3600.0,
            "fill_rate": 0.6,
            "attendance_rate": 0.5,
            "no_shows": 1,
            "completion_rate": 1.0,
            "person_times": 1,
            "hours": 2.0,
            "night_hours": 0.0,
            "score": 71.6,
        },
    ],
    "volunteer": [
        {
            "rank": 1,
            "key": "v-1",
            "demands": 1,
            "claims": 1,
            "median_first_claim_s": 7200.0,
            "p90_first_claim_s": 7200.0,
            "fill_rate": 0.5,
            "attendance_rate": 1.0,
            "no_shows": 0,
            "completion_rate": 1.0,
            "person_times": 1,
            "hours": 3.0,
            "night_hours": 0.0,
            "score": 70.7,
        },
    ],
}


def folded_period() -> list[DemandState]:
    states: dict[str, DemandState | None] = {}
    for event in scenario().events:
        wire = event.wire()
        demand_id = wire["data"].get("demand_id")
        if demand_id:
            states[demand_id] = apply(states.get(demand_id), wire, demand_id)
    return [
        s for s in states.values() if s is not None and whistled_between(s, PERIOD_FROM, PERIOD_TO)
    ]


@pytest.mark.parametrize("by", ["community", "unit", "volunteer"])
def test_report_matches_the_hand_computed_fixture(by: str) -> None:
    rows = [row.as_dict() for row in report_rows(folded_period(), by)]  # type: ignore[arg-type]
    assert rows == EXPECTED[by]


def test_period_is_half_open_and_compares_instants() -> None:
    keys = {s.demand_id for s in folded_period()}
    assert keys == {"d1", "d2", "d3", "d4"}
    first = next(s for s in folded_period() if s.demand_id == "d1")
    assert whistled_between(first, T0, T0 + timedelta(seconds=1))
    assert not whistled_between(first, T0 - timedelta(hours=1), T0)


def test_median_and_nearest_rank_p90() -> None:
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert p90([]) is None
    assert p90([float(n) for n in range(1, 11)]) == 9.0
    assert p90([float(n) for n in range(1, 12)]) == 10.0
    assert p90([5.0]) == 5.0


def test_speed_is_linear_between_ten_minutes_and_four_hours() -> None:
    assert speed_component(None) is None
    assert speed_component(0) == 1.0
    assert speed_component(600) == 1.0
    assert speed_component(7500) == pytest.approx(0.5)
    assert speed_component(14_400) == 0.0
    assert speed_component(100_000) == 0.0


def test_score_renormalises_over_components_with_a_value() -> None:
    assert score({"speed": None, "fill": None, "attendance": None, "completion": None}) == 0.0
    # fill 1.0 (weight 30) and attendance 0.0 (weight 25): 100 * 30 / 55.
    assert score({"speed": None, "fill": 1.0, "attendance": 0.0, "completion": None}) == 54.5


def test_equal_scores_share_a_rank_and_list_by_key() -> None:
    history = scenario()
    states: dict[str, DemandState | None] = {}
    for event in history.events:
        wire = event.wire()
        demand_id = wire["data"].get("demand_id")
        if demand_id in ("d3", "d4"):
            states[demand_id] = apply(states.get(demand_id), wire, demand_id)
    # Two communities with the same demands and claims score alike.
    twin = [
        DemandState(**{**s.__dict__, "community_id": "c-east"})
        for s in states.values()
        if s is not None
    ]
    rows = report_rows([*(s for s in states.values() if s is not None), *twin], "community")
    assert [(r.rank, r.key) for r in rows] == [(1, "c-east"), (1, "c-south")]


# --- fairness: night hours and Jain's index ---------------------------------------------------

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_the_fixtures_load_is_shared_as_computed_by_hand() -> None:
    tallies = Tallies("community")
    tallies.add(folded_period())
    assert tallies.fairness() == {
        "unit": {"index": 0.9, "claimants": 2, "hours": 6.0},
        "volunteer": {"index": 1.0, "claimants": 1, "hours": 3.0},
    }


def test_jain_index_is_one_when_shared_evenly_and_one_in_n_when_one_carries_all() -> None:
    assert jain_index([3.0, 3.0, 3.0, 3.0]) == 1.0
    assert jain_index([10.0] + [0.0] * 9) == 0.1
    assert jain_index([5.0, 0.0]) == 0.5
    assert jain_index([4.0, 2.0]) == 0.9  # 36 / (2 x 20)
    assert jain_index([8.0, 4.0, 4.0, 0.0]) == 256 / (4 * 96)  # 0.6667
    assert jain_index([]) is None
    assert jain_index([0.0, 0.0]) is None  # nobody served: no load to share


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=BEIJING)


def test_night_hours_are_those_between_22_and_6_local() -> None:
    assert night_hours_within(local(1, 20), local(2, 2), SHANGHAI) == 4.0
    assert night_hours_within(local(2, 5), local(2, 7), SHANGHAI) == 1.0
    assert night_hours_within(local(1, 8), local(1, 18), SHANGHAI) == 0.0
    assert night_hours_within(local(1, 21, 30), local(3, 6, 30), SHANGHAI) == 16.0  # 2 nights
    # The same instants in UTC; and in another zone the night is elsewhere.
    assert night_hours_within(local(1, 20).astimezone(UTC), local(2, 2), SHANGHAI) == 4.0
    assert night_hours_within(local(1, 20), local(2, 2), ZoneInfo("UTC")) == 0.0
    assert night_hours_within(local(2, 2), local(1, 20), SHANGHAI) == 0.0


def _night_shift(headcount: int, checked_in: datetime | None, completed: datetime) -> float:
    demand = DemandState(demand_id="d", starts_at=local(1, 21), ends_at=local(1, 23, 30))
    claim = ClaimState(
        claim_id="k",
        claimant_type="volunteer",
        claimant_id="v",
        headcount=headcount,
        status="completed",
        accepted_at=local(1, 9),
        checked_in_at=checked_in,
        completed_at=completed,
    )
    return night_person_hours(demand, claim, SHANGHAI)


def test_night_person_hours_count_the_duty_units_counted_times_headcount() -> None:
    # On duty 21:30-23:00, of which 22:00-23:00 at night, two people: 2 person-hours.
    assert _night_shift(2, local(1, 21, 30), local(1, 23)) == 2.0
    # Checked in early, completed late: the shift's own 21:00-23:30 bounds it (1.5 h at night).
    assert _night_shift(1, local(1, 20), local(2, 1)) == 1.5
    # Never checked in (completed anyway): from the shift's start.
    assert _night_shift(1, None, local(1, 22, 30)) == 0.5


def _claim(claimant: str, hours: float, status: str = "completed") -> ClaimState:
    return ClaimState(
        claim_id=f"k-{claimant}",
        claimant_type="volunteer" if claimant.startswith("v") else "unit",
        claimant_id=claimant,
        headcount=1,
        status=status,  # type: ignore[arg-type]
        accepted_at=T0,
        hours=hours,
    )


def test_one_volunteer_carrying_all_of_ten_gives_a_tenth() -> None:
    claims = [_claim("v-0", 30.0), *(_claim(f"v-{n}", 0.0, "accepted") for n in range(1, 10))]
    demand = DemandState(
        demand_id="d",
        community_id="c",
        published=True,
        whistle_at=T0,
        slots=10,
        claims={claim.claim_id: claim for claim in claims},
    )
    tallies = Tallies("volunteer")
    tallies.add([demand])
    assert tallies.fairness()["volunteer"] == {"index": 0.1, "claimants": 10, "hours": 30.0}
    assert tallies.fairness()["unit"] == {"index": None, "claimants": 0, "hours": 0.0}
