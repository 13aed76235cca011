"""The district simulation's traffic: what 300 communities do, as a timed plan (pure, no I/O).

The rate comes from docs/scale.md's model (`bench/scale_model.py`): 5 demands a day per
community, spread over the day like the events (`HOURLY_PERCENT`: the hour the replay starts
in, and the ones after it, set the rate). Demands arrive as a Poisson process over the whole
district, each at a community drawn uniformly.

Each demand's story, in simulated time from its posting (the replay runs `speed` times faster,
so at 10x a simulated minute is 6 real seconds):

- posted by the community's secretary, 1-4 slots, `fill_by` 4 minutes later, the shift from
  10 to 20 minutes after posting;
- claimed in the first minutes by the community's volunteers (one place each) and, when no
  volunteer is free, by one of the units stationed in its half of the street, until filled;
  sometimes a second claimant races for the last place at the same instant (one of the two is
  refused: the overbooking check has something to catch);
- sometimes an accepted volunteer withdraws (with a reason: the shift is less than an hour
  away) and another claimant takes the place;
- sometimes nobody in the community answers: at `fill_by` the demand escalates to the street
  and a unit of the street's other half claims it; of those, some also go unanswered there
  and escalate to the district (the community's escalation step later), where a unit of
  another street claims it;
- the secretary reads the check-in code a minute before the start; every claimant checks in
  within the first minute of the shift, completes in its last minute, and the secretary
  confirms the demand done just before it ends.

Nothing here is random at run time: the plan is drawn from `seed`, so two runs replay the same
traffic.
"""

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from bench.scale_model import DEMANDS_PER_COMMUNITY_PER_DAY, EVENTS_PER_DEMAND, HOURLY_PERCENT

MINUTE = 60.0

# The story's clock, in simulated seconds after posting.
FILL_BY_S = 4 * MINUTE
CLAIMS_WITHIN_S = (0.5 * MINUTE, 3.5 * MINUTE)
STREET_CLAIM_AFTER_S = 2 * MINUTE  # after fill_by: the street's units answer
ESCALATION_STEP_S = 3 * MINUTE  # the community's step from the street to the district
DISTRICT_CLAIM_AFTER_S = 2 * MINUTE  # after the district hears of it
CODE_BEFORE_START_S = 1 * MINUTE
STARTS_AFTER_S = 10 * MINUTE
SHIFT_S = 10 * MINUTE
CONFIRM_BEFORE_END_S = 0.2 * MINUTE

# How often each turn of the story happens (planning assumptions, not measurements).
SLOTS_WEIGHTS = {1: 0.35, 2: 0.35, 3: 0.2, 4: 0.1}
PRIORITY_WEIGHTS = {"routine": 0.6, "urgent": 0.3, "critical": 0.1}
P_ESCALATE = 0.1  # nobody in the community answers by fill_by
P_TO_DISTRICT = 0.3  # of those, the street does not answer either
P_WITHDRAW = 0.15  # an accepted volunteer withdraws and is replaced
P_RACE = 0.2  # a second claimant races for the last place

ActionKind = Literal[
    "post", "claim", "withdraw", "code", "check_in", "complete_claim", "complete_demand"
]
Level = Literal["community", "street", "district"]


@dataclass(frozen=True)
class Claimant:
    kind: Literal["volunteer", "unit"]
    # A volunteer: (community, number within it); a unit: (street, half of the street).
    home: int
    number: int

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.home}-{self.number}"


@dataclass(frozen=True)
class Action:
    at: float  # simulated seconds since the replay began
    kind: ActionKind
    demand: int
    claimant: Claimant | None = None
    headcount: int = 1
    # Set on the second claim of a race: one of the two is refused (demand full / filled).
    race: bool = False


@dataclass(frozen=True)
class DemandPlan:
    index: int
    community: int
    posted_at: float
    slots: int
    priority: str
    escalates_to: Level  # "community": answered where it was posted

    @property
    def fill_by(self) -> float:
        return self.posted_at + FILL_BY_S

    @property
    def starts_at(self) -> float:
        return self.posted_at + STARTS_AFTER_S

    @property
    def ends_at(self) -> float:
        return self.starts_at + SHIFT_S


