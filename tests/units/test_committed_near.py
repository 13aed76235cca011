"""A claim reads only the committed shifts near it (`rules.rules_reach`), and decides as it
would reading them all: a year of completed shifts is not read again by every claim."""

import random
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.units.adapters import repository
from services.units.domain import rules
from services.units.domain.model import Claim, ClaimStatus, Volunteer
from services.units.handlers.commands import _time_refusal
from shared.events.catalogue import Claimant
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx
from tests.units.support import committed_shift

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2031, 1, 6, tzinfo=ZONE)
CLAIMANT = Claimant(type="volunteer", id="vol_1")
LIMITS = rules.FatigueLimits(max_hours_per_day=10, min_rest_hours=8, max_consecutive_days=6)
VOLUNTEER = Volunteer.model_validate(
    {"id": "vol_1", "name": "Li", "community_id": "c-1", "created_at": START}
    | {"created_by": "secretary", "max_hours_per_week": 40}
)


def shift(start: datetime, hours: float, name: str, status: ClaimStatus = "completed") -> Claim:
    return committed_shift(start, timedelta(hours=hours), name, status)


def near(window: rules.Window, claims: list[Claim]) -> list[Claim]:
    reach = rules.rules_reach(LIMITS)
    return [
        c
        for c in claims
        if c.ends_at > window.starts_at - reach and c.starts_at < window.ends_at + reach
    ]


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(40))
def test_the_shifts_within_reach_decide_as_all_of_them(seed: int) -> None:
    """Two months of a volunteer's shifts, each taken only where the rules allowed it (as
    claims are), then any new shift: refused for the same reason, or not at all."""
    rng = random.Random(seed)
    history: list[Claim] = []
    for n in range(400):
        start = START + timedelta(hours=rng.randrange(60 * 24))
        candidate = shift(start, rng.choice((2, 4, 6, 8, 11)), f"{seed}-{n}")
        window = rules.window_of(candidate)
        if _time_refusal(window, history, VOLUNTEER, LIMITS, ZONE) is None:
            history.append(candidate)
    assert len(history) > 40
    for n in range(60):
        start = START + timedelta(hours=rng.randrange(60 * 24))
        window = rules.window_of(shift(start, rng.choice((1, 3, 8)), f"new-{n}"))
        every = _time_refusal(window, history, VOLUNTEER, LIMITS, ZONE)
        within = _time_refusal(window, near(window, history), VOLUNTEER, LIMITS, ZONE)
        assert repr(within) == repr(every)


@pytest.mark.broker
async def test_the_store_answers_the_committed_shifts_within_reach(
    units_store: ServiceRuntime,
) -> None:
    """On the Mongo wire server: a year of completed shifts, a withdrawn one beside the new
    shift, and the committed ones near it; only those come back."""
    year = [shift(START - timedelta(days=d), 4, f"old-{d}") for d in range(10, 365)]
    close = [
        shift(START - timedelta(days=3), 4, "before", "completed"),
        shift(START + timedelta(hours=6), 2, "later", "accepted"),
        shift(START + timedelta(days=5), 2, "checked", "checked_in"),
    ]
    withdrawn = shift(START + timedelta(hours=12), 2, "gone", "withdrawn")

    async def store(tx: Tx) -> None:
        for claim in [*year, *close, withdrawn]:
            await repository.insert_claim(tx, claim)

    await units_store.uow.run(store)
    window = rules.window_of(shift(START, 3, "new"))
    found = await repository.committed_near(
        units_store.db, CLAIMANT, window, rules.rules_reach(LIMITS)
    )
    assert sorted(c.id for c in found) == sorted(c.id for c in close)
