"""Units' consumers, each case run in memory (TestRabbitBroker) and on the real RabbitMQ,
on the real Mongo wire server: each demand event lands in units' copy once; data that does
not fit stores nothing; a cancellation releases the claims it finds, caused by the event."""

import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from services.units.adapters import repository
from services.units.config import UnitsSettings
from services.units.domain.model import Claim
from services.units.entrypoints.events import register_consumers
from shared.clock import utcnow
from shared.events.catalogue import (
    Claimant,
    ClaimPromoted,
    ClaimReleased,
    CommunityRegistered,
    DemandCancelled,
    DemandDetails,
    DemandEscalated,
    DemandPublished,
    DemandReopened,
    DemandUpdated,
)
from shared.events.envelope import CloudEvent
from shared.runtime import ServiceRuntime
from shared.store.unit_of_work import Tx
from tests.support.brokers import Brokers
from tests.support.events import event_of


@pytest.fixture
async def runtime(brokers: Brokers, mongodb_url: str) -> AsyncIterator[ServiceRuntime]:
    settings = UnitsSettings(
        mongodb_url=mongodb_url,
        rabbitmq_url=brokers.url,
        db_prefix=f"mem{uuid.uuid4().hex[:8]}_",
    )
    runtime = ServiceRuntime("units", settings)
    register_consumers(runtime)
    try:
        async with brokers.running(runtime.broker):
            yield runtime
    finally:
        await runtime.client.drop_database(runtime.db.name)
        await runtime.client.close()


async def deliver(brokers: Brokers, runtime: ServiceRuntime, *events: CloudEvent) -> None:
    for event in events:
        await brokers.deliver(runtime.broker, event, to=runtime.consumers)


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
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    event = published()
    community = CommunityRegistered(community_id="c-m", name="M", street="s-m", district="d-m")
    await deliver(brokers, runtime, event_of(community, subject="c-m"), event, event)

    demand = await runtime.db["demands"].find_one({"_id": "dem_m1"})
    assert demand is not None
    assert (demand["status"], demand["accepted"], demand["slots"]) == ("open", 0, 2)
    # The published half only: the exact place and description come by `demand.details`.
    assert (demand["location"]["building"], demand["description"]) == (None, None)
    assert len(demand["check_in_code"]) == 6
    timers = await runtime.db["timers"].find({}).to_list()
    assert [(t["_id"], t["kind"], t["state"]) for t in timers] == [
        ("no-show:dem_m1", "units.no-show", "pending")
    ]
    assert await runtime.db["processed_events"].count_documents({}) == 2  # the repeat: no effect
    assert await runtime.db["communities"].find_one({"_id": "c-m"}) is not None


