"""Envelopes are built in one place: `tx.emit(data, subject=...)` under the unit of work's Cause."""

import pytest
from pymongo import AsyncMongoClient

from shared.events.catalogue import CommunityRegistered, DemandCancelled, DemandCompleted
from shared.events.envelope import CloudEvent
from shared.store.mongo import Database, Document
from shared.store.outbox import OUTBOX_COLLECTION
from shared.store.unit_of_work import Cause, Tx, UnitOfWork
from tests.support.events import event_of

pytestmark = pytest.mark.broker


def _cancelled(demand_id: str = "d_1") -> DemandCancelled:
    return DemandCancelled(demand_id=demand_id, community_id="c-1", reason="rain")


async def _stored(db: Database) -> list[CloudEvent]:
    documents = await db[OUTBOX_COLLECTION].find({}).sort("order", 1).to_list(None)
    return [CloudEvent.model_validate(document["event"]) for document in documents]


async def test_a_request_cause_makes_the_envelope(uow: UnitOfWork, db: Database) -> None:
    cause = Cause.of_request("dispatch", "sec-1", "req_1")

    async def work(tx: Tx) -> CloudEvent:
        return tx.emit(_cancelled(), subject="d_1")

    emitted = await uow.run(work, cause=cause)
    [stored] = await _stored(db)
    assert stored == emitted
    assert (stored.type, stored.dataversion) == (DemandCancelled.TYPE, 1)
    assert stored.source == "/whistle/dispatch"
    assert stored.actor == "sec-1"
    assert stored.causationid == "req_1"
    assert stored.subject == "d_1"
    assert stored.correlationid == "d_1"  # a request: correlated with its subject
    assert stored.data == _cancelled().model_dump(mode="json")


async def test_correlation_is_said_once_where_it_differs(uow: UnitOfWork, db: Database) -> None:
    cause = Cause.of_request("dispatch", "admin", "req_2")

    async def work(tx: Tx) -> None:
        registered = CommunityRegistered(community_id="c-1", name="N", street="s", district="d")
        tx.emit(registered, subject="c-1")
        tx.emit(_cancelled(), subject="d_1", correlation="flow-9")

    await uow.run(work, cause=cause)
    registered, cancelled = await _stored(db)
    assert registered.correlationid == "c-1"
    assert cancelled.correlationid == "flow-9"
    assert registered.causationid == cancelled.causationid == "req_2"


async def test_a_consumed_event_is_the_cause_of_what_its_consumer_emits(
    mongo_client: AsyncMongoClient[Document], db: Database
) -> None:
    uow = UnitOfWork(mongo_client, db, service="units")
    consumed = event_of(_cancelled(), subject="d_1", correlationid="d_1")

    async def work(tx: Tx) -> None:
        tx.emit(DemandCompleted(demand_id="d_1", community_id="c-1"), subject="d_1")

    assert await uow.run_once("units.demand-events", consumed, work)
    [stored] = await _stored(db)
    assert stored.source == "/whistle/units"
    assert stored.actor == "units"  # the service acts on an event
    assert stored.causationid == consumed.id
    assert stored.correlationid == consumed.correlationid


async def test_an_explicit_cause_overrides_the_unit_of_works(uow: UnitOfWork, db: Database) -> None:
    batch = Cause.of_request("notify", "notify", "req_batch")
    one = Cause.of_event("notify", event_of(_cancelled("d_7"), subject="d_7"))

    async def work(tx: Tx) -> None:
        tx.emit(_cancelled("d_6"), subject="d_6")
        tx.emit(_cancelled("d_7"), subject="d_7", cause=one)

    await uow.run(work, cause=batch)
    first, second = await _stored(db)
    assert first.causationid == "req_batch"
    assert second.causationid == one.causationid
    assert second.correlationid == "d_7"


async def test_emitting_without_a_cause_is_refused_and_nothing_is_stored(
    uow: UnitOfWork, db: Database
) -> None:
    async def work(tx: Tx) -> None:
        await tx.db.things.insert_one({"_id": "t"}, session=tx.session)
        tx.emit(_cancelled(), subject="d_1")

    with pytest.raises(RuntimeError, match="outside a Cause"):
        await uow.run(work)
    assert await db.things.count_documents({}) == 0
    assert await _stored(db) == []


@pytest.mark.unit
def test_causes_say_who_acted_and_why() -> None:
    assert Cause.of_timer("dispatch", "esc:d_1") == Cause(
        "/whistle/dispatch", "dispatch", "timer:esc:d_1", None
    )
    request = Cause.of_request("units", "vol-sub")
    assert request.causationid.startswith("req")
    assert request.actor == "vol-sub"
