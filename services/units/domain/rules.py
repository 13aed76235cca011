"""The rules of claiming, checking in and completing, as plain functions (no I/O)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from services.units.domain.model import Claim, Community, Demand

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
    """The first ISO week in which the new shift would take accepted hours past the cap."""
    windows = [window_of(claim) for claim in committed]
    for week, start, end in _iso_weeks(window, zone):
        hours = window.hours_within(start, end) + sum(w.hours_within(start, end) for w in windows)
        if hours > cap + 1e-9:
            return WeekOverCap(week, round(hours, 2), cap)
    return None


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
