"""The pure fold: a demand as it stood after each prefix of its events."""

from datetime import timedelta

import pytest

from services.audit.domain.demand_state import DemandState, apply, fold
from shared.clock import as_utc
from shared.events.catalogue import DemandUpdated
from tests.audit.scenario import T0, scenario
from tests.support.events import event_of

pytestmark = pytest.mark.unit


def d1_events_until(minutes: float) -> list[dict[str, object]]:
    until = T0 + timedelta(minutes=minutes)
    return [
        e.wire() for e in scenario().events if e.data.get("demand_id") == "d1" and e.time <= until
    ]


def test_state_before_and_after_each_claim() -> None:
    assert fold(d1_events_until(-1), "d1") is None
    published = fold(d1_events_until(0), "d1")
    assert published is not None
    assert (published.status, published.filled, published.slots) == ("open", 0, 4)
    assert published.level == "community"
    assert not published.claims
    one = fold(d1_events_until(10), "d1")
    assert one is not None
    assert (one.status, one.filled) == ("open", 2)
    assert [(k.claimant_id, k.status) for k in one.claims.values()] == [("u-a", "accepted")]
    full = fold(d1_events_until(30), "d1")
    assert full is not None
    assert (full.status, full.filled, full.peak_filled) == ("filled", 4, 4)
    on_site = fold(d1_events_until(121), "d1")
    assert on_site is not None
    assert on_site.status == "in_progress"
    end = fold(d1_events_until(24 * 60), "d1")
    assert end is not None
    statuses = {k.claimant_id: k.status for k in end.claims.values()}
    assert statuses == {"u-a": "completed", "u-b": "no_show"}
    assert end.first_claim_at == T0 + timedelta(minutes=5)


def test_other_demands_and_notifications_change_nothing() -> None:
    events = [e.wire() for e in scenario().events]
    state = fold(events, "d1")
    assert state is not None
    d1_only = fold([e for e in events if e["data"].get("demand_id") == "d1"], "d1")
    assert d1_only is not None
    # The notification names d1 but is not a demand fact: only the event count differs.
    assert state.as_dict() | {"events": 0} == d1_only.as_dict() | {"events": 0}


def test_a_claim_before_its_whistle_is_completed_by_the_whistle() -> None:
    events = [e.wire() for e in scenario().events if e.data.get("demand_id") == "d3"]
    claim_first = [events[1], events[0], *events[2:]]
    state = fold(claim_first, "d3")
    assert state is not None
    assert state.published
    assert state.slots == 1
    assert state.community_id == "c-south"
    assert state.status == "completed"


def test_escalation_and_cancellation_and_unreadable_data() -> None:
    events = [e.wire() for e in scenario().events if e.data.get("demand_id") == "d4"]
    escalated = {
        **events[0],
        "type": "demand.escalated",
        "dataversion": 1,  # events[0] is a demand.published of a later version
        "data": {
            "demand_id": "d4",
            "community_id": "c-south",
            "from_level": "community",
            "to_level": "street",
            "target": "s-1",
            "filled": 0,
            "slots": 3,
        },
    }
    broken = {**events[0], "type": "claim.accepted", "data": {"demand_id": "d4"}}
    state: DemandState | None = None
    for event in [events[0], escalated, broken, events[1]]:
        state = apply(state, event, "d4")
    assert state is not None
    assert (state.level, state.status, state.events) == ("street", "cancelled", 3)


def test_an_edit_states_the_editable_fields_as_of_that_event() -> None:
    events = [e.wire() for e in scenario().events if e.data.get("demand_id") == "d4"]
    published = events[0]
    fill_by = T0 + timedelta(hours=5)
    edit = DemandUpdated(
        demand_id="d4",
        community_id="c-south",
        version=2,
        changed=("title", "slots", "skills", "fill_by"),
        title="Sandbags, north bank",
        slots=5,
        priority="critical",
        skills=("lifting",),
        fill_by=fill_by,
    )
    updated = event_of(edit, subject="d4").wire()
    before = fold([published], "d4")
    after = fold([published, updated], "d4")
    assert before is not None
    assert after is not None
    assert (after.title, after.slots, after.priority) == ("Sandbags, north bank", 5, "critical")
    assert (after.skills, after.fill_by) == (("lifting",), fill_by)
    assert (after.status, after.filled, after.events) == (before.status, before.filled, 2)
    assert after.as_dict()["fill_by"] == as_utc(fill_by).isoformat()
    assert (before.title, before.slots) != (after.title, after.slots)
