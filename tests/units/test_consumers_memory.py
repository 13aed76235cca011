"""Units' consumer through FastStream's in-memory broker, on the real Mongo wire server:
each demand event lands in units' copy once; data that does not fit stores nothing."""

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from faststream.rabbit import TestRabbitBroker

from services.units.config import UnitsSettings
from services.units.entrypoints.events import register_consumers
from shared.broker.topology import EVENTS_EXCHANGE, UNITS_DEMAND_EVENTS
from shared.clock import utcnow
from shared.events.catalogue import (
    CommunityRegistered,
    DemandCancelled,
    DemandEscalated,
    DemandPublished,
)
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from tests.support.events import event_of

pytestmark = pytest.mark.memory


@pytest.fixture
async def runtime(mongodb_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = UnitsSettings(mongodb_url=mongodb_url, db_prefix=f"mem{uuid.uuid4().hex[:8]}_")
    runtime = ServiceRuntime("units", settings)
    register_consumers(runtime)
    try:
        yield runtime
    finally:
        await runtime.client.drop_database(runtime.db.name)
        await runtime.client.close()


async def deliver(runtime: ServiceRuntime, *events: CloudEvent | dict[str, Any]) -> None:
    async with TestRabbitBroker(runtime.broker) as broker:
        for event in events:
            body = event.wire() if isinstance(event, CloudEvent) else event
            # The in-memory broker binds only a queue's first key (the rest are bound on the
            # real broker at start, tested in the e2e modules); the handler goes by `type`.
            await broker.publish(
                body, exchange=EVENTS_EXCHANGE, routing_key=UNITS_DEMAND_EVENTS.routing_keys[0]
            )


def published(demand_id: str = "dem_m1") -> CloudEvent:
    starts = utcnow() + timedelta(days=1)
    data = DemandPublished(
        demand_id=demand_id,
        community_id="c-m",
        street="s-m",
        district="d-m",
        kind="task",
        title="Groceries to building 3",
        skills=("driving",),
        slots=2,
        starts_at=starts,
        ends_at=starts + timedelta(hours=2),
        fill_by=starts,
        priority="critical",
        created_by="secretary",
    )
    return event_of(data, subject=demand_id)


async def test_a_published_demand_is_copied_once_with_a_code_and_a_no_show_timer(
    runtime: ServiceRuntime,
) -> None:
    event = published()
    community = CommunityRegistered(community_id="c-m", name="M", street="s-m", district="d-m")
    await deliver(runtime, event_of(community, subject="c-m"), event, event)

    demand = await runtime.db["demands"].find_one({"_id": "dem_m1"})
    assert demand is not None
    assert (demand["status"], demand["accepted"], demand["slots"]) == ("open", 0, 2)
    assert len(demand["check_in_code"]) == 6
    timers = await runtime.db["timers"].find({}).to_list()
    assert [(t["_id"], t["kind"], t["state"]) for t in timers] == [
        ("no-show:dem_m1", "units.no-show", "pending")
    ]
    assert await runtime.db["processed_events"].count_documents({}) == 2  # the repeat: no effect
    assert await runtime.db["communities"].find_one({"_id": "c-m"}) is not None


async def test_escalation_raises_the_level_units_claims_against(runtime: ServiceRuntime) -> None:
    escalated = DemandEscalated(
        demand_id="dem_m2",
        community_id="c-m",
        from_level="community",
        to_level="district",
        target="d-m",
        filled=0,
        slots=2,
    )
    await deliver(runtime, published("dem_m2"), event_of(escalated, subject="dem_m2"))
    demand = await runtime.db["demands"].find_one({"_id": "dem_m2"})
    assert demand is not None
    assert demand["level"] == "district"


async def test_data_that_does_not_fit_its_type_stores_nothing(runtime: ServiceRuntime) -> None:
    broken = published("dem_m3").wire()
    broken["data"] = {**broken["data"], "slots": "many"}
    await deliver(runtime, broken)
    assert await runtime.db["demands"].count_documents({}) == 0
    assert await runtime.db["processed_events"].count_documents({}) == 0


async def test_a_cancellation_that_overtakes_its_demand_still_closes_it(
    runtime: ServiceRuntime,
) -> None:
    cancelled = DemandCancelled(demand_id="dem_m4", community_id="c-m", reason="duplicate")
    await deliver(runtime, event_of(cancelled, subject="dem_m4"), published("dem_m4"))
    demand = await runtime.db["demands"].find_one({"_id": "dem_m4"})
    assert demand is not None
    assert demand["status"] == "cancelled"
    assert await runtime.db["timers"].count_documents({}) == 0
