"""Dispatch's wiring agrees with the topology: every event it handles reaches its queue, and
every refusal has its problem."""

import pytest

from services.dispatch.adapters import reach
from services.dispatch.domain import refusals
from services.dispatch.entrypoints import events
from services.dispatch.entrypoints.problems import PROBLEMS
from shared.broker.topology import DISPATCH_UNIT_EVENTS
from shared.events.catalogue import CATALOGUE

pytestmark = pytest.mark.unit


def test_the_queue_is_bound_to_exactly_the_events_dispatch_applies() -> None:
    applied = {*events.UNITS_FACT_MODELS, *reach.REGISTRATIONS}
    assert set(DISPATCH_UNIT_EVENTS.routing_keys) == applied


def test_each_handled_type_parses_with_its_catalogue_model() -> None:
    for event_type, model in events.UNITS_FACT_MODELS.items():
        assert CATALOGUE[event_type] is model


def _subclasses(cls: type[refusals.Refusal]) -> set[type[refusals.Refusal]]:
    found: set[type[refusals.Refusal]] = set()
    for direct in cls.__subclasses__():
        found |= {direct, *_subclasses(direct)}
    return found


def test_every_refusal_is_in_the_problem_table() -> None:
    assert set(PROBLEMS) == _subclasses(refusals.Refusal)
