"""Audit's consumer, each case written once and run in memory and on the real RabbitMQ: the
events reach the log as sent, in their partitions, once; what cannot be read never does."""

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from services.audit.adapters import log_store
from services.audit.config import AuditSettings
from services.audit.domain.chain import chain_hash
from services.audit.entrypoints.events import register_consumers
from shared.events import catalogue as c
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.mongo import Document
from tests.support.brokers import Brokers
from tests.support.events import event_of


@pytest.fixture
async def runtime(brokers: Brokers, mongodb_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = AuditSettings(
        rabbitmq_url=brokers.url,
        mongodb_url=mongodb_url,
        db_prefix=f"t{uuid.uuid4().hex[:10]}_",
        env="development",
        outbox_poll_s=2.0,
    )
    runtime = ServiceRuntime("audit", settings)
    register_consumers(runtime)
    await log_store.ensure_indexes(runtime.db)
    yield runtime
    await runtime.client.drop_database(runtime.db.name)
    await runtime.client.close()


def registered(community: str, district: str) -> CloudEvent:
    data = c.CommunityRegistered(community_id=community, name="N", street="s", district=district)
    return event_of(data, subject=community)


def cancelled(demand: str, community: str) -> CloudEvent:
    data = c.DemandCancelled(demand_id=demand, community_id=community, reason="rain")
    return event_of(data, subject=demand)


async def stored(runtime: ServiceRuntime) -> list[Document]:
    found = runtime.db[log_store.EVENTS].find({}).sort([("partition", 1), ("seq", 1)])
    return await found.to_list()


async def test_events_go_to_their_district_in_order_and_once(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    events = [
        registered("c-n", "d-north"),
        registered("c-s", "d-south"),
        cancelled("dem-1", "c-n"),  # no district: it follows its community
        cancelled("dem-2", "c-s"),
    ]
    async with brokers.running(runtime.broker):
        for event in [*events, events[2]]:  # the last one twice
            await brokers.deliver(runtime.broker, event, to=runtime.consumers)
    records = await stored(runtime)
    by_partition: dict[str, list[str]] = {}
    for record in records:
        by_partition.setdefault(record["partition"], []).append(record["event_id"])
    assert by_partition == {
        "d-north": [events[0].id, events[2].id],
        "d-south": [events[1].id, events[3].id],
    }
    assert [r["seq"] for r in records] == [1, 2, 1, 2]
    assert await log_store.heads(runtime.db) == {
        "d-north": (2, records[1]["hash"]),
        "d-south": (2, records[3]["hash"]),
    }


async def test_the_producers_bytes_are_what_is_stored_and_hashed(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    event = registered("c-raw", "d-1")
    sent: dict[str, Any] = {**event.wire(), "time": "2026-03-01T00:00:00.5Z", "x-trace": "t"}
    async with brokers.running(runtime.broker):
        await brokers.deliver(
            runtime.broker, json.dumps(sent).encode(), routing_key=event.type, to=runtime.consumers
        )
    [record] = await stored(runtime)
    assert record["event"] == sent
    assert record["hash"] == chain_hash(record["prev_hash"], sent)


async def test_an_event_too_new_to_read_is_dead_lettered_not_logged(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    event = registered("c-new", "d-1")
    newer = {**event.wire(), "dataversion": c.CommunityRegistered.DATAVERSION + 1}
    async with brokers.running(runtime.broker):
        await brokers.deliver(
            runtime.broker, json.dumps(newer).encode(), routing_key=event.type, to=runtime.consumers
        )
    assert await stored(runtime) == []
