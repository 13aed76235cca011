"""The unit of work against the Mongo wire server: atomic state + outbox, exactly-once effects."""

import asyncio

import pytest

from shared.events.catalogue import DemandCancelled
from shared.events.envelope import CloudEvent
from shared.store.mongo import Database
from shared.store.outbox import OUTBOX_COLLECTION, OutboxRelay, ensure_outbox_indexes
from shared.store.unit_of_work import PROCESSED_COLLECTION, RetryTransaction, Tx, UnitOfWork
from tests.shared.runtime_support import eventually
from tests.support.events import event_of

pytestmark = pytest.mark.broker


def _event(demand_id: str = "d_1") -> CloudEvent:
    return event_of(
        DemandCancelled(demand_id=demand_id, community_id="c-1", reason="rain"), subject=demand_id
    )


def _queue(tx: Tx, event: CloudEvent) -> None:
    """Queue an envelope built beforehand, so the test knows its id (`tx.emit` builds its
    own from the unit of work's cause; these tests are about what commits, not the cause)."""
    tx.events.append(event)


class Boom(Exception):
    pass


async def test_state_and_events_commit_together(uow: UnitOfWork, db: Database) -> None:
    await ensure_outbox_indexes(db)
    event = _event()

    async def work(tx: Tx) -> str:
        await tx.db.demands.insert_one({"_id": "d_1", "status": "cancelled"}, session=tx.session)
        _queue(tx, event)
        return "done"

    assert await uow.run(work) == "done"
    assert await db.demands.count_documents({}) == 1
    stored = await db[OUTBOX_COLLECTION].find_one({"_id": event.id})
    assert stored is not None
    assert stored["status"] == "pending"
    assert stored["event"] == event.wire()


async def test_failed_work_leaves_neither_state_nor_events(uow: UnitOfWork, db: Database) -> None:
    async def work(tx: Tx) -> None:
        await tx.db.demands.insert_one({"_id": "d_1"}, session=tx.session)
        await tx.db.demands.update_one(
            {"_id": "existing"}, {"$set": {"x": 1}}, upsert=True, session=tx.session
        )
        _queue(tx, _event())
        raise Boom

    with pytest.raises(Boom):
        await uow.run(work)
    assert await db.demands.count_documents({}) == 0
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 0


async def test_retry_transaction_reruns_the_work_from_the_start(
    uow: UnitOfWork, db: Database
) -> None:
    attempts = 0

    async def work(tx: Tx) -> int:
        nonlocal attempts
        attempts += 1
        await tx.db.demands.insert_one({"attempt": attempts}, session=tx.session)
        _queue(tx, _event())
        if attempts < 3:
            raise RetryTransaction("the state moved")
        return attempts

    assert await uow.run(work) == 3
    assert [d["attempt"] async for d in db.demands.find({})] == [3]
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 1


async def test_run_once_applies_an_event_once(uow: UnitOfWork, db: Database) -> None:
    event = _event()

    async def apply(tx: Tx) -> None:
        await tx.db.counters.update_one(
            {"_id": "applied"}, {"$inc": {"n": 1}}, upsert=True, session=tx.session
        )
        tx.emit(
            DemandCancelled(demand_id="d_follow", community_id="c-1", reason="rain"),
            subject="d_follow",
        )

    assert await uow.run_once("tests.consumer", event, apply) is True
    assert await uow.run_once("tests.consumer", event, apply) is False
    assert await uow.run_once("other.consumer", event, apply) is True
    counter = await db.counters.find_one({"_id": "applied"})
    assert counter is not None
    assert counter["n"] == 2
    assert await db[OUTBOX_COLLECTION].count_documents({}) == 2
    assert await db[PROCESSED_COLLECTION].count_documents({}) == 2


async def test_concurrent_duplicates_apply_once(uow: UnitOfWork, db: Database) -> None:
    event = _event()

    async def apply(tx: Tx) -> None:
        await tx.db.counters.update_one(
            {"_id": "applied"}, {"$inc": {"n": 1}}, upsert=True, session=tx.session
        )

    results = await asyncio.gather(*(uow.run_once("c", event, apply) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    counter = await db.counters.find_one({"_id": "applied"})
    assert counter is not None
    assert counter["n"] == 1


async def test_failed_effect_does_not_mark_the_event_processed(
    uow: UnitOfWork, db: Database
) -> None:
    event = _event()

    async def failing(tx: Tx) -> None:
        await tx.db.counters.insert_one({"_id": "half"}, session=tx.session)
        raise Boom

    with pytest.raises(Boom):
        await uow.run_once("c", event, failing)
    assert await db[PROCESSED_COLLECTION].count_documents({}) == 0
    assert await db.counters.count_documents({}) == 0

    async def succeeding(tx: Tx) -> None:
        await tx.db.counters.insert_one({"_id": "whole"}, session=tx.session)

    assert await uow.run_once("c", event, succeeding) is True


async def test_commits_racing_the_outbox_relay_lose_nothing(uow: UnitOfWork, db: Database) -> None:
    """Transactions whose commit conflicts with the relay's writes are retried cleanly.

    The embedded server once left a transaction whose commit failed open on its session;
    PyMongo reuses session ids, so later operations ran inside that stale snapshot: outbox
    documents vanished and were never published.
    """
    await ensure_outbox_indexes(db)
    published: list[str] = []

    async def publish(event: CloudEvent) -> None:
        published.append(event.id)

    relay = OutboxRelay(db, publish, service="t", owner="me", lease_ttl_s=3.0, poll_s=0.01)
    relaying = asyncio.create_task(relay.run())
    events = [_event(f"d_{n}") for n in range(15)]
    try:
        for event in events:

            async def work(tx: Tx, event: CloudEvent = event) -> None:
                _queue(tx, event)

            await uow.run(work)
            relay.wake()

        async def all_sent() -> bool:
            return await db[OUTBOX_COLLECTION].count_documents({"status": "sent"}) == 15

        await eventually(all_sent, timeout=10)
    finally:
        relay.stop()
        await relaying
    assert sorted(published) == sorted(event.id for event in events)


async def test_an_unknown_commit_outcome_retries_the_commit_not_the_work(
    uow: UnitOfWork, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A network error during commit must not re-run the work (it may already have landed)."""
    from pymongo.asynchronous.client_session import AsyncClientSession
    from pymongo.errors import AutoReconnect

    real_commit = AsyncClientSession.commit_transaction
    failures = 1

    async def flaky_commit(self: AsyncClientSession) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            error = AutoReconnect("connection reset during commitTransaction")
            error._add_error_label("UnknownTransactionCommitResult")
            raise error
        await real_commit(self)

    monkeypatch.setattr(AsyncClientSession, "commit_transaction", flaky_commit)
    runs = 0

    async def work(tx: Tx) -> None:
        nonlocal runs
        runs += 1
        await tx.db.demands.insert_one({"_id": "d_once"}, session=tx.session)

    await uow.run(work)
    assert runs == 1
    assert await db.demands.count_documents({"_id": "d_once"}) == 1
