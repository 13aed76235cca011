"""Series events in the log (pure): they go to their community's partition (no demand of
their own to fix a route), and a demand's replayed state names the series it belongs to."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.audit.domain.demand_state import fold
from services.audit.domain.partitions import PartitionBy, place
from shared.events import catalogue as c
from tests.support.events import event_of

pytestmark = pytest.mark.unit

STARTS = datetime(2026, 12, 2, tzinfo=UTC)


def wire(data: c.EventData, subject: str) -> dict[str, Any]:
    return event_of(data, subject=subject).wire()


SERIES_EVENTS = [
    wire(
        c.SeriesPublished(
            series_id="ser_1",
            community_id="c-1",
            rrule="FREQ=DAILY;COUNT=3",
            demand_ids=("dem_1",),
            starts=(STARTS,),
        ),
        "ser_1",
    ),
    wire(
        c.SeriesChanged(
            series_id="ser_1",
            community_id="c-1",
            version=2,
            changed=("title",),
            rrule="FREQ=DAILY;COUNT=3",
            updated=("dem_1",),
        ),
        "ser_1",
    ),
    wire(
        c.SeriesCancelled(series_id="ser_1", community_id="c-1", reason="r", cancelled=("dem_1",)),
        "ser_1",
    ),
]


def test_series_events_are_public_and_go_to_their_communitys_partition() -> None:
    audited = c.public_models()
    assert {c.SeriesPublished, c.SeriesChanged, c.SeriesCancelled} <= set(audited)
    known = {"community:c-1": "d-1"}
    for event in SERIES_EVENTS:
        routed = place(event, PartitionBy.DISTRICT, known)
        assert routed.partition == "d-1"
        assert routed.fixes == {}  # no demand route is fixed by a series event


def test_a_series_demand_replays_with_its_series_and_series_events_change_no_demand() -> None:
    published = wire(
        c.DemandPublished(
            demand_id="dem_1",
            community_id="c-1",
            street="s-1",
            district="d-1",
            kind="staffing",
            title="Morning gate",
            slots=2,
            starts_at=STARTS,
            ends_at=STARTS + timedelta(hours=4),
            fill_by=STARTS,
            priority="routine",
            created_by="li",
            series_id="ser_1",
        ),
        "dem_1",
    )
    state = fold([published, *SERIES_EVENTS], "dem_1")
    assert state is not None
    assert state.series_id == "ser_1"
    assert state.as_dict()["series_id"] == "ser_1"
    assert state.events == 1  # the series' own events are the series' story, not the demand's
    assert state.status == "open"
