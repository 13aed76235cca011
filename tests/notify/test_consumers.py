"""Notify's consumers, each case written once and run in memory (TestRabbitBroker) and on the
real RabbitMQ: the maps match the queues, events reach the right inboxes through the real
handlers and the real store, a redelivery changes nothing, bad data is dead-lettered."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from services.notify.adapters import deliveries, directory, inbox
from services.notify.config import NotifySettings
from services.notify.domain.model import Policy
from services.notify.entrypoints import events
from services.notify.entrypoints.events import NOTIFY_EVENTS, NOTIFY_PRIVATE
from shared.events.catalogue import ClaimAccepted
from shared.runtime import ServiceRuntime
from shared.store.outbox import ensure_outbox_indexes
from shared.store.timers import ensure_timer_indexes
from tests.notify import scenario as s
from tests.support.brokers import Brokers

POLICY = Policy(reminder_lead=timedelta(hours=2), email_enabled=False)


def test_the_maps_name_exactly_the_models_of_notify_s_queues() -> None:
    assert set(events.EVENTS) == set(NOTIFY_EVENTS.events)
    assert set(events.PRIVATE) == set(NOTIFY_PRIVATE.events)


def test_start_up_fails_when_a_map_and_its_queue_disagree(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime = ServiceRuntime("notify", NotifySettings(env="development"))
    partial = {model: work for model, work in events.EVENTS.items() if model is not ClaimAccepted}
    monkeypatch.setattr(events, "EVENTS", partial)
    with pytest.raises(ValueError, match="no handler for ClaimAccepted"):
        events.register_consumers(runtime, POLICY, lambda: None)


@dataclass
class Notify:
    runtime: ServiceRuntime
    woken: list[bool] = field(default_factory=list)

    async def kinds(self, owner: str) -> list[str]:
        items = await inbox.page(self.runtime.db, owner, before=None, limit=50, unread_only=False)
        return sorted(item["kind"] for item in items)


@asynccontextmanager
async def notify(brokers: Brokers, mongodb_url: str) -> AsyncIterator[Notify]:
    settings = NotifySettings(
        env="development",
        rabbitmq_url=brokers.url,
        mongodb_url=mongodb_url,
        db_prefix=f"t{uuid.uuid4().hex[:10]}_",
    )
    runtime = ServiceRuntime("notify", settings)
    for setup in (
        directory.ensure_indexes,
        inbox.ensure_indexes,
        deliveries.ensure_indexes,
        ensure_timer_indexes,
        ensure_outbox_indexes,
    ):
        await setup(runtime.db)
    running = Notify(runtime)
    events.register_consumers(runtime, POLICY, lambda: running.woken.append(True))
    try:
        async with brokers.running(runtime.broker):
            yield running
    finally:
        await runtime.client.close()


async def test_events_from_both_queues_reach_the_right_inboxes(
    brokers: Brokers, mongodb_url: str
) -> None:
    flow = [
        s.community("c-1"),
        s.volunteer_details("v-1", "c-1", webhook_url="http://127.0.0.1:9/v"),  # private queue
        s.volunteer("v-1", "c-1", ["first aid"]),
        *s.reachable_unit("u-1", ["c-1"], ["first aid"]),
        s.published("d-1", "c-1", ["first aid"]),
        s.claim(ClaimAccepted, "d-1", "c-1", ("volunteer", "v-1")),
        s.filled("d-1", "c-1"),
    ]
    async with notify(brokers, mongodb_url) as running:
        for event in flow:
            await brokers.deliver(running.runtime.broker, event, to=running.runtime.consumers)
        assert await running.kinds("volunteer:v-1") == ["claim.accepted", "demand.published"]
        assert await running.kinds("unit:u-1") == ["demand.published"]
        assert await running.kinds("office:c-1") == ["demand.filled"]
        # The volunteer's webhook (from the private details) is owed both notifications.
        owed = await running.runtime.db[deliveries.DELIVERIES].count_documents(
            {"recipient.id": "v-1", "channel": "webhook"}
        )
        assert owed == 2
    assert len(running.woken) == len(flow)


async def test_a_roster_turn_is_heard_by_its_unit_only(brokers: Brokers, mongodb_url: str) -> None:
    flow = [
        s.community("c-1"),
        s.volunteer("v-1", "c-1"),
        *s.reachable_unit("u-1", ["c-1"], []),
        *s.reachable_unit("u-2", ["c-1"], []),
        s.published("d-1", "c-1", committed_unit_id="u-2"),
    ]
    async with notify(brokers, mongodb_url) as running:
        for event in flow:
            await brokers.deliver(running.runtime.broker, event, to=running.runtime.consumers)
        assert await running.kinds("unit:u-2") == ["demand.published"]
        assert await running.kinds("unit:u-1") == []
        assert await running.kinds("volunteer:v-1") == []


async def test_a_redelivered_event_changes_nothing_and_wakes_nothing(
    brokers: Brokers, mongodb_url: str
) -> None:
    published = s.published("d-1", "c-1")
    async with notify(brokers, mongodb_url) as running:
        broker, consumers = running.runtime.broker, running.runtime.consumers
        for event in (s.community("c-1"), s.volunteer("v-1", "c-1"), published, published):
            await brokers.deliver(broker, event, to=consumers)
        assert await running.kinds("volunteer:v-1") == ["demand.published"]
    assert len(running.woken) == 3


async def test_data_that_does_not_fit_is_dead_lettered_and_stores_nothing(
    brokers: Brokers, mongodb_url: str
) -> None:
    labels = {
        "service": "notify",
        "queue": NOTIFY_EVENTS.name,
        "type": "demand.published",
        "outcome": "dead_lettered",
    }
    before = REGISTRY.get_sample_value("whistle_messages_consumed_total", labels) or 0.0
    broken = s.published("d-1", "c-1")
    broken = broken.model_copy(update={"data": {"demand_id": "d-1"}})  # most fields missing
    async with notify(brokers, mongodb_url) as running:
        await brokers.deliver(running.runtime.broker, broken, to=running.runtime.consumers)
        processed = await running.runtime.db["processed_events"].count_documents({})
    assert REGISTRY.get_sample_value("whistle_messages_consumed_total", labels) == before + 1
    assert processed == 0
    assert running.woken == []
