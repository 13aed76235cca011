"""The contract's event catalogue in code: every type has a frozen, versioned data model."""

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shared.events.catalogue import (
    CATALOGUE,
    DemandPublished,
    EventData,
    UnknownEventType,
    data_model_for,
    read_data,
)
from shared.events.envelope import CloudEvent, make_event

pytestmark = pytest.mark.unit

# The contract's table of types (handbook/contract.md, "Types and producers").
CONTRACT_TYPES = {
    "community.registered",
    "demand.published",
    "demand.escalated",
    "demand.cancelled",
    "demand.completed",
    "demand.filled",
    "demand.reopened",
    "unit.registered",
    "volunteer.registered",
    "claim.accepted",
    "claim.waitlisted",
    "claim.promoted",
    "claim.withdrawn",
    "claim.released",
    "claim.checked_in",
    "claim.completed",
    "claim.no_show",
    "notification.sent",
    "notification.failed",
}
HANDBOOK = Path("/work/shared/handbook/contract.md")


def test_every_contract_type_has_a_model() -> None:
    assert set(CATALOGUE) >= CONTRACT_TYPES
    assert set(CATALOGUE) - CONTRACT_TYPES == {
        "demand.expired",
        # issue 10: corrections and erasure, and the private details audit never records
        "unit.updated",
        "volunteer.updated",
        "volunteer.erased",
        "demand.details",
        "unit.details",
        "volunteer.details",
        # issue 11: the event added to show that a new type is one model, one map entry
        "demand.updated",
        # issue 14: a secretary's one-claim waiver of an eligibility rule, and a change of a
        # community's fatigue limits
        "claim.eligibility_overridden",
        "community.updated",
        # issue 14: relay rosters (a confirmation; a unit taking on its committed turn) and
        # named rosters (names and substitutions, as counts and a digest)
        "roster.confirmed",
        "claim.commitment_accepted",
        "claim.members_named",
        "claim.member_substituted",
        # issue 13: a community's grid and its risk zones; issue 14: the zone rule
        "grid.uploaded",
        "zone.rated",
        "zone.rule_set",
        # issue 14: repeating demands (a series' batches, edits and cancellation)
        "series.published",
        "series.changed",
        "series.cancelled",
    }


@pytest.mark.skipif(not HANDBOOK.exists(), reason="handbook not present")
def test_contract_table_matches_the_list_above() -> None:
    table = [line for line in HANDBOOK.read_text().splitlines() if line.startswith("| ")]
    named = {
        name for line in table for name in re.findall(r"\b[a-z]+\.[a-z_]+\b", line.split("|")[1])
    }
    assert named == CONTRACT_TYPES


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_model_is_frozen_versioned_and_named_explicitly(event_type: str) -> None:
    model = data_model_for(event_type)
    assert event_type == model.TYPE
    assert model.event_type() == event_type
    assert isinstance(model.DATAVERSION, int)
    assert model.DATAVERSION >= 1
    assert model.model_config.get("frozen") is True


def test_unknown_type_is_an_error() -> None:
    with pytest.raises(UnknownEventType):
        data_model_for("demand.vanished")


def _published() -> DemandPublished:
    return DemandPublished(
        demand_id="d_1",
        community_id="c-north",
        street="s-1",
        district="d-1",
        kind="staffing",
        title="North gate checkpoint",
        slots=8,
        starts_at=datetime(2030, 5, 1, 0, tzinfo=UTC),
        ends_at=datetime(2030, 5, 1, 12, tzinfo=UTC),
        fill_by=datetime(2030, 5, 1, 0, tzinfo=UTC),
        priority="urgent",
        created_by="wang",
    )


def test_data_is_immutable() -> None:
    data = _published()
    with pytest.raises(ValidationError):
        data.slots = 9  # type: ignore[misc]


def test_envelope_round_trips_through_json() -> None:
    data = _published()
    event = make_event(
        data,
        source="/whistle/dispatch",
        subject="d_1",
        correlationid="d_1",
        causationid="req-1",
        actor="wang",
    )
    wire = json.loads(json.dumps(event.wire()))
    assert wire["specversion"] == "1.0"
    assert wire["type"] == "demand.published"
    assert wire["datacontenttype"] == "application/json"
    assert wire["dataversion"] == 2  # v2: the exact place and description left it
    assert {"correlationid", "causationid", "actor", "time", "id"} <= set(wire)
    again = CloudEvent.model_validate(wire)
    assert again == event
    assert read_data(DemandPublished, again.data, again.dataversion) == data


