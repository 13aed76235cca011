"""What notify asks of its store, counted (never timed): MongoDB commands per consumed event,
and stored documents read per inbox page.

Real PyMongo over the wire to an embedded server on its SQLite engine (as `whistle run` uses
it), served in this process so its document loads can be counted; the handlers run in the
consumer's transaction exactly as the consumer runs them (`run_once`).
"""

from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from mongoeco.engines import SQLiteEngine
from pymongo import AsyncMongoClient
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from services.notify.adapters import contacts, deliveries, directory, inbox
from services.notify.domain.model import Policy
from services.notify.entrypoints.events import EVENTS, PRIVATE
from shared.broker.consumer import Incoming
from shared.clock import utcnow
from shared.events.catalogue import ClaimAccepted, ClaimReleased, data_model_for, read_data
from shared.events.envelope import CloudEvent
from shared.store import embedded_patches
from shared.store.embedded_gate import SerialTransactionServer
from shared.store.mongo import Database, Document
from shared.store.outbox import ensure_outbox_indexes
from shared.store.timers import ensure_timer_indexes
from shared.store.unit_of_work import Tx, UnitOfWork
from tests.notify import scenario as s

pytestmark = pytest.mark.broker

POLICY = Policy(reminder_lead=timedelta(hours=2), email_enabled=False)
HANDLERS = {**EVENTS, **PRIVATE}


class Commands(CommandListener):
    """PyMongo command monitoring: the commands sent while `counting`."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.counting = False

    def started(self, event: CommandStartedEvent) -> None:
        if self.counting:
            self.sent[event.command_name] += 1

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@dataclass
class Loads:
    """Stored documents the engine decoded (every read of one goes through it)."""

    count: int = 0


@dataclass
class Store:
    db: Database
    uow: UnitOfWork
    commands: Commands
    per_event: dict[str, list[int]] = field(default_factory=dict)

    async def consume(self, event: CloudEvent) -> int:
        """Handle one event as notify's consumer does; returns the commands it cost."""
        model = data_model_for(event.type)
        incoming = Incoming(read_data(model, event.data, event.dataversion), event, b"")
        self.commands.sent.clear()
        self.commands.counting = True
        try:
            await self.uow.run_once(
                "notify", event, lambda tx: HANDLERS[model](tx, incoming, POLICY)
            )
        finally:
            self.commands.counting = False
        spent = sum(self.commands.sent.values())
        self.per_event.setdefault(event.type, []).append(spent)
        return spent


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Loads:
    counter = Loads()
    original = SQLiteEngine._deserialize_document

    def counting(self: SQLiteEngine, *args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SQLiteEngine, "_deserialize_document", counting)
    return counter


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    embedded_patches.apply()
    engine = SQLiteEngine(str(tmp_path / "notify.sqlite"))
    async with SerialTransactionServer(engine=engine, host="127.0.0.1", port=0) as server:
        address = server.address
        commands = Commands()
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            f"mongodb://{address.host}:{address.port}/?directConnection=true",
            tz_aware=True,
            event_listeners=[commands],
        )
        db = client.notify
        for setup in (
            directory.ensure_indexes,
            inbox.ensure_indexes,
            deliveries.ensure_indexes,
            deliveries.ensure_recipient_index,
            ensure_timer_indexes,
            ensure_outbox_indexes,
        ):
            await setup(db)
        try:
            yield Store(db, UnitOfWork(client, db), commands)
        finally:
            await client.close()


async def _community(store: Store, community: str, volunteers: int) -> None:
    await store.consume(s.community(community))
    for i in range(volunteers):
        volunteer = f"{community}-v{i}"
        webhook = f"http://127.0.0.1:9/{volunteer}"
        await store.consume(s.volunteer_details(volunteer, community, webhook_url=webhook))
        await store.consume(s.volunteer(volunteer, community, ["first aid"]))
    for event in s.reachable_unit(
        f"{community}-u", [community], ["first aid"], webhook_url="http://127.0.0.1:9/u"
    ):
        await store.consume(event)


async def test_a_whistle_costs_the_same_commands_for_three_people_as_for_thirty(
    store: Store,
) -> None:
    """The fan-out's reads and writes are batched: per event, not per person."""
    costs = {}
    for volunteers in (3, 30):
        community = f"c-{volunteers}"
        await _community(store, community, volunteers)
        costs[volunteers] = await store.consume(s.published(f"d-{volunteers}", community))
    # Every volunteer and the unit were notified, each with a webhook delivery.
    assert await store.db[inbox.NOTIFICATIONS].count_documents({"kind": "demand.published"}) == 35
    assert await store.db[deliveries.DELIVERIES].count_documents({}) == 35
    assert costs[30] == costs[3], costs
    # Claim marker, the demand's copy and guard, units, volunteers, contacts, inbox ids,
    # counters (write and read), notifications, deliveries, alerts, claims, re-alert timer,
    # outbox, commit: before batching this was 39 for three volunteers and a unit.
    assert costs[3] <= 16, costs


