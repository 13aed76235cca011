"""The rules of claiming, checking in and completing, as plain functions (no I/O)."""

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from services.units.domain.model import Claim, Community, Demand, Volunteer

# Check-in (the report for duty) opens this long before the shift starts.
CHECK_IN_OPENS_BEFORE = timedelta(hours=1)
# Withdrawing this close to the start (or later) leaves the secretary short: say why.
WITHDRAW_REASON_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Window:
    starts_at: datetime
    ends_at: datetime

    def overlaps(self, other: "Window") -> bool:
        # Back-to-back shifts (one ends when the next starts) do not overlap.
        return self.starts_at < other.ends_at and other.starts_at < self.ends_at

    def hours_within(self, start: datetime, end: datetime) -> float:
        overlap = min(self.ends_at, end) - max(self.starts_at, start)
        return max(overlap.total_seconds(), 0.0) / 3600


def window_of(item: Demand | Claim) -> Window:
    return Window(item.starts_at, item.ends_at)


def normalise_skills(skills: Iterable[str]) -> tuple[str, ...]:
    """'First Aid ' and 'first aid' are one skill; order and duplicates carry no meaning."""
    return tuple(sorted({" ".join(skill.split()).lower() for skill in skills if skill.strip()}))


def missing_skills(required: Iterable[str], held: Iterable[str]) -> list[str]:
    return sorted(set(normalise_skills(required)) - set(normalise_skills(held)))


def reaches(demand: Demand, communities: Iterable[Community]) -> bool:
    """Whether a claimant serving `communities` hears this demand at its current level.

    At the community level only that community's own; once escalated, everyone in the same
    street, then in the same district.
    """
    for community in communities:
        if community.id == demand.community_id:
            return True
        if demand.level == "street" and community.street == demand.street:
            return True
        if demand.level == "district" and community.district == demand.district:
            return True
    return False


def first_overlap(window: Window, committed: Iterable[Claim]) -> Claim | None:
    for claim in committed:
        if window.overlaps(window_of(claim)):
            return claim
    return None


@dataclass(frozen=True)
class WeekOverCap:
    week: str  # ISO week, e.g. "2030-W18"
    hours: float  # accepted hours that week, the new shift included
    cap: float


