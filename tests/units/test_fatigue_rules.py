"""The fatigue limits and the exposure rule as pure decisions (issue 14), in Shanghai time."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.units.domain import rules
from services.units.domain.model import Claim, Community, Demand, Volunteer
from tests.units.support import committed_shift

ZONE = ZoneInfo("Asia/Shanghai")
DAY = datetime(2031, 3, 4, tzinfo=ZONE)  # a Tuesday, 00:00 local


def at(hour: float, day: int = 0) -> datetime:
    return (DAY + timedelta(days=day, hours=hour)).astimezone(UTC)


def window(start: float, end: float, day: int = 0) -> rules.Window:
    return rules.Window(at(start, day), at(end, day))


def shift(start: float, end: float, day: int = 0, name: str = "a") -> Claim:
    return committed_shift(at(start, day), at(end, day) - at(start, day), name)


def volunteer(**fields: object) -> Volunteer:
    return Volunteer.model_validate(
        {"id": "vol_1", "name": "Li", "community_id": "c-1", "created_at": at(0)}
        | {"created_by": "secretary"}
        | fields
    )


def test_night_hours_weigh_one_and_a_half() -> None:
    evening = window(20, 24)  # 20:00-22:00 day, 22:00-24:00 night
    assert rules.weighted_hours(evening, evening.starts_at, evening.ends_at, ZONE) == 5
    night = window(22, 30)  # 22:00-06:00: all night
    assert rules.weighted_hours(night, night.starts_at, night.ends_at, ZONE) == 12
    morning = window(8, 16)
    assert rules.weighted_hours(morning, morning.starts_at, morning.ends_at, ZONE) == 8


def test_the_daily_cap_counts_any_24_hours() -> None:
    morning = shift(8, 14)
    over = rules.day_over_cap(window(14.5, 19.5), [morning], 10, ZONE)
    assert over is not None
    assert over.hours == 11
    assert over.collides_with == morning
    # The next day's shift 24 hours on shares no 24 hours with more than 10 of them.
    assert rules.day_over_cap(window(14, 18, day=1), [morning], 10, ZONE) is None
    # Evening then next morning: within 24 hours of each other, 6 + 5 > 10.
    assert rules.day_over_cap(window(7, 12, day=1), [shift(14, 20)], 10, ZONE) is not None


def test_a_long_night_shift_is_over_the_daily_cap_by_itself() -> None:
    over = rules.day_over_cap(window(22, 30), [], 10, ZONE)
    assert over is not None
    assert over.hours == 12
    assert over.collides_with is None
    assert rules.day_over_cap(window(8, 16), [], 10, ZONE) is None


def test_rest_between_working_periods() -> None:
    morning = shift(8, 12)
    short = rules.rest_too_short(window(20, 23), [morning], 11)
    assert short is not None
    assert short.rest_hours == 8
    assert short.collides_with == morning
    # Less than an hour apart: one working period, no rest owed between them.
    assert rules.rest_too_short(window(12.5, 14), [morning], 11) is None
    # Exactly the rest: allowed; and the next morning's shift after a full night's rest.
    assert rules.rest_too_short(window(23, 24), [morning], 11) is None
    assert rules.rest_too_short(window(8, 12, day=1), [morning], 11) is None
    # The later neighbour counts too: a shift that leaves too little before the next one.
    later = shift(8, 12, day=1, name="b")
    before = rules.rest_too_short(window(20, 23), [later], 11)
    assert before is not None
    assert before.collides_with == later


def test_a_period_joined_by_the_new_shift_is_measured_as_a_whole() -> None:
    # 08-12 and the new 12:30-15 are one period; 20:00 is then 5 hours after its end.
    committed = [shift(8, 12, name="a"), shift(20, 22, name="b")]
    short = rules.rest_too_short(window(12.5, 15), committed, 11)
    assert short is not None
    assert short.collides_with.id == "clm_b"
    assert short.rest_hours == 5


def test_consecutive_days_with_a_shift() -> None:
    week = [shift(8, 10, day=n, name=str(n)) for n in range(6)]
    over = rules.too_many_consecutive_days(window(8, 10, day=6), week, 6, ZONE)
    assert over is not None
    assert over.days == 7
    assert over.collides_with.id == "clm_0"
    assert rules.too_many_consecutive_days(window(8, 10, day=7), week, 6, ZONE) is None
    # Filling a gap joins two runs: 3 + the new day + 3 = 7.
    gap = [shift(8, 10, day=n, name=str(n)) for n in (0, 1, 2, 4, 5, 6)]
    assert rules.too_many_consecutive_days(window(8, 10, day=3), gap, 6, ZONE) is not None


def test_a_shift_ending_at_midnight_works_one_day() -> None:
    days = [shift(20, 24, day=n, name=str(n)) for n in range(5)]
    assert rules.too_many_consecutive_days(window(8, 10, day=5), days, 6, ZONE) is None


def test_a_volunteers_own_limits_win_over_the_communitys() -> None:
    community = Community(
        id="c-1", name="c", street="s", district="d", max_hours_per_day=8, min_rest_hours=12
    )
    limits = rules.limits_of(volunteer(max_hours_per_day=6, min_rest_hours=0), community)
    assert limits == rules.FatigueLimits(6, 0, 6)
    assert rules.limits_of(volunteer(), community) == rules.FatigueLimits(8, 12, 6)
    assert rules.limits_of(volunteer(), None) == rules.FatigueLimits(10, 11, 6)


def demand(exposure: str) -> Demand:
    return Demand.model_validate(
        {
            "id": "dem_1",
            "community_id": "c-1",
            "street": "s",
            "district": "d",
            "kind": "staffing",
            "title": "t",
            "slots": 1,
            "starts_at": at(8),
            "ends_at": at(12),
            "fill_by": at(8),
            "priority": "urgent",
            "exposure": exposure,
        }
    )


def test_high_exposure_is_kept_from_the_old_and_the_at_risk() -> None:
    high = demand("high")
    assert not rules.may_take_exposure(volunteer(birth_year=2031 - 60), high)
    assert rules.may_take_exposure(volunteer(birth_year=2031 - 59), high)
    assert not rules.may_take_exposure(volunteer(risk_factors=("pregnancy",)), high)
    assert rules.may_take_exposure(volunteer(), high)
    # Medium and low exposure: anyone.
    old = volunteer(birth_year=1950, risk_factors=("chronic_illness",))
    assert rules.may_take_exposure(old, demand("medium"))
    assert rules.may_take_exposure(old, demand("low"))
