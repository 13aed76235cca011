"""Dispatch's wiring agrees with the catalogue and the topology: its consumer map names
exactly its queue's models, every refusal has its problem, and no event type is spelled out
anywhere in dispatch (the catalogue is the one place)."""

import re
from pathlib import Path

import pytest

from services.dispatch.config import DispatchSettings
from services.dispatch.domain import refusals
from services.dispatch.entrypoints import events
from services.dispatch.entrypoints.problems import REFUSALS
from shared.broker.topology import DISPATCH_UNIT_EVENTS
from shared.events.catalogue import CATALOGUE
from shared.runtime import ServiceRuntime

pytestmark = pytest.mark.unit

DISPATCH = Path(__file__).resolve().parents[2] / "services" / "dispatch"


def test_the_consumer_map_names_exactly_the_models_of_the_queue() -> None:
    settings = DispatchSettings()
    assert set(events.handlers(settings)) == set(DISPATCH_UNIT_EVENTS.events)
    runtime = ServiceRuntime("dispatch", settings)
    events.register_consumers(runtime, settings)  # start-up's check: no ValueError
    assert [consumer.spec for consumer in runtime.consumers] == [DISPATCH_UNIT_EVENTS]


def _subclasses(cls: type[refusals.Refusal]) -> set[type[refusals.Refusal]]:
    found: set[type[refusals.Refusal]] = set()
    for direct in cls.__subclasses__():
        found |= {direct, *_subclasses(direct)}
    return found


def test_every_refusal_is_in_the_problem_table() -> None:
    assert set(REFUSALS) == _subclasses(refusals.Refusal)


def test_no_event_type_is_spelled_out_in_dispatch() -> None:
    spelled = re.compile("|".join(rf"[\"']{re.escape(name)}[\"']" for name in CATALOGUE))
    found = [
        f"{path.relative_to(DISPATCH)}: {match.group()}"
        for path in DISPATCH.rglob("*.py")
        for match in spelled.finditer(path.read_text(encoding="utf-8"))
    ]
    assert found == []
