"""Dispatch's wiring agrees with the topology: every event it handles reaches its queue."""

import pytest

from services.dispatch import handlers
from services.dispatch.adapters import reach
from shared.broker.topology import DISPATCH_UNIT_EVENTS
from shared.events.catalogue import CATALOGUE

pytestmark = pytest.mark.unit


def test_the_queue_is_bound_to_exactly_the_events_dispatch_applies() -> None:
    applied = {*handlers.UNITS_EVENT_MODELS, *reach.REGISTRATIONS}
    assert set(DISPATCH_UNIT_EVENTS.routing_keys) == applied


def test_each_handled_type_parses_with_its_catalogue_model() -> None:
    for event_type, model in handlers.UNITS_EVENT_MODELS.items():
        assert CATALOGUE[event_type] is model