def _iso_weeks(window: Window, zone: tzinfo) -> list[tuple[str, datetime, datetime]]:
    """The ISO weeks (local to `zone`) the window touches, with each week's bounds."""
    local_start = window.starts_at.astimezone(zone)
    monday = (local_start - timedelta(days=local_start.isoweekday() - 1)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    weeks = []
    while monday < window.ends_at:
        year, number, _ = monday.isocalendar()
        weeks.append((f"{year}-W{number:02d}", monday, monday + timedelta(days=7)))
        monday += timedelta(days=7)
    return weeks


def week_over_cap(
    window: Window, committed: Iterable[Claim], cap: float, zone: tzinfo
) -> WeekOverCap | None:
    """The first ISO week in which the new shift would take accepted hours past the cap
    (night hours counting 1.5x, as toward every cap)."""
    load = WeightedLoad([window, *(window_of(claim) for claim in committed)], zone)
    for week, start, end in _iso_weeks(window, zone):
        hours = load.hours(start, end)
        if hours > cap + 1e-9:
            return WeekOverCap(week, round(hours, 2), cap)
    return None


# --- fatigue (issue 14) ---------------------------------------------------------------------

# Night work (22:00-06:00 local) tires more: each night hour counts this much toward a cap.
NIGHT_STARTS = time(22)
NIGHT_ENDS = time(6)
NIGHT_WEIGHT = 1.5
DAY_WINDOW = timedelta(hours=24)
# Shifts less than this apart are one working period (no rest between them to speak of).
SAME_PERIOD_GAP = timedelta(hours=1)
_EPSILON = 1e-9


def _nights(start: datetime, end: datetime, zone: tzinfo) -> list[Window]:
    """The nights (22:00-06:00 local to `zone`) that touch [start, end)."""
    day = start.astimezone(zone).date() - timedelta(days=1)
    last = end.astimezone(zone).date()
    nights = []
    while day <= last:
        night_start = datetime.combine(day, NIGHT_STARTS, zone)
        night_end = datetime.combine(day + timedelta(days=1), NIGHT_ENDS, zone)
        nights.append(Window(night_start, night_end))
        day += timedelta(days=1)
    return nights


def weighted_hours(window: Window, start: datetime, end: datetime, zone: tzinfo) -> float:
    """The window's hours within [start, end), a night hour counting `NIGHT_WEIGHT`."""
    inside = Window(max(window.starts_at, start), min(window.ends_at, end))
    if inside.ends_at <= inside.starts_at:
        return 0.0
    hours = inside.hours_within(inside.starts_at, inside.ends_at)
    night = sum(
        inside.hours_within(n.starts_at, n.ends_at)
        for n in _nights(inside.starts_at, inside.ends_at, zone)
    )
    return hours + (NIGHT_WEIGHT - 1) * night


_MICROSECOND = timedelta(microseconds=1)
_MICROS_PER_HOUR = 3_600_000_000


class WeightedLoad:
    """The weighted hours of many shifts within any span, `weighted_hours` summed over them.

    Built once from the shifts (O(n log n)), it answers each span with two binary searches:
    the caps ask about hundreds of candidate spans, and summing every shift for each of them
    cost 200 ms for a volunteer with 80 short shifts in one day. Instants are counted in
    whole microseconds and weights are 1 and 1.5, so the sums are exact, as the per-shift
    sums of `weighted_hours` are to within a rounding."""

    def __init__(self, windows: Iterable[Window], zone: tzinfo) -> None:
        weight_change: dict[datetime, float] = {}

        def weigh(start: datetime, end: datetime, weight: float) -> None:
            start, end = start.astimezone(UTC), end.astimezone(UTC)
            if start < end:
                weight_change[start] = weight_change.get(start, 0.0) + weight
                weight_change[end] = weight_change.get(end, 0.0) - weight

        for window in windows:
            weigh(window.starts_at, window.ends_at, 1.0)
            for night in _nights(window.starts_at, window.ends_at, zone):
                weigh(
                    max(window.starts_at, night.starts_at),
                    min(window.ends_at, night.ends_at),
                    NIGHT_WEIGHT - 1,
                )
        self._instants = sorted(weight_change)
        # Weighted microseconds before each instant, and the weight from it on.
        self._before: list[float] = []
        self._weight: list[float] = []
        before = weight = 0.0
        for i, instant in enumerate(self._instants):
            if i:
                before += weight * ((instant - self._instants[i - 1]) // _MICROSECOND)
            weight += weight_change[instant]
            self._before.append(before)
            self._weight.append(weight)

    def _micros_before(self, instant: datetime) -> float:
        i = bisect_right(self._instants, instant) - 1
        if i < 0:
            return 0.0
        return self._before[i] + self._weight[i] * ((instant - self._instants[i]) // _MICROSECOND)

    def hours(self, start: datetime, end: datetime) -> float:
        """The weighted hours worked within [start, end)."""
        if end <= start:
            return 0.0
        return (self._micros_before(end) - self._micros_before(start)) / _MICROS_PER_HOUR


@dataclass(frozen=True)
class FatigueLimits:
    max_hours_per_day: float
    min_rest_hours: float
    max_consecutive_days: int


def rules_reach(limits: FatigueLimits) -> timedelta:
    """How far from a new shift another shift can bear on these rules: the ISO week it falls
    in, a run of consecutive days on either side, the rest before and after its working
    period; a day more for local dates and for a period chained by short gaps (a chain
    longer than that would break the daily cap)."""
    return timedelta(days=max(7, limits.max_consecutive_days) + 2, hours=limits.min_rest_hours)


def limits_of(volunteer: Volunteer, community: Community | None) -> FatigueLimits:
    """The volunteer's own limits where set, else their community's (else the defaults)."""
    base = community or Community(id="", name="", street="", district="")
    return FatigueLimits(
        max_hours_per_day=volunteer.max_hours_per_day or base.max_hours_per_day,
        min_rest_hours=(
            volunteer.min_rest_hours
            if volunteer.min_rest_hours is not None
            else base.min_rest_hours
        ),
        max_consecutive_days=volunteer.max_consecutive_days or base.max_consecutive_days,
    )


@dataclass(frozen=True)
class DayOverCap:
    hours: float  # weighted hours in the worst 24 hours, the new shift included
    cap: float
    window: Window  # those 24 hours
    collides_with: Claim | None  # the first committed shift in them (None: the shift alone)


def day_over_cap(
    window: Window, committed: Sequence[Claim], cap: float, zone: tzinfo
) -> DayOverCap | None:
    """Whether some 24 hours touching the new shift would hold more than `cap` hours.

    The weighted hours in [t, t+24h) are piecewise linear in t, bending only where t or
    t+24h crosses a shift's edge or a night's: the worst 24 hours start at one of those."""
    near = [
        claim
        for claim in committed
        if claim.ends_at > window.starts_at - DAY_WINDOW
        and claim.starts_at < window.ends_at + DAY_WINDOW
    ]
    windows = [window, *(window_of(claim) for claim in near)]
    load = WeightedLoad(windows, zone)
    edges = {edge for w in windows for edge in (w.starts_at, w.ends_at)}
    for w in windows:
        for night in _nights(w.starts_at, w.ends_at, zone):
            edges.update(e for e in (night.starts_at, night.ends_at) if w.starts_at < e < w.ends_at)
    starts = set(edges) | {edge - DAY_WINDOW for edge in edges}
    worst: tuple[float, datetime] | None = None
    for t in sorted(starts):
        if not (window.starts_at - DAY_WINDOW < t < window.ends_at):
            continue  # these 24 hours miss the new shift: already within the cap
        hours = load.hours(t, t + DAY_WINDOW)
        if worst is None or hours > worst[0] + _EPSILON:
            worst = (hours, t)
    if worst is None or worst[0] <= cap + _EPSILON:
        return None
    hours, t = worst
    span = Window(t, t + DAY_WINDOW)
    colliding = sorted(
        (claim for claim in near if span.overlaps(window_of(claim))), key=lambda c: c.starts_at
    )
    return DayOverCap(round(hours, 2), cap, span, colliding[0] if colliding else None)


@dataclass(frozen=True)
class ShortRest:
    rest_hours: float  # the rest the new shift would leave
    min_rest_hours: float
    collides_with: Claim  # the shift on the other side of that short rest


def _period_of(window: Window, others: Sequence[Window]) -> Window:
    """The working period the shift joins: it and every shift chained to it by gaps under
    `SAME_PERIOD_GAP`, found in one pass over the shifts in order of their start."""
    ordered = sorted([window, *others], key=lambda w: w.starts_at)
    start, end, mine = ordered[0].starts_at, ordered[0].ends_at, ordered[0] is window
    for other in ordered[1:]:
        if other.starts_at - SAME_PERIOD_GAP < end:
            end = max(end, other.ends_at)
            mine = mine or other is window
        elif mine:
            break
        else:
            start, end, mine = other.starts_at, other.ends_at, other is window
    return Window(start, end)


def rest_too_short(
    window: Window, committed: Sequence[Claim], min_rest_hours: float
) -> ShortRest | None:
    """Whether the working period the new shift joins would lie too close to another.

    Shifts less than `SAME_PERIOD_GAP` apart are one period; between two periods the
    volunteer rests at least `min_rest_hours`."""
    ordered = sorted(committed, key=lambda c: c.starts_at)
    period = _period_of(window, [window_of(claim) for claim in ordered])
    rest = timedelta(hours=min_rest_hours)
    nearest: tuple[timedelta, Claim] | None = None
    for claim in ordered:
        if claim.ends_at <= period.starts_at:
            gap = period.starts_at - claim.ends_at
        elif claim.starts_at >= period.ends_at:
            gap = claim.starts_at - period.ends_at
        else:
            continue  # inside the period
        if gap < rest and (nearest is None or gap < nearest[0]):
            nearest = (gap, claim)
    if nearest is None:
        return None
    gap, claim = nearest
    return ShortRest(round(gap.total_seconds() / 3600, 2), min_rest_hours, claim)


def _days_worked(window: Window, zone: tzinfo) -> set[date]:
    """The local dates a shift works on (one ending at midnight does not touch the next)."""
    first = window.starts_at.astimezone(zone).date()
    last = (window.ends_at - timedelta(microseconds=1)).astimezone(zone).date()
    return {first + timedelta(days=n) for n in range((last - first).days + 1)}


@dataclass(frozen=True)
class TooManyDays:
    days: int  # the run of consecutive days with a shift, the new one included
    max_days: int
    first_day: date
    collides_with: Claim  # the first shift of that run


def too_many_consecutive_days(
    window: Window, committed: Sequence[Claim], max_days: int, zone: tzinfo
) -> TooManyDays | None:
    """Whether the new shift would make a run of more than `max_days` days with a shift."""
    mine = _days_worked(window, zone)
    worked = set(mine)
    first_shift: dict[date, Claim] = {}
    for claim in sorted(committed, key=lambda c: c.starts_at):
        for day in _days_worked(window_of(claim), zone):
            worked.add(day)
            first_shift.setdefault(day, claim)
    first, last = min(mine), max(mine)
    while first - timedelta(days=1) in worked:
        first -= timedelta(days=1)
    while last + timedelta(days=1) in worked:
        last += timedelta(days=1)
    days = (last - first).days + 1
    if days <= max_days:
        return None
    run = [first + timedelta(days=n) for n in range(days)]
    collides = next(first_shift[day] for day in run if day in first_shift)
    return TooManyDays(days, max_days, first, collides)


# --- who may take risky work (issue 14) ------------------------------------------------------

# The rule's name, as the refusal and the override's audited event say it: which rule, never
# why it applied to this volunteer (an age or a risk factor is health data).
HIGH_EXPOSURE_RULE = "high-exposure"
HIGH_EXPOSURE_MIN_AGE = 60


def may_take_exposure(volunteer: Volunteer, demand: Demand) -> bool:
    """`high` exposure is not for a volunteer aged 60 or over at the demand's start, nor for
    one with a declared risk factor. Only the birth year is known: a volunteer turning 60
    that year counts as 60 (the safe side)."""
    if demand.exposure != "high":
        return True
    if volunteer.risk_factors:
        return False
    if volunteer.birth_year is not None:
        return demand.starts_at.year - volunteer.birth_year < HIGH_EXPOSURE_MIN_AGE
    return True


def check_in_open(demand: Demand, now: datetime) -> bool:
    return demand.starts_at - CHECK_IN_OPENS_BEFORE <= now <= demand.ends_at


def withdraw_needs_reason(demand: Demand, now: datetime) -> bool:
    return now >= demand.starts_at - WITHDRAW_REASON_WINDOW


def person_hours(claim: Claim, now: datetime) -> float:
    """Hours on duty times headcount: from check-in (or the start) to completion (or the end)."""
    began = max(claim.checked_in_at or claim.starts_at, claim.starts_at)
    ended = min(now, claim.ends_at)
    hours = max((ended - began).total_seconds(), 0.0) / 3600
    return round(hours * claim.headcount, 2)