@dataclass(frozen=True)
class District:
    """The district's shape: communities in streets, volunteers in communities, units."""

    communities: int = 300
    communities_per_street: int = 10
    volunteers_per_community: int = 4

    @property
    def streets(self) -> int:
        return math.ceil(self.communities / self.communities_per_street)

    def street_of(self, community: int) -> int:
        return community // self.communities_per_street

    def half_of(self, community: int) -> int:
        """Each street has two units, each stationed in half of the street's communities."""
        return (community % self.communities_per_street) * 2 // self.communities_per_street

    def unit_communities(self, street: int, half: int) -> list[int]:
        first = street * self.communities_per_street
        members = range(first, min(first + self.communities_per_street, self.communities))
        return [c for c in members if self.half_of(c) == half]

    def units(self) -> list[Claimant]:
        return [
            Claimant("unit", street, half)
            for street in range(self.streets)
            for half in (0, 1)
            if self.unit_communities(street, half)
        ]

    def volunteers(self, community: int) -> list[Claimant]:
        return [Claimant("volunteer", community, v) for v in range(self.volunteers_per_community)]


@dataclass(frozen=True)
class TrafficModel:
    district: District = District()
    speed: float = 10.0
    start_hour: int = 9  # Beijing time: the replay starts at the morning peak
    minutes: float = 2.0  # real minutes during which demands are posted
    seed: int = 15

    @property
    def window_s(self) -> float:
        """Simulated seconds of posting."""
        return self.minutes * MINUTE * self.speed

    def demands_per_s(self, sim_s: float) -> float:
        """The district's demand arrival rate at `sim_s` simulated seconds into the replay."""
        hour = int(self.start_hour + sim_s // 3600) % 24
        per_community_per_day = DEMANDS_PER_COMMUNITY_PER_DAY * HOURLY_PERCENT[hour] / 100
        return self.district.communities * per_community_per_day / 3600

    def expected_demands(self) -> float:
        """The Poisson mean of the number of demands the window posts."""
        total, t = 0.0, 0.0
        while t < self.window_s:
            step = min(self.window_s, (t // 3600 + 1) * 3600) - t
            total += self.demands_per_s(t) * step
            t += step
        return total

    def expected_events_per_s(self) -> float:
        """docs/scale.md's events per second for this many communities at the replayed hours,
        times the speed: what the services should see in real time."""
        return self.expected_demands() * EVENTS_PER_DEMAND / (self.minutes * MINUTE)

    def story_s(self) -> float:
        """Simulated seconds from the first posting to the last action."""
        return self.window_s + STARTS_AFTER_S + SHIFT_S


@dataclass
class Plan:
    model: TrafficModel
    demands: list[DemandPlan] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    def counts(self) -> Counter[str]:
        """What the plan asks for, by action (a race's second claim is `claim_race`)."""
        counted: Counter[str] = Counter()
        for action in self.actions:
            counted["claim_race" if action.race else action.kind] += 1
        return counted

    def last_action_s(self) -> float:
        return max((a.at for a in self.actions), default=0.0)


def _weighted[T](rng: random.Random, weights: dict[T, float]) -> T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def arrivals(model: TrafficModel, rng: random.Random) -> list[float]:
    """Posting times (simulated seconds): a Poisson process, its rate set hour by hour."""
    times: list[float] = []
    t = 0.0
    while t < model.window_s:
        rate = model.demands_per_s(t)
        hour_end = min(model.window_s, (t // 3600 + 1) * 3600)
        gap = rng.expovariate(rate) if rate > 0 else math.inf
        if t + gap >= hour_end:
            t = hour_end  # memoryless: draw again at the next hour's rate
            continue
        t += gap
        times.append(t)
    return times


class _Busy:
    """The shifts each volunteer holds, so the plan never asks one to overlap two."""

    def __init__(self) -> None:
        self._held: dict[str, list[tuple[float, float]]] = {}

    def free(self, who: Claimant, start: float, end: float) -> bool:
        return all(end <= s or e <= start for s, e in self._held.get(who.key, []))

    def hold(self, who: Claimant, start: float, end: float) -> None:
        self._held.setdefault(who.key, []).append((start, end))


def plan(model: TrafficModel) -> Plan:
    rng = random.Random(model.seed)
    district = model.district
    result = Plan(model)
    busy = _Busy()
    for index, posted_at in enumerate(arrivals(model, rng)):
        community = rng.randrange(district.communities)
        escalates: Level = "community"
        if rng.random() < P_ESCALATE:
            escalates = "district" if rng.random() < P_TO_DISTRICT else "street"
        demand = DemandPlan(
            index=index,
            community=community,
            posted_at=posted_at,
            slots=_weighted(rng, SLOTS_WEIGHTS),
            priority=_weighted(rng, PRIORITY_WEIGHTS),
            escalates_to=escalates,
        )
        result.demands.append(demand)
        result.actions += _story(demand, district, busy, rng)
    result.actions.sort(key=lambda a: (a.at, a.demand))
    return result


def _spare(
    demand: DemandPlan, district: District, taken: set[Claimant], busy: _Busy
) -> Claimant | None:
    """Who else could claim: the community's unit, else a free volunteer, else nobody."""
    unit = Claimant(
        "unit", district.street_of(demand.community), district.half_of(demand.community)
    )
    if unit not in taken:
        return unit
    shift = (demand.starts_at, demand.ends_at)
    for volunteer in district.volunteers(demand.community):
        if volunteer not in taken and busy.free(volunteer, *shift):
            busy.hold(volunteer, *shift)
            return volunteer
    return None


def _story(demand: DemandPlan, district: District, busy: _Busy, rng: random.Random) -> list[Action]:
    i = demand.index
    actions = [Action(demand.posted_at, "post", i)]
    shift = (demand.starts_at, demand.ends_at)
    street = district.street_of(demand.community)
    half = district.half_of(demand.community)
    claims: list[Action] = []

    if demand.escalates_to == "community":
        # Volunteers first, one place each; the stationed unit takes what is left.
        free = [v for v in district.volunteers(demand.community) if busy.free(v, *shift)]
        rng.shuffle(free)
        filled = 0
        for when in sorted(rng.uniform(*CLAIMS_WITHIN_S) for _ in range(demand.slots)):
            if filled >= demand.slots:
                break
            at = demand.posted_at + when
            if free:
                volunteer = free.pop()
                busy.hold(volunteer, *shift)
                claims.append(Action(at, "claim", i, volunteer, 1))
                filled += 1
            else:
                unit = Claimant("unit", street, half)
                claims.append(Action(at, "claim", i, unit, demand.slots - filled))
                filled = demand.slots
        taken = {c.claimant for c in claims if c.claimant is not None}
        if rng.random() < P_RACE and (rival := _spare(demand, district, taken, busy)):
            claims.append(Action(claims[-1].at, "claim", i, rival, 1, race=True))
            taken.add(rival)
        volunteers = [c for c in claims if c.claimant and c.claimant.kind == "volunteer"]
        if volunteers and rng.random() < P_WITHDRAW:
            leaving = rng.choice(volunteers)
            assert leaving.claimant is not None
            leaves_at = leaving.at + rng.uniform(0.5, 2) * MINUTE
            actions.append(Action(leaves_at, "withdraw", i, leaving.claimant))
            if substitute := _spare(demand, district, taken, busy):
                claims.append(Action(leaves_at + 0.5 * MINUTE, "claim", i, substitute, 1))
    else:
        # Nobody in the community answers: the street's other unit, or another street's.
        if demand.escalates_to == "street":
            other_half = 1 - half if district.unit_communities(street, 1 - half) else half
            who = Claimant("unit", street, other_half)
            at = demand.fill_by + STREET_CLAIM_AFTER_S
        else:
            who = Claimant("unit", (street + 1) % district.streets, 0)
            at = demand.fill_by + ESCALATION_STEP_S + DISTRICT_CLAIM_AFTER_S
        claims.append(Action(at, "claim", i, who, demand.slots))

    actions += claims
    actions.append(Action(demand.starts_at - CODE_BEFORE_START_S, "code", i))
    # Every claimant is given its turn on site; at run time only those whose claim was
    # accepted (and not withdrawn) take it, since a race's loser is decided by the services.
    for claim in claims:
        start = demand.starts_at + rng.uniform(0, 1) * MINUTE
        finish = demand.ends_at - rng.uniform(0.3, 1) * MINUTE
        actions.append(Action(start, "check_in", i, claim.claimant))
        actions.append(Action(finish, "complete_claim", i, claim.claimant))
    actions.append(Action(demand.ends_at - CONFIRM_BEFORE_END_S, "complete_demand", i))
    return actions
