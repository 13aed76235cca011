"""Dispatch's wiring agrees with the catalogue and the topology: its consumer map names
exactly its queue's models and every refusal has its problem (that no event type is spelled
out is tests/shared/test_event_types_declared_once.py, for every service)."""

import pytest

from services.dispatch.config import DispatchSettings
from services.dispatch.domain import refusals
from services.dispatch.entrypoints import events
from services.dispatch.entrypoints.events import DISPATCH_UNIT_EVENTS
from services.dispatch.entrypoints.problems import REFUSALS
from services.topology import ALL_CONSUMER_QUEUES
from shared.runtime import ServiceRuntime

pytestmark = pytest.mark.unit


def test_the_consumer_map_names_exactly_the_models_of_the_queue() -> None:
    settings = DispatchSettings()
    assert tuple(events.UNIT_EVENTS) == DISPATCH_UNIT_EVENTS.events
    runtime = ServiceRuntime("dispatch", settings, topology=ALL_CONSUMER_QUEUES)
    events.register_consumers(runtime, settings)  # start-up's check: no ValueError
    assert [consumer.spec for consumer in runtime.consumers] == [DISPATCH_UNIT_EVENTS]


def _subclasses(cls: type[refusals.Refusal]) -> set[type[refusals.Refusal]]:
    found: set[type[refusals.Refusal]] = set()
    for direct in cls.__subclasses__():
        found |= {direct, *_subclasses(direct)}
    return found


def test_every_refusal_is_in_the_problem_table() -> None:
    assert set(REFUSALS) == _subclasses(refusals.Refusal)
