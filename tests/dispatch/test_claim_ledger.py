"""Dispatch's mirror of units' claims: any order, any repetition, the same `filled` (no I/O)."""

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from services.dispatch.domain.claims import ClaimLedger

pytestmark = pytest.mark.unit

T0 = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_accepted_claims_add_up() -> None:
    ledger = ClaimLedger().accepted("a", 2, at(1), 2).accepted("b", 3, at(2), 5)
    assert ledger.derived_filled == 5
    assert ledger.filled(slots=8) == 5


def test_an_accepted_arriving_after_its_withdrawal_does_not_count() -> None:
    ledger = ClaimLedger().withdrawn("a", 2, at(2), 0).accepted("a", 2, at(1), 2)
    assert ledger.derived_filled == 0
    assert ledger.filled(slots=8) == 0


def test_a_repeated_fact_changes_nothing() -> None:
    once = ClaimLedger().accepted("a", 2, at(1), 2).accepted("b", 1, at(2), 3)
    assert once.accepted("a", 2, at(1), 2) == once
    assert once.checked_in_claim("a", 2, at(3)).checked_in_claim("a", 2, at(3)) == (
        once.checked_in_claim("a", 2, at(3))
    )
    withdrawn = once.withdrawn("a", 2, at(2), 0)
    assert withdrawn.withdrawn("a", 2, at(2), 0) == withdrawn


def test_units_figure_counts_events_still_on_their_way() -> None:
    # `demand.filled` overtook the `claim.accepted` that filled the last slot.
    ledger = ClaimLedger().accepted("a", 3, at(1), 3).figure_reported(at(2), 4)
    assert ledger.derived_filled == 3
    assert ledger.filled(slots=4) == 4


def test_an_older_figure_does_not_override_a_newer_one() -> None:
    ledger = ClaimLedger().figure_reported(at(5), 1).accepted("a", 4, at(3), 4)
    assert ledger.filled(slots=4) == 1


def test_a_release_newer_than_every_figure_is_counted_from_the_records() -> None:
    ledger = ClaimLedger().accepted("a", 2, at(1), 2).accepted("b", 2, at(2), 4)
    released = ledger.released("a", 2, at(3)).released("b", 2, at(3))
    assert released.filled(slots=4) == 0


def test_two_figures_of_one_instant_that_disagree_fall_back_to_the_records() -> None:
    ledger = ClaimLedger().accepted("a", 2, at(1), 2).accepted("b", 1, at(1), 1)
    assert ledger.figure is not None
    assert ledger.figure.ambiguous
    assert ledger.filled(slots=4) == 3


def test_a_check_in_before_its_acceptance_counts_the_claim_once() -> None:
    ledger = ClaimLedger().checked_in_claim("a", 2, at(2)).accepted("a", 2, at(1), 2)
    assert ledger.checked_in
    assert ledger.derived_filled == 2
    assert ledger.filled(slots=4) == 2


FACTS: list[Callable[[ClaimLedger], ClaimLedger]] = [
    lambda ledger: ledger.accepted("a", 2, at(1), 2),
    lambda ledger: ledger.accepted("b", 2, at(2), 4),
    lambda ledger: ledger.figure_reported(at(2), 4),
    lambda ledger: ledger.withdrawn("a", 2, at(3), 2),
    lambda ledger: ledger.figure_reported(at(3), 2),
    lambda ledger: ledger.checked_in_claim("b", 2, at(4)),
]


def test_every_arrival_order_ends_with_the_same_ledger_count() -> None:
    results = set()
    for order in itertools.permutations(FACTS):
        ledger = ClaimLedger()
        for fact in order:
            ledger = fact(ledger)
        results.add((ledger.filled(slots=4), ledger.derived_filled, ledger.checked_in))
    assert results == {(2, 2, True)}


def test_a_ledger_stored_with_every_claim_gets_its_totals() -> None:
    # Demands stored before the ledger moved to its own collection kept the whole list.
    legacy = ClaimLedger.model_validate(
        {
            "claims": [
                {"id": "a", "headcount": 2, "state": "accepted", "checked_in": True},
                {"id": "b", "headcount": 3, "state": "withdrawn"},
                {"id": "c", "headcount": 1, "state": "accepted"},
            ]
        }
    )
    assert legacy.derived_filled == 3
    assert legacy.checked_in
    assert legacy.withdrawn("c", 1, at(1), 2).derived_filled == 2
    assert legacy.totals().claims == ()
