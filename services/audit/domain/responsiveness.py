"""The responsiveness report: who answered the whistle, how fast, and whether they showed up.

Rule set `RULES_VERSION` (it is in every report, so a re-score under new rules can be told
apart). A row is a community (`by=community`: every demand whistled there and every claim on
them) or a claimant (`by=unit` / `by=volunteer`: the demands it claimed and its own claims).
Only demands whose `demand.published` time falls in `[from, to)` count; their claims count
whenever they happened. Per row:

- `demands`: the row's demands; `claims`: its claims ever accepted (directly or promoted).
- `median_first_claim_s`, `p90_first_claim_s`: per demand, seconds from the whistle to the
  row's first accepted claim on it (demands without one are left out). Median of an even
  count is the mean of the middle two; p90 is the nearest rank, the ceil(0.9 n)-th smallest.
- `fill_rate`: sum over the row's demands of min(headcount the row's claims still hold, slots)
  over the sum of their slots. A claim holds its headcount from acceptance unless withdrawn.
- `attendance_rate`: claims checked in over claims checked in or marked no-show.
- `no_shows`: claims marked no-show.
- `completion_rate`: claims completed over claims checked in.
- `person_times`, `hours`: summed from `claim.completed` (person-hours: headcount x hours on
  duty, as units records them).
- `night_hours`: the part of those person-hours between 22:00 and 06:00 local time
  (`WHISTLE_TIMEZONE`, Asia/Shanghai by default), counted on the duty units counted: from the
  check-in (never before the shift's start) to the completion (never after its end).
- `score`: 100 x the weighted mean of the components below, over the components that have a
  value (a rate with a zero denominator has none; the weights of the rest are renormalised;
  a row with none scores 0). Rounded to one decimal.
    speed (30): 1 when the median is at most 10 minutes, 0 from 4 hours, linear between;
    fill (30): fill_rate; attendance (25): attendance_rate; completion (15): completion_rate.
- `rank`: by score, highest first; equal scores share a rank (1, 2, 2, 4); ties list by key.

Beside the rows, whatever the grouping, `fairness` tells how evenly the load (hours) was
shared, across units and across volunteers: Jain's index (sum x)^2 / (n * sum x^2) over the
hours x of each of n claimants. 1.0 means evenly shared; 1/n that one carried it all (0.1:
one in ten). n counts the claimants that could have served, which the log knows as those
with a claim accepted on a demand of the window, with or without hours: one who committed and
did nothing lowers the index; one who never claimed anything is not counted (audit does not
know who is on a roster). With no hours at all the index is null.
"""

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo
from typing import Any, Literal
from zoneinfo import ZoneInfo

from services.audit.domain.demand_state import ClaimState, DemandState

RULES_VERSION = "responsiveness/1"
Grouping = Literal["unit", "volunteer", "community"]

WEIGHTS: dict[str, float] = {"speed": 30, "fill": 30, "attendance": 25, "completion": 15}
SPEED_FULL_MARKS_S = 10 * 60
SPEED_ZERO_S = 4 * 3600
NIGHT_STARTS = time(22)
NIGHT_ENDS = time(6)
DEFAULT_ZONE = ZoneInfo("Asia/Shanghai")

COLUMNS: tuple[str, ...] = (
    "rank",
    "key",
    "demands",
    "claims",
    "median_first_claim_s",
    "p90_first_claim_s",
    "fill_rate",
    "attendance_rate",
    "no_shows",
    "completion_rate",
    "person_times",
    "hours",
    "night_hours",
    "score",
)


def rules(zone: tzinfo = DEFAULT_ZONE) -> dict[str, Any]:
    return {
        "version": RULES_VERSION,
        "weights": dict(WEIGHTS),
        "speed_full_marks_s": SPEED_FULL_MARKS_S,
        "speed_zero_s": SPEED_ZERO_S,
        "night": f"{NIGHT_STARTS:%H:%M}-{NIGHT_ENDS:%H:%M} {zone}",
    }


