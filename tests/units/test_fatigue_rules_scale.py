"""The caps and the rest rule at scale: the same decisions as their first, shift-by-shift
definitions (kept here as the oracle), for many shifts, in a time that grows no faster than
the shifts do.

Those first definitions summed every shift for each of hundreds of candidate 24 hours and
grew a working period one pass per shift: a volunteer with 80 one-minute shifts in one day
took 200 ms of the claim's transaction to decide, 160 shifts a second."""

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.units.domain import rules
from services.units.domain.model import Claim
from tests.units.support import committed_shift

pytestmark = pytest.mark.unit

ZONE = ZoneInfo("Asia/Shanghai")
MONDAY = datetime(2031, 3, 3, tzinfo=ZONE)


def shift(start: datetime, minutes: int, name: str) -> Claim:
    return committed_shift(start, timedelta(minutes=minutes), name)


# --- the oracle: the rules as first written, one shift at a time -----------------------------


def day_hours_oracle(
    window: rules.Window, committed: Sequence[Claim], zone: ZoneInfo
) -> tuple[float, datetime] | None:
    near = [
        claim
        for claim in committed
        if claim.ends_at > window.starts_at - rules.DAY_WINDOW
        and claim.starts_at < window.ends_at + rules.DAY_WINDOW
    ]
    windows = [window, *(rules.window_of(claim) for claim in near)]
    edges = {edge for w in windows for edge in (w.starts_at, w.ends_at)}
    for w in windows:
        for night in rules._nights(w.starts_at, w.ends_at, zone):
            edges.update(e for e in (night.starts_at, night.ends_at) if w.starts_at < e < w.ends_at)
    starts = set(edges) | {edge - rules.DAY_WINDOW for edge in edges}
    worst: tuple[float, datetime] | None = None
    for t in sorted(starts):
        if not (window.starts_at - rules.DAY_WINDOW < t < window.ends_at):
            continue
        hours = sum(rules.weighted_hours(w, t, t + rules.DAY_WINDOW, zone) for w in windows)
        if worst is None or hours > worst[0] + 1e-9:
            worst = (hours, t)
    return worst


def week_hours_oracle(window: rules.Window, committed: Sequence[Claim], zone: ZoneInfo) -> float:
    (_, start, end), *_ = rules._iso_weeks(window, zone)
    return rules.weighted_hours(window, start, end, zone) + sum(
        rules.weighted_hours(rules.window_of(claim), start, end, zone) for claim in committed
    )


def period_oracle(window: rules.Window, committed: Sequence[Claim]) -> rules.Window:
    period, grew = window, True
    while grew:
        grew = False
        for claim in sorted(committed, key=lambda c: c.starts_at):
            other = rules.window_of(claim)
            joined = (
                other.starts_at - rules.SAME_PERIOD_GAP < period.ends_at
                and period.starts_at - rules.SAME_PERIOD_GAP < other.ends_at
            )
            if joined and not (
                period.starts_at <= other.starts_at and other.ends_at <= period.ends_at
            ):
                period = rules.Window(
                    min(period.starts_at, other.starts_at), max(period.ends_at, other.ends_at)
                )
                grew = True
    return period


def random_week(seed: int) -> tuple[rules.Window, list[Claim]]:
    """Shifts of 15 minutes to 10 hours, any hour of day or night, over a week, none
    overlapping another, and a new one among them."""
    rng = random.Random(seed)
    taken: list[rules.Window] = []
    committed: list[Claim] = []
    while len(taken) < rng.randint(3, 40):
        start = MONDAY + timedelta(minutes=15 * rng.randrange(7 * 24 * 4))
        claim = shift(start, 15 * rng.randint(1, 40), f"{seed}-{len(taken)}")
        candidate = rules.window_of(claim)
        if not any(candidate.overlaps(other) for other in taken):
            taken.append(candidate)
            committed.append(claim)
    new = committed.pop(rng.randrange(len(committed)))
    return rules.window_of(new), committed


@pytest.mark.parametrize("seed", range(300))
def test_the_caps_and_the_period_decide_as_their_first_definitions(seed: int) -> None:
    window, committed = random_week(seed)

    worst = day_hours_oracle(window, committed, ZONE)
    assert worst is not None
    for cap in (worst[0] - 0.25, worst[0], worst[0] + 0.25):
        over = rules.day_over_cap(window, committed, cap, ZONE)
        if worst[0] > cap + 1e-9:
            assert over is not None
            assert over.hours == round(worst[0], 2)
            assert over.window.starts_at == worst[1]
        else:
            assert over is None

    week_hours = week_hours_oracle(window, committed, ZONE)
    assert rules.WeightedLoad([window, *(rules.window_of(c) for c in committed)], ZONE).hours(
        *rules._iso_weeks(window, ZONE)[0][1:]
    ) == pytest.approx(week_hours, abs=1e-9)

    assert rules._period_of(window, [rules.window_of(c) for c in committed]) == period_oracle(
        window, committed
    )


def test_a_cap_exactly_reached_is_within_it() -> None:
    """Eight one-hour shifts back to back, 08:00-16:00: 8 hours, the cap, not over it."""
    day = MONDAY + timedelta(hours=8)
    committed = [shift(day + timedelta(hours=h), 60, str(h)) for h in range(7)]
    last = rules.window_of(shift(day + timedelta(hours=7), 60, "7"))
    assert rules.day_over_cap(last, committed, 8, ZONE) is None
    assert rules.day_over_cap(last, committed, 7.99, ZONE) is not None


def test_many_shifts_in_one_day_cost_work_in_proportion(monkeypatch: pytest.MonkeyPatch) -> None:
    """Counted, not timed: each shift's nights are found a fixed number of times however
    many shifts there are, where the first definitions found them again for every candidate
    24 hours (320 one-minute shifts: 400,000 times)."""
    day = MONDAY + timedelta(hours=8)
    original = rules._nights
    calls = 0

    def counted(start: datetime, end: datetime, zone: ZoneInfo) -> list[rules.Window]:
        nonlocal calls
        calls += 1
        return original(start, end, zone)

    monkeypatch.setattr(rules, "_nights", counted)

    def nights_found(shifts: int) -> int:
        nonlocal calls
        calls = 0
        committed = [shift(day + timedelta(minutes=k), 1, str(k)) for k in range(shifts)]
        window = rules.window_of(shift(day + timedelta(minutes=shifts), 1, "new"))
        rules.day_over_cap(window, committed, 24, ZONE)
        rules.week_over_cap(window, committed, 168, ZONE)
        rules.rest_too_short(window, committed, 11)
        return calls

    few, many = nights_found(20), nights_found(320)
    assert many <= 16 * few  # 16 times the shifts, at most 16 times the work