def test_envelope_keeps_unknown_extensions_and_data_ignores_unknown_fields() -> None:
    event = make_event(
        _published(), source="/s", subject="d_1", correlationid="d_1", causationid="c", actor="a"
    )
    wire = event.wire() | {"traceparent": "00-abc-01"}
    wire["data"] = wire["data"] | {"added_in_v2": True}
    again = CloudEvent.model_validate(wire)
    assert again.wire()["traceparent"] == "00-abc-01"
    assert read_data(DemandPublished, again.data, again.dataversion) == _published()


@pytest.mark.parametrize(
    "broken",
    [
        {"specversion": "0.3"},
        {"id": ""},
        {"time": "2030-05-01T00:00:00"},  # no offset
        {"dataversion": 0},
    ],
)
def test_envelope_refuses_bad_attributes(broken: dict[str, object]) -> None:
    event = make_event(
        _published(), source="/s", subject="d_1", correlationid="d_1", causationid="c", actor="a"
    )
    with pytest.raises(ValidationError):
        CloudEvent.model_validate(event.wire() | broken)


def test_data_missing_a_field_is_refused() -> None:
    data = _published().model_dump(mode="json")
    del data["slots"]
    with pytest.raises(ValidationError):
        read_data(DemandPublished, data, DemandPublished.DATAVERSION)


SERVICES = {"dispatch", "units", "notify", "audit", "console"}


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_each_model_declares_its_event_once(event_type: str) -> None:
    model = CATALOGUE[event_type]
    assert event_type == model.TYPE
    assert model.PRODUCER in SERVICES
    assert model.SUBJECT.strip()
    assert model.WHEN.strip()
    # Every older version can be read: one upcast per step up to the current version.
    assert set(model.UPCASTS) == set(range(1, model.DATAVERSION))


V1_DATA: dict[str, dict[str, Any]] = {
    "demand.published": {
        "demand_id": "d_1",
        "community_id": "c-1",
        "street": "s",
        "district": "d",
        "kind": "task",
        "title": "sandbags",
        "description": "behind the school",
        "location": {"grid": "g-4", "building": "7", "address": "Elm St 7"},
        "slots": 2,
        "starts_at": "2026-03-01T08:00:00Z",
        "ends_at": "2026-03-01T12:00:00Z",
        "fill_by": "2026-03-01T07:00:00Z",
        "priority": "urgent",
        "created_by": "sec",
    },
    "unit.registered": {
        "unit_id": "u-1",
        "name": "Fire brigade",
        "kind": "department",
        "communities": ["c-1"],
        "contact": {"email": "chief@example.org"},
    },
    "volunteer.registered": {
        "volunteer_id": "v-1",
        "name": "Ana Li",
        "community_id": "c-1",
        "building": "7",
        "contact": {"phone": "+1 555"},
    },
}


@pytest.mark.parametrize("event_type", sorted(V1_DATA))
def test_v1_personal_data_is_gone_after_the_upcast(event_type: str) -> None:
    model = CATALOGUE[event_type]
    data = read_data(model, V1_DATA[event_type], 1)
    dumped = json.dumps(data.model_dump(mode="json"))
    for personal in ("behind the school", "Elm St", "chief@", "Ana Li", "+1 555"):
        assert personal not in dumped


def test_declaring_a_model_in_the_catalogue_is_adding_the_event() -> None:
    from shared.events import catalogue

    declared = [
        value
        for value in vars(catalogue).values()
        if isinstance(value, type) and issubclass(value, EventData) and "TYPE" in vars(value)
    ]
    assert list(CATALOGUE.values()) == declared  # in the order written, none left out


def test_a_model_made_elsewhere_is_not_part_of_the_contract() -> None:
    class Elsewhere(EventData):
        TYPE = "tests.elsewhere"
        PRODUCER = "tests"
        SUBJECT = "nothing"
        WHEN = "never"

    assert "tests.elsewhere" not in CATALOGUE
