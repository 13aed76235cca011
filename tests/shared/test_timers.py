"""Stored timers: two wheels on one database fire each due timer exactly once."""

import asyncio
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from shared.clock import utcnow
from shared.events.catalogue import DemandExpired
from shared.store.mongo import Database, Document
from shared.store.outbox import OUTBOX_COLLECTION
from shared.store.timers import (
    TIMERS_COLLECTION,
    TimerHandler,
    TimerWheel,
    cancel,
    ensure_timer_indexes,
    schedule,
)
from shared.store.unit_of_work import Tx, UnitOfWork
from tests.shared.runtime_support import eventually

pytestmark = pytest.mark.broker


def _wheel(uow: UnitOfWork, owner: str, handler: TimerHandler) -> TimerWheel:
    return TimerWheel(uow, {"expire": handler}, service="tests", owner=owner, poll_s=0.05)


async def test_two_wheels_fire_each_timer_once_with_its_effect(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    await ensure_timer_indexes(db)
    uow = UnitOfWork(mongo_client, db)
    fired_by: list[tuple[str, str]] = []

    def handler_for(owner: str) -> TimerHandler:
        async def expire(tx: Tx, timer: Document) -> None:
            fired_by.append((owner, timer["_id"]))
            demand_id = timer["payload"]["demand_id"]
            await tx.db.demands.update_one(
                {"_id": demand_id}, {"$inc": {"expired": 1}}, upsert=True, session=tx.session
            )
            tx.emit(
                DemandExpired(demand_id=demand_id, community_id="c", filled=0, slots=1),
                subject=demand_id,
            )

        return expire

    now = utcnow()

    async def plan(tx: Tx) -> None:
        for n in range(8):
            await schedule(tx, f"expire:d_{n}", "expire", now, {"demand_id": f"d_{n}"})
        await schedule(tx, "expire:later", "expire", now + timedelta(hours=1), {"demand_id": "x"})
        await schedule(tx, "expire:cancelled", "expire", now, {"demand_id": "y"})
        await cancel(tx, "expire:cancelled")

    await uow.run(plan)
    wheels = [_wheel(uow, owner, handler_for(owner)) for owner in ("replica-a", "replica-b")]
    tasks = [asyncio.create_task(wheel.run()) for wheel in wheels]
    try:

        async def all_fired() -> bool:
            return await db[TIMERS_COLLECTION].count_documents({"state": "fired"}) == 8

        await eventually(all_fired)
        await asyncio.sleep(0.3)  # both wheels poll again: nothing fires twice
    finally:
        for wheel in wheels:
            wheel.stop()
        await asyncio.gather(*tasks)
    # A handler may run again when its transaction is retried; its effect commits once.
    assert {key for _, key in fired_by} == {f"expire:d_{n}" for n in range(8)}
    demands = await db.demands.find({}).to_list()
    assert sorted(d["_id"] for d in demands) == [f"d_{n}" for n in range(8)]
    assert {d["expired"] for d in demands} == {1}
    emitted = await db[OUTBOX_COLLECTION].find({"type": DemandExpired.TYPE}).to_list()
    assert len(emitted) == 8
    # The timer is the cause of what its handler emits; the service acts.
    assert {(e["event"]["causationid"], e["event"]["subject"]) for e in emitted} == {
        (f"timer:expire:d_{n}", f"d_{n}") for n in range(8)
    }
    assert {(e["event"]["actor"], e["event"]["source"]) for e in emitted} == {
        ("tests", "/whistle/tests")
    }
    later = await db[TIMERS_COLLECTION].find_one({"_id": "expire:later"})
    cancelled = await db[TIMERS_COLLECTION].find_one({"_id": "expire:cancelled"})
    assert later is not None
    assert later["state"] == "pending"
    assert cancelled is not None
    assert cancelled["state"] == "cancelled"


async def test_a_failing_firing_changes_nothing_and_is_retried(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    await ensure_timer_indexes(db)
    uow = UnitOfWork(mongo_client, db)
    calls = 0

    async def flaky(tx: Tx, timer: Document) -> None:
        nonlocal calls
        calls += 1
        await tx.db.effects.insert_one({"call": calls}, session=tx.session)
        if calls == 1:
            raise RuntimeError("first firing fails")

    async def plan(tx: Tx) -> None:
        await schedule(tx, "t1", "expire", utcnow(), {})

    await uow.run(plan)
    wheel = TimerWheel(
        uow, {"expire": flaky}, service="t", owner="a", poll_s=0.05, retry_base_s=0.05
    )
    task = asyncio.create_task(wheel.run())
    try:

        async def fired() -> bool:
            return await db[TIMERS_COLLECTION].count_documents({"state": "fired"}) == 1

        await eventually(fired)
    finally:
        wheel.stop()
        await task
    assert calls == 2
    assert [d["call"] async for d in db.effects.find({})] == [2]


async def test_a_timer_that_keeps_failing_is_given_up_after_bounded_tries_and_counted(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    await ensure_timer_indexes(db)
    uow = UnitOfWork(mongo_client, db)
    calls = 0

    async def broken(tx: Tx, timer: Document) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("the handler is broken")

    async def working(tx: Tx, timer: Document) -> None:
        await tx.db.effects.insert_one({"timer": timer["_id"]}, session=tx.session)

    async def plan(tx: Tx) -> None:
        await schedule(tx, "bad", "broken", utcnow(), {})
        await schedule(tx, "good", "working", utcnow() + timedelta(milliseconds=300), {})

    await uow.run(plan)
    kind = f"broken-{id(db)}"  # a label of its own: the registry is process-wide
    wheel = TimerWheel(
        uow,
        {"broken": broken, "working": working},
        service=kind,
        owner="a",
        poll_s=0.05,
        lease_s=30,
        max_attempts=3,
        retry_base_s=0.05,
    )
    task = asyncio.create_task(wheel.run())
    try:

        async def given_up() -> bool:
            return await db[TIMERS_COLLECTION].count_documents({"state": "failed"}) == 1

        await eventually(given_up, timeout=10)
        await eventually(lambda: db.effects.count_documents({"timer": "good"}))
        await asyncio.sleep(0.3)  # polled again: a failed timer is not retried any more
    finally:
        wheel.stop()
        await task
    assert calls == 3
    failed = await db[TIMERS_COLLECTION].find_one({"_id": "bad"})
    assert failed is not None
    assert failed["attempts"] == 3
    assert "the handler is broken" in failed["last_error"]
    assert (
        REGISTRY.get_sample_value(
            "whistle_timers_failed_total", {"service": kind, "kind": "broken"}
        )
        == 1.0
    )