@dataclass(frozen=True)
class Row:
    key: str
    demands: int
    claims: int
    median_first_claim_s: float | None
    p90_first_claim_s: float | None
    fill_rate: float | None
    attendance_rate: float | None
    no_shows: int
    completion_rate: float | None
    person_times: int
    hours: float
    night_hours: float
    score: float
    rank: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in COLUMNS}


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def p90(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def jain_index(loads: Sequence[float]) -> float | None:
    """(sum x)^2 / (n * sum x^2): 1.0 when every load is equal, 1/n when one carries all;
    None without loads or when they are all zero."""
    squares = sum(x * x for x in loads)
    if not loads or squares == 0:
        return None
    return sum(loads) ** 2 / (len(loads) * squares)


def night_hours_within(began: datetime, ended: datetime, zone: tzinfo) -> float:
    """The hours of [began, ended) that fall between 22:00 and 06:00 local to `zone`."""
    if ended <= began:
        return 0.0
    total = 0.0
    day = began.astimezone(zone).date() - timedelta(days=1)
    while day <= ended.astimezone(zone).date():
        night_start = datetime.combine(day, NIGHT_STARTS, zone)
        night_end = datetime.combine(day + timedelta(days=1), NIGHT_ENDS, zone)
        overlap = min(ended, night_end) - max(began, night_start)
        total += max(overlap.total_seconds(), 0.0) / 3600
        day += timedelta(days=1)
    return total


def night_person_hours(demand: DemandState, claim: ClaimState, zone: tzinfo) -> float:
    """A completed claim's person-hours at night, on the duty units counted its hours on."""
    if claim.status != "completed" or claim.completed_at is None:
        return 0.0
    if demand.starts_at is None or demand.ends_at is None:
        return 0.0
    began = max(claim.checked_in_at or demand.starts_at, demand.starts_at)
    ended = min(claim.completed_at, demand.ends_at)
    return night_hours_within(began, ended, zone) * claim.headcount


def _rate(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def speed_component(median_s: float | None) -> float | None:
    if median_s is None:
        return None
    if median_s <= SPEED_FULL_MARKS_S:
        return 1.0
    if median_s >= SPEED_ZERO_S:
        return 0.0
    return 1 - (median_s - SPEED_FULL_MARKS_S) / (SPEED_ZERO_S - SPEED_FULL_MARKS_S)


def score(components: dict[str, float | None]) -> float:
    present = {name: value for name, value in components.items() if value is not None}
    total_weight = sum(WEIGHTS[name] for name in present)
    if not total_weight:
        return 0.0
    weighted = sum(WEIGHTS[name] * value for name, value in present.items())
    return round(100 * weighted / total_weight, 1)


def whistled_between(state: DemandState, start: datetime, end: datetime) -> bool:
    return state.published and state.whistle_at is not None and start <= state.whistle_at < end


def _row_keys(demand: DemandState, by: Grouping) -> set[str]:
    if by == "community":
        return {demand.community_id} if demand.community_id else set()
    return {
        claim.claimant_id
        for claim in demand.claims.values()
        if claim.claimant_type == by and claim.accepted_at is not None
    }


def _claims_of(demand: DemandState, by: Grouping, key: str) -> list[ClaimState]:
    accepted = [claim for claim in demand.claims.values() if claim.accepted_at is not None]
    if by == "community":
        return accepted
    return [claim for claim in accepted if claim.claimant_type == by and claim.claimant_id == key]


@dataclass
class _Tally:
    demands: int = 0
    claims: int = 0
    slots: int = 0
    held: int = 0
    checked_in: int = 0
    no_shows: int = 0
    completed: int = 0
    person_times: int = 0
    hours: float = 0.0
    night_hours: float = 0.0

    def __post_init__(self) -> None:
        self.first_claim_s: list[float] = []

    def add(self, demand: DemandState, claims: list[ClaimState], zone: tzinfo) -> None:
        assert demand.whistle_at is not None
        self.demands += 1
        self.claims += len(claims)
        self.slots += demand.slots
        held = sum(claim.headcount for claim in claims if claim.holds_slots)
        self.held += min(held, demand.slots)
        accepted_at = [claim.accepted_at for claim in claims if claim.accepted_at is not None]
        if accepted_at:
            self.first_claim_s.append((min(accepted_at) - demand.whistle_at).total_seconds())
        for claim in claims:
            showed = claim.checked_in_at is not None or claim.status == "completed"
            self.checked_in += showed
            self.no_shows += claim.no_show
            self.completed += claim.status == "completed"
            self.person_times += claim.person_times
            self.hours += claim.hours
            self.night_hours += night_person_hours(demand, claim, zone)

    def row(self, key: str) -> Row:
        middle = median(self.first_claim_s)
        fill = _rate(self.held, self.slots)
        attendance = _rate(self.checked_in, self.checked_in + self.no_shows)
        completion = _rate(self.completed, self.checked_in)
        components = {
            "speed": speed_component(middle),
            "fill": fill,
            "attendance": attendance,
            "completion": completion,
        }
        return Row(
            key=key,
            demands=self.demands,
            claims=self.claims,
            median_first_claim_s=_round(middle, 3),
            p90_first_claim_s=_round(p90(self.first_claim_s), 3),
            fill_rate=_round(fill, 4),
            attendance_rate=_round(attendance, 4),
            no_shows=self.no_shows,
            completion_rate=_round(completion, 4),
            person_times=self.person_times,
            hours=round(self.hours, 2),
            night_hours=round(self.night_hours, 2),
            score=score(components),
        )


def _round(value: float | None, digits: int) -> float | None:
    return round(value, digits) if value is not None else None


CLAIMANT_KINDS: tuple[Literal["unit", "volunteer"], ...] = ("unit", "volunteer")


def fairness_of(hours: Mapping[str, float]) -> dict[str, Any]:
    """Jain's index of the hours per claimant, with how many claimants and hours it covers."""
    loads = list(hours.values())
    index = jain_index(loads)
    return {
        "index": round(index, 4) if index is not None else None,
        "claimants": len(loads),
        "hours": round(sum(loads), 2),
    }


class Tallies:
    """Rows being added up, a batch of demands at a time (only the tallies are kept), and
    every unit's and volunteer's hours for the fairness indices."""

    def __init__(self, by: Grouping, zone: tzinfo = DEFAULT_ZONE) -> None:
        self.by = by
        self.zone = zone
        self._tallies: dict[str, _Tally] = {}
        self._hours: dict[str, dict[str, float]] = {kind: {} for kind in CLAIMANT_KINDS}

    def add(self, demands: Iterable[DemandState]) -> None:
        for demand in demands:
            if not demand.published or demand.whistle_at is None:
                continue
            for key in _row_keys(demand, self.by):
                self._tallies.setdefault(key, _Tally()).add(
                    demand, _claims_of(demand, self.by, key), self.zone
                )
            for claim in demand.claims.values():
                hours = self._hours.get(claim.claimant_type)
                if hours is not None and claim.accepted_at is not None:
                    hours[claim.claimant_id] = hours.get(claim.claimant_id, 0.0) + claim.hours

    def fairness(self) -> dict[str, dict[str, Any]]:
        return {kind: fairness_of(self._hours[kind]) for kind in CLAIMANT_KINDS}

    def rows(self) -> list[Row]:
        rows = sorted(
            (tally.row(key) for key, tally in self._tallies.items()),
            key=lambda r: (-r.score, r.key),
        )
        ranked: list[Row] = []
        for position, row in enumerate(rows, start=1):
            tied = ranked and ranked[-1].score == row.score
            rank = ranked[-1].rank if tied else position
            ranked.append(Row(**{**row.__dict__, "rank": rank}))
        return ranked


def report_rows(
    demands: Iterable[DemandState], by: Grouping, zone: tzinfo = DEFAULT_ZONE
) -> list[Row]:
    """Rows for the given demands (already restricted to the period), ranked."""
    tallies = Tallies(by, zone)
    tallies.add(demands)
    return tallies.rows()
