"""The relay roster's rotation (issue 14): which unit serves which day. Pure: no I/O, no clock.

"One party branch a day" over a month: each day's turn goes to the unit, among those that may
serve it, with the fewest turns so far. Ties are broken, in order, by the fewest free days
left (a unit that can serve only a few days gets them before units that could serve later),
by the longest rest since its last turn (never served first), and by the order the secretary
listed the units in. Without blocked dates this is a plain round robin, so 30 days over 10
units gives each unit exactly 3 turns. A day no unit can serve is reported, with why; it is
never silently dropped.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

# Why a unit takes no turn at all, and why a day has no unit.
ExclusionReason = Literal["not-in-community", "skills-missing"]
UnassignedReason = Literal["no-eligible-unit", "every-unit-blocked"]


@dataclass(frozen=True)
class Candidate:
    """A unit the secretary put forward: where it serves, what it can do, when it cannot."""

    unit_id: str
    communities: frozenset[str]
    skills: frozenset[str] = frozenset()
    blocked: frozenset[date] = frozenset()


@dataclass(frozen=True)
class Turn:
    day: date
    unit_id: str


@dataclass(frozen=True)
class Unassigned:
    day: date
    reason: UnassignedReason


@dataclass(frozen=True)
class Excluded:
    unit_id: str
    reason: ExclusionReason
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rotation:
    turns: tuple[Turn, ...]
    unassigned: tuple[Unassigned, ...] = ()
    excluded: tuple[Excluded, ...] = ()
    # Turns per eligible unit (0 included), in the order the units were listed.
    load: Mapping[str, int] = field(default_factory=dict)


def days_between(first: date, last: date) -> list[date]:
    """Every day from `first` to `last`, both included."""
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _exclusion(candidate: Candidate, community_id: str, skills: frozenset[str]) -> Excluded | None:
    if community_id not in candidate.communities:
        return Excluded(candidate.unit_id, "not-in-community")
    if missing := skills - candidate.skills:
        return Excluded(candidate.unit_id, "skills-missing", tuple(sorted(missing)))
    return None


def propose(
    candidates: Sequence[Candidate],
    days: Iterable[date],
    community_id: str,
    skills: Iterable[str] = (),
) -> Rotation:
    """One unit per day, spreading the turns evenly over the units that may serve them.

    A unit may serve a day when it serves `community_id`, holds every one of `skills`, and
    has not blocked the day. Candidates listed twice count once (the first listing)."""
    needed = frozenset(skills)
    unique = list({candidate.unit_id: candidate for candidate in reversed(candidates)}.values())
    unique.reverse()
    excluded: list[Excluded] = []
    eligible: list[Candidate] = []
    for candidate in unique:
        if (out := _exclusion(candidate, community_id, needed)) is not None:
            excluded.append(out)
        else:
            eligible.append(candidate)

    schedule = sorted(set(days))
    order = {candidate.unit_id: index for index, candidate in enumerate(eligible)}
    load = dict.fromkeys(order, 0)
    last: dict[str, date] = {}
    free_left = {
        candidate.unit_id: sum(1 for day in schedule if day not in candidate.blocked)
        for candidate in eligible
    }
    turns: list[Turn] = []
    unassigned: list[Unassigned] = []
    for day in schedule:
        free = [candidate for candidate in eligible if day not in candidate.blocked]
        if not free:
            why: UnassignedReason = "every-unit-blocked" if eligible else "no-eligible-unit"
            unassigned.append(Unassigned(day, why))
            continue
        chosen = min(
            free,
            key=lambda candidate: (
                load[candidate.unit_id],
                free_left[candidate.unit_id],
                last.get(candidate.unit_id, date.min),
                order[candidate.unit_id],
            ),
        )
        turns.append(Turn(day, chosen.unit_id))
        load[chosen.unit_id] += 1
        last[chosen.unit_id] = day
        for candidate in free:
            free_left[candidate.unit_id] -= 1
    return Rotation(tuple(turns), tuple(unassigned), tuple(excluded), load)