async def test_escalation_raises_the_level_units_claims_against(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    escalated = DemandEscalated(
        demand_id="dem_m2",
        community_id="c-m",
        from_level="community",
        to_level="district",
        target="d-m",
        filled=0,
        slots=2,
    )
    await deliver(brokers, runtime, published("dem_m2"), event_of(escalated, subject="dem_m2"))
    demand = await runtime.db["demands"].find_one({"_id": "dem_m2"})
    assert demand is not None
    assert demand["level"] == "district"


async def test_data_that_does_not_fit_its_type_stores_nothing(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    broken = published("dem_m3").wire()
    broken["data"] = {**broken["data"], "slots": "many"}
    await brokers.deliver(
        runtime.broker,
        json.dumps(broken).encode(),
        to=runtime.consumers,
        routing_key=DemandPublished.TYPE,
    )
    assert await runtime.db["demands"].count_documents({}) == 0
    assert await runtime.db["processed_events"].count_documents({}) == 0


async def test_a_cancellation_that_overtakes_its_demand_still_closes_it(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    cancelled = DemandCancelled(demand_id="dem_m4", community_id="c-m", reason="duplicate")
    await deliver(brokers, runtime, event_of(cancelled, subject="dem_m4"), published("dem_m4"))
    demand = await runtime.db["demands"].find_one({"_id": "dem_m4"})
    assert demand is not None
    assert demand["status"] == "cancelled"
    assert await runtime.db["timers"].count_documents({}) == 0


async def test_a_cancellation_releases_the_claims_caused_by_the_event(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    await deliver(brokers, runtime, published("dem_m5"))
    now = utcnow()
    held = Claim(
        id="clm_m5",
        demand_id="dem_m5",
        community_id="c-m",
        claimant=Claimant(type="volunteer", id="vol_m5"),
        headcount=1,
        status="accepted",
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        created_at=now,
        created_by="v",
    )

    async def insert(tx: Tx) -> None:
        await repository.insert_claim(tx, held)

    await runtime.uow.run(insert)
    cancelled = event_of(
        DemandCancelled(demand_id="dem_m5", community_id="c-m", reason="rain"), subject="dem_m5"
    )
    await deliver(brokers, runtime, cancelled)

    claim = await runtime.db["claims"].find_one({"_id": "clm_m5"})
    assert claim is not None
    assert (claim["status"], claim["reason"]) == ("released", "rain")
    outbox = await runtime.db["outbox"].find({"type": ClaimReleased.TYPE}).to_list()
    assert len(outbox) == 1
    event = outbox[0]["event"]
    assert (event["subject"], event["correlationid"]) == ("dem_m5", "dem_m5")
    assert (event["causationid"], event["actor"], event["source"]) == (
        cancelled.id,
        "units",
        "/whistle/units",
    )
    assert event["data"]["reason"] == "rain"


async def test_private_details_are_kept_apart_from_the_demand(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    details = DemandDetails.model_validate(
        {
            "demand_id": "dem_m6",
            "community_id": "c-m",
            "description": "Ring twice",
            "location": {"grid": "G-7", "building": "3"},
        }
    )
    await deliver(brokers, runtime, event_of(details, subject="dem_m6"))
    stored = await runtime.db["demand_details"].find_one({"_id": "dem_m6"})
    assert stored is not None
    assert (stored["description"], stored["location"]["building"]) == ("Ring twice", "3")
    assert await runtime.db["demands"].count_documents({}) == 0


def edited(demand_id: str, version: int, **fields: object) -> CloudEvent:
    data = DemandUpdated.model_validate(
        {
            "demand_id": demand_id,
            "community_id": "c-m",
            "version": version,
            "changed": tuple(fields),
            "title": "Groceries to building 3",
            "slots": 2,
            "priority": "critical",
            "skills": ("driving",),
            "fill_by": utcnow() + timedelta(hours=12),
            **fields,
        }
    )
    return event_of(data, subject=demand_id)


async def test_an_edit_changes_units_copy_and_an_older_one_arriving_late_does_not(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    fill_by = (utcnow() + timedelta(hours=3)).replace(microsecond=0)
    newer = edited(
        "dem_u1", 3, title="Soup", priority="routine", skills=("cooking",), fill_by=fill_by
    )
    await deliver(brokers, runtime, published("dem_u1"), newer, edited("dem_u1", 2, title="Old"))

    demand = await runtime.db["demands"].find_one({"_id": "dem_u1"})
    assert demand is not None
    assert (demand["title"], demand["priority"], demand["priority_rank"]) == ("Soup", "routine", 2)
    assert (demand["skills"], demand["edit_version"]) == (["cooking"], 3)
    assert demand["fill_by"].replace(tzinfo=fill_by.tzinfo) == fill_by


async def test_an_edit_that_overtakes_its_demand_is_applied_when_it_arrives(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    early = (edited("dem_u2", 2, title="Early", slots=4), edited("dem_u2", 3, title="Later"))
    await deliver(brokers, runtime, early[1], early[0], published("dem_u2"))

    demand = await runtime.db["demands"].find_one({"_id": "dem_u2"})
    assert demand is not None
    assert (demand["title"], demand["slots"], demand["edit_version"]) == ("Later", 2, 3)
    assert await runtime.db["early_edits"].count_documents({}) == 0


async def test_more_slots_promote_the_waitlist_into_them(
    brokers: Brokers, runtime: ServiceRuntime
) -> None:
    await deliver(brokers, runtime, published("dem_u3"))
    now = utcnow()

    def claim(claim_id: str, headcount: int, status: str) -> Claim:
        return Claim.model_validate(
            {
                "id": claim_id,
                "demand_id": "dem_u3",
                "community_id": "c-m",
                "claimant": {"type": "unit", "id": f"unit_{claim_id}"},
                "headcount": headcount,
                "status": status,
                "starts_at": now,
                "ends_at": now + timedelta(hours=2),
                "created_at": now,
                "created_by": "u",
            }
        )

    async def fill_and_wait(tx: Tx) -> None:
        demand = await repository.get_demand(tx.db, "dem_u3", tx)
        assert demand is not None
        assert await repository.take_slots(tx, demand, 2) is not None
        await repository.insert_claim(tx, claim("clm_u3a", 2, "accepted"))
        assert await repository.join_waitlist(tx, "dem_u3")
        await repository.insert_claim(tx, claim("clm_u3b", 1, "waitlisted"))

    await runtime.uow.run(fill_and_wait)
    await deliver(brokers, runtime, edited("dem_u3", 2, slots=3))

    waiting = await runtime.db["claims"].find_one({"_id": "clm_u3b"})
    assert waiting is not None
    assert waiting["status"] == "accepted"
    demand = await runtime.db["demands"].find_one({"_id": "dem_u3"})
    assert demand is not None
    assert (demand["accepted"], demand["slots"]) == (3, 3)
    promoted = await runtime.db["outbox"].find({"type": ClaimPromoted.TYPE}).to_list()
    assert [event["event"]["data"]["claim_id"] for event in promoted] == ["clm_u3b"]
    # Full before the edit and full again after the promotion: no reopening to report.
    assert await runtime.db["outbox"].count_documents({"type": DemandReopened.TYPE}) == 0
