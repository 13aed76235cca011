"""Units' domain rules, without I/O."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.units.domain import codes, rules
from services.units.domain.model import Claim, Community, Demand
from shared.events.catalogue import Claimant

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def demand(**overrides: object) -> Demand:
    fields: dict[str, object] = {
        "id": "dem_1",
        "community_id": "c-north",
        "street": "s-1",
        "district": "d-1",
        "kind": "staffing",
        "title": "North gate",
        "skills": ("checkpoint",),
        "slots": 5,
        "starts_at": at("2030-05-01T08:00:00+08:00"),
        "ends_at": at("2030-05-01T20:00:00+08:00"),
        "fill_by": at("2030-05-01T08:00:00+08:00"),
        "priority": "urgent",
    }
    return Demand.model_validate(fields | overrides)


def claim(starts: str, ends: str, *, headcount: int = 1, **overrides: object) -> Claim:
    fields: dict[str, object] = {
        "id": f"clm_{starts}",
        "demand_id": "dem_other",
        "community_id": "c-north",
        "claimant": Claimant(type="volunteer", id="vol_1"),
        "headcount": headcount,
        "status": "accepted",
        "starts_at": at(starts),
        "ends_at": at(ends),
        "created_at": at("2030-04-01T00:00:00+00:00"),
        "created_by": "v",
    }
    return Claim.model_validate(fields | overrides)


NORTH = Community(id="c-north", name="North", street="s-1", district="d-1")
EAST = Community(id="c-east", name="East", street="s-1", district="d-1")
FAR = Community(id="c-far", name="Far", street="s-9", district="d-1")
OTHER_DISTRICT = Community(id="c-x", name="X", street="s-7", district="d-7")


def test_a_community_level_demand_reaches_only_its_own_community() -> None:
    assert rules.reaches(demand(), [NORTH])
    assert not rules.reaches(demand(), [EAST, FAR])


def test_escalation_widens_the_reach_to_the_street_then_the_district() -> None:
    assert rules.reaches(demand(level="street"), [EAST])
    assert not rules.reaches(demand(level="street"), [FAR])
    assert rules.reaches(demand(level="district"), [FAR])
    assert not rules.reaches(demand(level="district"), [OTHER_DISTRICT])


def test_skills_are_compared_normalised() -> None:
    assert rules.missing_skills(["First Aid", "checkpoint"], ["first  aid "]) == ["checkpoint"]
    assert rules.missing_skills(["first aid"], ["First Aid", "driving"]) == []
    assert rules.missing_skills([], []) == []


def test_overlapping_shifts_are_found_and_back_to_back_ones_are_not() -> None:
    window = rules.Window(at("2030-05-01T08:00:00+08:00"), at("2030-05-01T12:00:00+08:00"))
    before = claim("2030-05-01T06:00:00+08:00", "2030-05-01T08:00:00+08:00")
    after = claim("2030-05-01T12:00:00+08:00", "2030-05-01T14:00:00+08:00")
    inside = claim("2030-05-01T09:00:00+08:00", "2030-05-01T10:00:00+08:00")
    assert rules.first_overlap(window, [before, after]) is None
    assert rules.first_overlap(window, [before, inside, after]) == inside


def test_the_weekly_cap_counts_the_iso_week_in_local_time() -> None:
    # Monday 2030-04-29 is the first day of 2030-W18 in Shanghai.
    monday = rules.Window(at("2030-04-29T08:00:00+08:00"), at("2030-04-29T18:00:00+08:00"))
    others = [
        claim("2030-04-30T08:00:00+08:00", "2030-04-30T18:00:00+08:00"),  # 10 h, W18
        claim("2030-04-28T08:00:00+08:00", "2030-04-28T20:00:00+08:00"),  # Sunday: W17
    ]
    assert rules.week_over_cap(monday, others, 20, SHANGHAI) is None
    over = rules.week_over_cap(monday, others, 19.5, SHANGHAI)
    assert over == rules.WeekOverCap("2030-W18", 20.0, 19.5)


def test_a_shift_across_midnight_on_sunday_counts_in_both_weeks() -> None:
    night = rules.Window(at("2030-05-05T20:00:00+08:00"), at("2030-05-06T04:00:00+08:00"))
    monday = [claim("2030-05-06T08:00:00+08:00", "2030-05-06T12:00:00+08:00")]
    # Four hours fall on Sunday (W18), four on Monday (W19) next to Monday's four. Night
    # hours (22:00-06:00) count 1.5x (issue 14): Monday's 00:00-04:00 weigh 6, so W19 holds 10.
    assert rules.week_over_cap(night, monday, 10, SHANGHAI) is None
    over = rules.week_over_cap(night, monday, 9, SHANGHAI)
    assert over is not None
    assert over.week == "2030-W19"
    assert over.hours == 10


def test_check_in_opens_an_hour_before_the_start_and_closes_at_the_end() -> None:
    d = demand()
    assert not rules.check_in_open(d, d.starts_at - timedelta(hours=1, seconds=1))
    assert rules.check_in_open(d, d.starts_at - timedelta(hours=1))
    assert rules.check_in_open(d, d.ends_at)
    assert not rules.check_in_open(d, d.ends_at + timedelta(seconds=1))


def test_withdrawing_needs_a_reason_from_an_hour_before_the_start() -> None:
    d = demand()
    assert not rules.withdraw_needs_reason(d, d.starts_at - timedelta(hours=2))
    assert rules.withdraw_needs_reason(d, d.starts_at - timedelta(minutes=59))
    assert rules.withdraw_needs_reason(d, d.starts_at + timedelta(hours=1))


def test_person_hours_run_from_check_in_to_completion_times_headcount() -> None:
    base = claim("2030-05-01T08:00:00+08:00", "2030-05-01T20:00:00+08:00", headcount=3)
    early = base.model_copy(update={"checked_in_at": at("2030-05-01T07:30:00+08:00")})
    assert rules.person_hours(early, at("2030-05-01T10:00:00+08:00")) == 6.0
    late = base.model_copy(update={"checked_in_at": at("2030-05-01T09:00:00+08:00")})
    assert rules.person_hours(late, at("2030-05-02T09:00:00+08:00")) == 33.0


def test_check_in_codes_are_short_random_and_forgiving_to_type() -> None:
    generated = {codes.new_code() for _ in range(50)}
    assert len(generated) == 50
    code = generated.pop()
    assert len(code) == codes.LENGTH
    assert set(code) <= set(codes.ALPHABET)
    assert codes.matches(code, f" {code.lower()[:3]} {code.lower()[3:]} ")
    assert not codes.matches(code, code[:-1])


def test_fullness_and_remaining_places() -> None:
    assert demand(accepted=3).remaining == 2
    assert not demand(accepted=4).is_full
    assert demand(accepted=5).is_full
