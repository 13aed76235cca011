"""The demand's status machine: every transition, every refusal (no I/O)."""

import pytest

from services.dispatch.domain import lifecycle
from services.dispatch.domain.lifecycle import Lifecycle, Status
from services.dispatch.domain.refusals import DemandClosed, DemandNotStarted

pytestmark = pytest.mark.unit

ALL: tuple[Status, ...] = ("open", "filled", "in_progress", "completed", "cancelled", "expired")
CLOSED: tuple[Status, ...] = ("completed", "cancelled", "expired")
LIVE: tuple[Status, ...] = ("open", "filled", "in_progress")


def state(status: Status, filled: int = 0, slots: int = 4) -> Lifecycle:
    return Lifecycle(status, filled, slots)


def test_open_becomes_filled_when_the_last_slot_is_taken() -> None:
    assert lifecycle.with_fill(state("open", 3), 4) == state("filled", 4)


def test_open_stays_open_while_slots_remain() -> None:
    assert lifecycle.with_fill(state("open", 1), 3) == state("open", 3)


def test_filled_reopens_when_a_slot_opens_again() -> None:
    assert lifecycle.with_fill(state("filled", 4), 3) == state("open", 3)


def test_a_fill_figure_beyond_the_slots_is_capped() -> None:
    assert lifecycle.with_fill(state("open"), 9) == state("filled", 4)
    assert lifecycle.with_fill(state("open"), -1) == state("open", 0)


def test_in_progress_keeps_its_status_as_the_fill_changes() -> None:
    assert lifecycle.with_fill(state("in_progress", 4), 2) == state("in_progress", 2)


@pytest.mark.parametrize("status", CLOSED)
def test_a_closed_demand_records_the_fill_but_keeps_its_status(status: Status) -> None:
    assert lifecycle.with_fill(state(status, 2), 4) == state(status, 4)


@pytest.mark.parametrize("status", ["open", "filled"])
def test_the_first_check_in_starts_the_demand(status: Status) -> None:
    assert lifecycle.start(state(status, 2)) == state("in_progress", 2)


@pytest.mark.parametrize("status", ["in_progress", *CLOSED])
def test_a_check_in_after_the_start_or_the_end_changes_nothing(status: Status) -> None:
    assert lifecycle.start(state(status, 2)) == state(status, 2)


@pytest.mark.parametrize("status", LIVE)
def test_a_live_demand_can_be_cancelled(status: Status) -> None:
    assert lifecycle.cancel(state(status, 2)) == state("cancelled", 2)


@pytest.mark.parametrize("status", CLOSED)
def test_a_closed_demand_cannot_be_cancelled(status: Status) -> None:
    with pytest.raises(DemandClosed):
        lifecycle.cancel(state(status))


@pytest.mark.parametrize(("status", "filled"), [("filled", 4), ("in_progress", 1), ("open", 2)])
def test_a_demand_someone_answered_can_be_completed(status: Status, filled: int) -> None:
    assert lifecycle.complete(state(status, filled)) == state("completed", filled)


def test_an_open_demand_nobody_answered_cannot_be_completed() -> None:
    with pytest.raises(DemandNotStarted):
        lifecycle.complete(state("open", 0))


@pytest.mark.parametrize("status", CLOSED)
def test_a_closed_demand_cannot_be_completed(status: Status) -> None:
    with pytest.raises(DemandClosed):
        lifecycle.complete(state(status, 4))


@pytest.mark.parametrize("status", LIVE)
def test_a_live_demand_expires(status: Status) -> None:
    assert lifecycle.expire(state(status, 1)) == state("expired", 1)


@pytest.mark.parametrize("status", CLOSED)
def test_a_closed_demand_does_not_expire(status: Status) -> None:
    assert lifecycle.expire(state(status)) is None


@pytest.mark.parametrize(
    ("status", "expires"),
    [("open", True), ("filled", True), ("in_progress", False), ("completed", False)],
)
def test_at_ends_at_only_a_demand_never_started_expires_at_once(
    status: Status, expires: bool
) -> None:
    assert lifecycle.expires_at_end(state(status)) is expires


def test_an_open_demand_climbs_the_ladder_to_the_district_and_stops() -> None:
    assert lifecycle.should_escalate(state("open"), "community") == "street"
    assert lifecycle.should_escalate(state("open"), "street") == "district"
    assert lifecycle.should_escalate(state("open"), "district") is None


@pytest.mark.parametrize("status", ["filled", "in_progress", *CLOSED])
def test_escalation_stops_once_filled_started_or_closed(status: Status) -> None:
    assert lifecycle.should_escalate(state(status), "community") is None


def test_every_status_is_covered() -> None:
    assert set(ALL) == set(Status.__args__)  # type: ignore[attr-defined]