async def test_a_claim_and_the_end_of_its_demand_cost_a_bounded_few_commands(
    store: Store,
) -> None:
    await _community(store, "c-1", 2)
    await store.consume(s.published("d-1", "c-1", slots=2))
    for who in (("volunteer", "c-1-v0"), ("unit", "c-1-u")):
        await store.consume(s.claim(ClaimAccepted, "d-1", "c-1", who, filled=1, slots=2))
    await store.consume(s.filled("d-1", "c-1"))
    await store.consume(s.cancelled("d-1", "c-1"))
    await store.consume(s.claim(ClaimReleased, "d-1", "c-1", ("volunteer", "c-1-v0")))
    spent = {kind: max(counts) for kind, counts in store.per_event.items()}
    # Before: claim.accepted 17, demand.filled 8, demand.cancelled 21, claim.released 9.
    assert spent["claim.accepted"] <= 13, spent
    assert spent["demand.filled"] <= 8, spent
    assert spent["demand.cancelled"] <= 13, spent
    assert spent["claim.released"] <= 8, spent
    # And what they did: each holder heard it is off once (released repeats cancelled).
    cancelled = await store.db[inbox.NOTIFICATIONS].count_documents({"kind": "demand.cancelled"})
    assert cancelled == 2
    assert await store.db[inbox.NOTIFICATIONS].count_documents({"kind": "claim.released"}) == 0


async def test_an_erased_volunteer_is_not_notified_by_the_batched_fan_out(store: Store) -> None:
    await _community(store, "c-1", 3)
    await store.consume(s.erased("c-1-v1", "c-1"))
    await store.consume(s.published("d-1", "c-1"))
    owners = await store.db[inbox.NOTIFICATIONS].distinct("owner")
    assert sorted(owners) == ["unit:c-1-u", "volunteer:c-1-v0", "volunteer:c-1-v2"]
    assert await contacts.get(store.db, "volunteer:c-1-v1") is None


async def _fill_inbox(store: Store, owner: str, total: int) -> None:
    async def add(tx: Tx) -> None:
        await inbox.add_many(
            tx,
            [
                {
                    "_id": f"ntf-{owner}-{n}",
                    "owner": owner,
                    "recipient": {"type": "volunteer", "id": owner},
                    "kind": "demand.published",
                    "title": f"t{n}",
                    "body": "b",
                    "cause_event_id": f"evt-{n}",
                    "cause_type": "demand.published",
                    "correlationid": "d",
                    "created_at": utcnow(),
                }
                for n in range(total)
            ],
        )

    await store.uow.run(add)


async def test_an_inbox_page_reads_only_its_page(store: Store, loads: Loads) -> None:
    """Counted: the owner's 600 notifications are never all decoded to serve 20."""
    owner = "volunteer:v-1"
    await _fill_inbox(store, owner, 600)
    await _fill_inbox(store, "volunteer:v-2", 50)
    pages = []
    spent = []
    after = None
    for _ in range(3):
        before = loads.count
        items = await inbox.page(store.db, owner, before=after, limit=20, unread_only=False)
        unread = await inbox.unread_count(store.db, owner)
        spent.append(loads.count - before)
        pages.append([item["seq"] for item in items])
        after = items[-1]["seq"]
    assert pages == [list(range(600 - 20 * k, 580 - 20 * k, -1)) for k in range(3)]
    assert unread == 600
    # The page itself, and the owner's counter for the unread count.
    assert max(spent) <= 20 + 1, spent


async def test_the_unread_count_follows_marks_without_counting_the_inbox(
    store: Store, loads: Loads
) -> None:
    owner = "volunteer:v-1"
    await _fill_inbox(store, owner, 100)
    first = await inbox.page(store.db, owner, before=None, limit=1, unread_only=False)
    newest = first[0]
    marked = await store.uow.run(lambda tx: inbox.mark_read(tx, owner, newest["_id"]))
    assert marked is not None
    assert marked["read"]
    # Marking it again changes nothing, the count included.
    await store.uow.run(lambda tx: inbox.mark_read(tx, owner, newest["_id"]))
    assert await inbox.unread_count(store.db, owner) == 99
    assert await store.uow.run(lambda tx: inbox.mark_read_up_to(tx, owner, 40)) == 40
    assert await store.uow.run(lambda tx: inbox.mark_read_up_to(tx, owner, 60)) == 20
    before = loads.count
    assert await inbox.unread_count(store.db, owner) == 39
    assert loads.count - before <= 1
    assert (
        await store.db[inbox.NOTIFICATIONS].count_documents({"owner": owner, "read": False}) == 39
    )
    unread = await inbox.page(store.db, owner, before=None, limit=50, unread_only=True)
    assert [item["seq"] for item in unread] == list(range(99, 60, -1))


async def test_counters_from_before_the_unread_count_get_it_at_start_up(store: Store) -> None:
    owner = "volunteer:v-1"
    await _fill_inbox(store, owner, 30)
    await store.uow.run(lambda tx: inbox.mark_read_up_to(tx, owner, 10))
    # A store written before the count existed: counters hold only `seq`.
    await store.db[inbox.COUNTERS].update_one({"_id": owner}, {"$unset": {"unread": ""}})
    assert await inbox.unread_count(store.db, owner) == 0
    await inbox.count_unread_where_missing(store.db)
    assert await inbox.unread_count(store.db, owner) == 20
    await _fill_inbox(store, "volunteer:v-2", 3)
    await inbox.count_unread_where_missing(store.db)  # idempotent: nothing to do twice
    assert await inbox.unread_count(store.db, owner) == 20
