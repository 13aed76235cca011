"""Notify's consumer wiring through FastStream's in-memory broker: routing, duplicates, poison."""

from datetime import timedelta
from typing import Any

import pytest
from faststream.rabbit import TestRabbitBroker
from prometheus_client import REGISTRY

from services.notify.config import NotifySettings
from services.notify.entrypoints import events
from services.notify.handlers import EVENT_HANDLERS
from services.notify.notifying import Policy
from shared.broker.topology import EVENTS_EXCHANGE, NOTIFY_EVENTS
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from tests.notify import scenario as s

pytestmark = pytest.mark.memory

POLICY = Policy(reminder_lead=timedelta(hours=2, minutes=15), email_enabled=False)


def _envelope(event_type: str, data: dict[str, Any] | None = None) -> CloudEvent:
    template = s.community("c-1")
    return template.model_copy(update={"type": event_type, "data": data or {}})


def _runtime(
    monkeypatch: pytest.MonkeyPatch, applied: list[str], fresh: bool = True
) -> ServiceRuntime:
    runtime = ServiceRuntime("notify", NotifySettings(env="development"))

    async def run_once(consumer: str, event: CloudEvent, work: Any) -> bool:
        applied.append(event.type)
        return fresh

    monkeypatch.setattr(runtime.uow, "run_once", run_once)
    return runtime


# In memory every binding routes (tests/support/brokers.py); the e2e tests cover claim and
# registry events.
DEMAND_TYPES = [t for t in EVENT_HANDLERS if t.startswith("demand.")]


def test_every_handled_type_is_bound_to_notify_s_queue() -> None:
    def matches(pattern: str, event_type: str) -> bool:
        head, _, rest = pattern.partition(".")
        first, _, tail = event_type.partition(".")
        return head == first and rest in ("*", tail)

    for event_type in EVENT_HANDLERS:
        assert any(matches(key, event_type) for key in NOTIFY_EVENTS.routing_keys), event_type


async def test_each_demand_event_reaches_its_handler_and_wakes_deliveries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    applied: list[str] = []
    woken: list[bool] = []
    runtime = _runtime(monkeypatch, applied)
    events.register_consumers(runtime, POLICY, lambda: woken.append(True))
    async with TestRabbitBroker(runtime.broker) as broker:
        for event_type in DEMAND_TYPES:
            event = _envelope(event_type)
            await broker.publish(event.wire(), exchange=EVENTS_EXCHANGE, routing_key=event_type)
    assert applied == DEMAND_TYPES
    assert len(woken) == len(DEMAND_TYPES)
    assert "demand.published" in applied


async def test_a_duplicate_wakes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    applied: list[str] = []
    woken: list[bool] = []
    runtime = _runtime(monkeypatch, applied, fresh=False)
    events.register_consumers(runtime, POLICY, lambda: woken.append(True))
    event = _envelope("demand.published")
    async with TestRabbitBroker(runtime.broker) as broker:
        await broker.publish(event.wire(), exchange=EVENTS_EXCHANGE, routing_key=event.type)
    assert applied == ["demand.published"]
    assert woken == []


async def test_data_that_does_not_fit_is_dead_lettered_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = ServiceRuntime("notify", NotifySettings(env="development"))

    async def run_once(consumer: str, event: CloudEvent, work: Any) -> bool:
        await work(None)  # the handler parses `data` before it touches the transaction
        return True

    monkeypatch.setattr(runtime.uow, "run_once", run_once)
    events.register_consumers(runtime, POLICY, lambda: None)
    labels = {
        "service": "notify",
        "queue": "notify.events",
        "type": "demand.published",
        "outcome": "dead_lettered",
    }
    before = REGISTRY.get_sample_value("whistle_messages_consumed_total", labels) or 0.0
    event = _envelope("demand.published", {"demand_id": "d-1"})  # most fields missing
    async with TestRabbitBroker(runtime.broker) as broker:
        await broker.publish(event.wire(), exchange=EVENTS_EXCHANGE, routing_key=event.type)
    after = REGISTRY.get_sample_value("whistle_messages_consumed_total", labels)
    assert after == before + 1
