"""The stand-in's patches (shared/store/embedded_patches.py): MongoDB's semantics still hold,
and Whistle's inserts no longer read every stored document.

Real PyMongo over the wire to an embedded server on its SQLite engine (as `whistle run` uses
it), served in this process so its document loads can be counted.
"""

import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import mongoeco
import pytest
from bson import Decimal128, Int64, ObjectId
from mongoeco.api._async.collection import AsyncCollection
from mongoeco.engines import SQLiteEngine
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.audit.adapters import log_store
from services.notify.adapters import inbox
from shared.clock import utcnow
from shared.store import embedded_patches
from shared.store.embedded_gate import SerialTransactionServer
from shared.store.mongo import Database, make_client
from shared.store.outbox import OUTBOX_COLLECTION, ensure_outbox_indexes

pytestmark = pytest.mark.broker


class Loads:
    """How many stored documents the engine has decoded (every read of one goes through it)."""

    def __init__(self) -> None:
        self.count = 0


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
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    assert embedded_patches.apply()
    engine = SQLiteEngine(str(tmp_path / "patched.sqlite"))
    async with SerialTransactionServer(engine=engine, host="127.0.0.1", port=0) as server:
        address = server.address
        client = make_client(f"mongodb://{address.host}:{address.port}/?directConnection=true")
        try:
            yield client.patched
        finally:
            await client.close()


async def test_a_duplicate_id_is_still_refused(db: Database) -> None:
    await db.c.insert_one({"_id": "n-1", "x": 1})
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"_id": "n-1", "x": 2})
    await db.c.insert_one({"_id": {"owner": "o", "n": "1"}})
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"_id": {"owner": "o", "n": "1"}})
    assert await db.c.count_documents({}) == 2


@pytest.mark.parametrize(
    ("stored", "again"),
    [
        (1, 1.0),
        (1.0, 1),
        (1, Int64(1)),
        (Int64(2**40), float(2**40)),
        (3, Decimal128("3.0")),
        (Decimal128("4"), 4),
        (Decimal128("2.50"), 2.5),
        (2.5, Decimal128("2.5")),
        ({"a": 1}, {"a": 1.0}),  # documents holding numbers keep mongoeco's own check
    ],
)
async def test_numeric_ids_collide_as_mongodb_compares_them(
    db: Database, stored: Any, again: Any
) -> None:
    await db.c.insert_one({"_id": stored})
    with pytest.raises(DuplicateKeyError):
        await db.c.insert_one({"_id": again})
    assert await db.c.count_documents({}) == 1


async def test_different_ids_are_all_accepted(db: Database) -> None:
    ids: list[Any] = [1, 2, 2.5, "1", Int64(2**40), Decimal128("7.25"), True, {"a": "1"}]
    for identifier in ids:
        await db.c.insert_one({"_id": identifier})
    assert await db.c.count_documents({}) == len(ids)


async def test_a_document_updated_in_place_is_not_its_own_duplicate(db: Database) -> None:
    await db.c.insert_one({"_id": 5, "v": 1})
    await db.c.replace_one({"_id": 5}, {"v": 2})
    await db.c.update_one({"_id": 6}, {"$set": {"v": 3}}, upsert=True)
    assert [d["v"] async for d in db.c.find({}).sort("_id", 1)] == [2, 3]


async def test_a_duplicate_owner_seq_is_refused(db: Database) -> None:
    await inbox.ensure_indexes(db)
    first = {"_id": "n-a", "owner": "vol-1", "seq": 1, "owner_seq": inbox.owner_seq("vol-1", 1)}
    await db[inbox.NOTIFICATIONS].insert_one(first)
    with pytest.raises(DuplicateKeyError):
        await db[inbox.NOTIFICATIONS].insert_one({**first, "_id": "n-b"})
    await db[inbox.NOTIFICATIONS].insert_one(
        {**first, "_id": "n-c", "seq": 2, "owner_seq": inbox.owner_seq("vol-1", 2)}
    )


def test_another_mongoeco_version_gets_no_patch_and_a_clear_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(mongoeco, "__version__", "9.9.9")
    monkeypatch.setattr(SQLiteEngine, "_whistle_patched", False, raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert embedded_patches.apply() is False
    [warning] = [
        w for w in caught if issubclass(w.category, embedded_patches.EmbeddedVersionWarning)
    ]
    assert "written for 4.11.0" in str(warning.message)


async def _fill(db: Database, total: int, loads: Loads, sample: int) -> tuple[int, int]:
    """Insert `total` audit records and notifications; loads in the first and last `sample`."""
    first = last = 0
    for seq in range(1, total + 1):
        before = loads.count
        owner = f"vol-{seq % 40}"
        await db[log_store.EVENTS].insert_one(
            {
                "_id": seq,
                "event_id": f"evt-{seq}",
                "type": "claim.accepted",
                "subject": f"dem-{seq % 300}",
                "community_id": f"c-{seq % 20}",
                "correlationid": f"dem-{seq % 300}",
                "demand_id": f"dem-{seq % 300}",
            }
        )
        await db[inbox.NOTIFICATIONS].insert_one(
            {
                "_id": f"evt-{seq}:{owner}",
                "owner": owner,
                "seq": seq,
                "owner_seq": inbox.owner_seq(owner, seq),
                "read": False,
            }
        )
        spent = loads.count - before
        if seq <= sample:
            first += spent
        elif seq > total - sample:
            last += spent
    return first, last


async def test_the_last_of_5000_inserts_read_no_more_stored_documents_than_the_first(
    db: Database, loads: Loads
) -> None:
    """Counted, not timed: unpatched, insert n decoded all n - 1 documents before it."""
    await log_store.ensure_indexes(db)
    await inbox.ensure_indexes(db)
    first, last = await _fill(db, 5000, loads, sample=200)
    assert last <= first, f"first 200 inserts read {first} documents, the last 200 read {last}"
    assert await db[log_store.EVENTS].count_documents({}) == 5000
    with pytest.raises(DuplicateKeyError):
        await db[log_store.EVENTS].insert_one({"_id": 4999.0, "event_id": "evt-new"})
    with pytest.raises(DuplicateKeyError):
        await db[log_store.EVENTS].insert_one({"_id": 5001, "event_id": "evt-17"})


# --- An insert of several documents is one batch (embedded_inserts.py) ----------------------


@pytest.fixture
def one_by_one(monkeypatch: pytest.MonkeyPatch) -> Loads:
    """How many documents the server inserted one at a time (mongoeco's insert_one)."""
    counter = Loads()
    original = AsyncCollection.insert_one

    async def counting(self: AsyncCollection, *args: Any, **kwargs: Any) -> Any:
        counter.count += 1
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(AsyncCollection, "insert_one", counting)
    return counter


async def test_a_batch_is_inserted_as_one_and_reads_no_more_at_the_end_than_at_the_start(
    db: Database, loads: Loads, one_by_one: Loads
) -> None:
    await log_store.ensure_indexes(db)
    spent = []
    for batch in range(30):
        records = [
            {"_id": f"p/{batch * 100 + i}", "event_id": f"evt-{batch}-{i}", "type": "t"}
            for i in range(100)
        ]
        before = loads.count
        async with db.client.start_session() as session, await session.start_transaction():
            await db[log_store.EVENTS].insert_many(records, session=session)
        spent.append(loads.count - before)
    assert one_by_one.count == 0
    assert sum(spent[-5:]) <= sum(spent[:5]), spent
    assert await db[log_store.EVENTS].count_documents({}) == 3000


async def test_an_ordered_batch_stops_at_a_duplicate_id_and_says_where(db: Database) -> None:
    await db.c.insert_one({"_id": "b-2"})
    with pytest.raises(BulkWriteError) as refused:
        await db.c.insert_many([{"_id": f"b-{i}"} for i in range(5)], ordered=True)
    details = refused.value.details
    assert details["nInserted"] == 2
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(2, 11000)]
    assert sorted([d["_id"] async for d in db.c.find({})]) == ["b-0", "b-1", "b-2"]


async def test_an_unordered_batch_stores_all_but_the_duplicates(db: Database) -> None:
    await db.c.insert_one({"_id": "u-1"})
    await db.c.insert_one({"_id": "u-3"})
    with pytest.raises(BulkWriteError) as refused:
        await db.c.insert_many([{"_id": f"u-{i}"} for i in range(5)], ordered=False)
    details = refused.value.details
    assert details["nInserted"] == 3
    assert [e["index"] for e in details["writeErrors"]] == [1, 3]
    assert await db.c.count_documents({}) == 5


async def test_a_unique_key_repeated_within_a_batch_aborts_its_transaction(
    db: Database,
) -> None:
    await inbox.ensure_indexes(db)
    rows = [
        {"_id": f"n-{i}", "owner": "vol-1", "seq": 1, "owner_seq": inbox.owner_seq("vol-1", 1)}
        for i in range(2)
    ]
    with pytest.raises(BulkWriteError) as refused:
        async with db.client.start_session() as session, await session.start_transaction():
            await db[inbox.NOTIFICATIONS].insert_many(rows, session=session)
    assert [e["index"] for e in refused.value.details["writeErrors"]] == [1]
    assert await db[inbox.NOTIFICATIONS].count_documents({}) == 0


async def test_a_batch_with_numeric_ids_still_compares_them_as_numbers(
    db: Database, one_by_one: Loads
) -> None:
    await db.c.insert_one({"_id": 1})
    with pytest.raises(BulkWriteError) as refused:
        await db.c.insert_many([{"_id": 2}, {"_id": 1.0}, {"_id": 3}])
    assert [e["index"] for e in refused.value.details["writeErrors"]] == [1]
    assert sorted([d["_id"] async for d in db.c.find({})]) == [1, 2]
    assert one_by_one.count == 3  # the stored one and the batch's two tried, one by one


# --- Collection features kept up to date by the changed rows --------------------------------


async def _ids(db: Database, query: dict[str, Any]) -> list[Any]:
    return sorted([d["_id"] async for d in db.c.find(query)], key=str)


async def test_an_array_written_after_a_query_still_matches_its_elements(db: Database) -> None:
    await db.c.create_index("k")
    await db.c.insert_many([{"_id": "a", "k": 1}, {"_id": "b", "k": 2}])
    assert await _ids(db, {"k": 1}) == ["a"]  # answered "no arrays at k" and cached it
    await db.c.insert_one({"_id": "c", "k": [1, 3]})
    assert await _ids(db, {"k": 1}) == ["a", "c"]
    assert await _ids(db, {"k": 3}) == ["c"]
    assert await _ids(db, {"k": {"$gt": 2}}) == ["c"]
    await db.c.update_one({"_id": "b"}, {"$set": {"k": [2, 5]}})  # an update, too
    assert await _ids(db, {"k": 5}) == ["b"]
    assert await _ids(db, {"k": {"$size": 2}}) == ["b", "c"]


async def test_a_decimal_written_after_a_query_compares_as_a_number(db: Database) -> None:
    await db.c.insert_many([{"_id": "a", "n": 2}, {"_id": "b", "n": 3.5}])
    assert await _ids(db, {"n": 2}) == ["a"]
    assert await _ids(db, {"n": {"$gte": 3}}) == ["b"]
    await db.c.insert_one({"_id": "c", "n": Decimal128("2.0")})
    await db.c.insert_one({"_id": "d", "n": Decimal128("10")})
    assert await _ids(db, {"n": 2}) == ["a", "c"]
    assert await _ids(db, {"n": {"$gte": 3}}) == ["b", "d"]
    assert await _ids(db, {"n": {"$type": "decimal"}}) == ["c", "d"]


async def test_tagged_types_and_text_written_after_a_query_are_found(db: Database) -> None:
    await db.c.insert_many([{"_id": "a", "v": "plain"}, {"_id": "b", "v": "zeta"}])
    assert await _ids(db, {"v": {"$gt": "p"}}) == ["a", "b"]
    await db.c.insert_one({"_id": "d", "v": "\u00e9t\u00e9"})  # non-ASCII sorts after ASCII
    assert await _ids(db, {"v": {"$gt": "p"}}) == ["a", "b", "d"]
    assert await _ids(db, {"v": {"$lt": "zz"}}) == ["a", "b"]
    await db.c.insert_one({"_id": "c", "v": b"\x01\x02"})
    assert await _ids(db, {"v": b"\x01\x02"}) == ["c"]
    assert await _ids(db, {"v": {"$type": "binData"}}) == ["c"]


async def test_a_rolled_back_array_is_forgotten_and_a_committed_one_found(db: Database) -> None:
    await db.c.insert_one({"_id": "a", "k": 1})
    assert await _ids(db, {"k": 1}) == ["a"]
    async with db.client.start_session() as session:
        await session.start_transaction()
        await db.c.insert_one({"_id": "t", "k": [1, 7]}, session=session)
        assert await _ids_in(db, {"k": 7}, session) == ["t"]
        await session.abort_transaction()
    assert await _ids(db, {"k": 7}) == []
    async with db.client.start_session() as session:
        await session.start_transaction()
        await db.c.insert_one({"_id": "u", "k": [1, 8]}, session=session)
        await session.commit_transaction()
    assert await _ids(db, {"k": 8}) == ["u"]
    assert await _ids(db, {"k": 1}) == ["a", "u"]


async def _ids_in(db: Database, query: dict[str, Any], session: Any) -> list[Any]:
    return sorted([d["_id"] async for d in db.c.find(query, session=session)], key=str)


class SqliteSteps:
    """SQLite virtual-machine steps on every connection the engine opens: the work SQLite
    does for a command, counted (a scan of n rows costs about n times a keyed lookup)."""

    def __init__(self) -> None:
        self.count = 0

    def tick(self) -> int:
        self.count += 1
        return 0


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> SqliteSteps:
    counter = SqliteSteps()
    original = SQLiteEngine._create_sqlite_connection

    def counted(self: SQLiteEngine) -> Any:
        connection = original(self)
        connection.set_progress_handler(counter.tick, 100)
        return connection

    monkeypatch.setattr(SQLiteEngine, "_create_sqlite_connection", counted)
    return counter


async def test_reads_after_writes_do_no_more_sqlite_work_at_3000_documents_than_at_100(
    db: Database, steps: SqliteSteps
) -> None:
    """Counted, not timed. notify's way of adding a notification: is it there (by `_id`), the
    owner's next seq (find_one_and_update by `_id`), the insert under the unique
    `owner_seq`. Unpatched, each of these reads after a write asked the whole collection
    whether it held arrays or decimals at the fields involved.

    (A query by any field other than an exact `_id` is still a scan of the collection on
    mongoeco's SQLite engine, which serves only single-field ascending indexes and only some
    shapes of query from them: that is the stand-in's limit, not measured here.)"""
    await inbox.ensure_indexes(db)
    notifications = db[inbox.NOTIFICATIONS]
    counters = db[inbox.COUNTERS]

    async def add(seq: int) -> int:
        before = steps.count
        owner = f"vol-{seq % 40}"
        assert await notifications.find_one({"_id": f"evt-{seq}:{owner}"}, {"_id": 1}) is None
        counter = await counters.find_one_and_update(
            {"_id": owner}, {"$inc": {"seq": 1}}, upsert=True, return_document=True
        )
        assert counter is not None
        await notifications.insert_one(
            {
                "_id": f"evt-{seq}:{owner}",
                "owner": owner,
                "seq": counter["seq"],
                "owner_seq": inbox.owner_seq(owner, counter["seq"]),
                "read": False,
            }
        )
        return steps.count - before

    early = [await add(seq) for seq in range(1, 101)]
    for seq in range(101, 2901):
        await add(seq)
    late = [await add(seq) for seq in range(2901, 3001)]
    assert await notifications.count_documents({}) == 3000
    # Unpatched: the late adds do about 30 times the early ones' work.
    assert sum(late) <= 2 * sum(early), f"early {sum(early)} steps, late {sum(late)}"


async def test_marking_outbox_rows_sent_does_no_more_sqlite_work_at_3000_than_at_100(
    tmp_path: Path,
) -> None:
    """Counted, not timed: the relay marks published rows sent (which gives them a TTL
    entry); unpatched, each update read every TTL entry of the outbox, so the late marks did
    about 15 times the early ones' work. Counted on the connection the server writes with."""
    assert embedded_patches.apply()
    engine = SQLiteEngine(str(tmp_path / "outbox.sqlite"))
    steps = SqliteSteps()
    async with SerialTransactionServer(engine=engine, host="127.0.0.1", port=0) as server:
        writer = engine._connection
        assert writer is not None
        writer.set_progress_handler(steps.tick, 100)
        address = server.address
        client = make_client(f"mongodb://{address.host}:{address.port}/?directConnection=true")
        try:
            db = client.outboxes
            await ensure_outbox_indexes(db)
            outbox = db[OUTBOX_COLLECTION]

            async def publish_and_mark(first: int) -> int:
                ids = [f"evt-{first + i}" for i in range(5)]
                await outbox.insert_many(
                    [{"_id": i, "order": first, "status": "pending", "attempts": 0} for i in ids]
                )
                before = steps.count
                await outbox.update_many(
                    {"_id": {"$in": ids}},
                    {"$set": {"status": "sent", "sent_at": utcnow()}, "$inc": {"attempts": 1}},
                )
                return steps.count - before

            early = [await publish_and_mark(n) for n in range(0, 100, 5)]
            for n in range(100, 2900, 5):
                await publish_and_mark(n)
            late = [await publish_and_mark(n) for n in range(2900, 3000, 5)]
            assert await outbox.count_documents({"status": "sent"}) == 3000
        finally:
            await client.close()
    assert sum(late) <= 2 * sum(early), f"early {sum(early)} steps, late {sum(late)}"


async def test_ttl_expiry_still_removes_what_is_due_and_only_that(db: Database) -> None:
    await db.t.create_index("at", expireAfterSeconds=60)
    now = utcnow()
    await db.t.insert_many(
        [{"_id": "old", "at": now - timedelta(hours=1)}, {"_id": "new", "at": now}]
    )
    await db.t.update_one({"_id": "new"}, {"$set": {"x": 1}})  # a write runs the expiry
    await db.t.insert_one({"_id": "later", "at": now})
    assert sorted([d["_id"] async for d in db.t.find({})]) == ["later", "new"]


# --- Read connections kept for the next read -------------------------------------------------


async def test_reads_reuse_a_few_connections_and_each_sees_every_write_before_it(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = 0
    original = embedded_patches._original_create_connection

    def counted(self: SQLiteEngine) -> Any:
        nonlocal opened
        opened += 1
        return original(self)

    monkeypatch.setattr(embedded_patches, "_original_create_connection", counted)
    for i in range(40):
        await db.c.insert_one({"_id": f"d-{i}", "n": i})
        seen = [d["n"] async for d in db.c.find({}).sort("n", 1)]
        assert seen == list(range(i + 1))  # a kept connection never reads an old snapshot
        if i == 20:
            await db.c.create_index("n")  # and sees the catalogue as it is now
    assert [d["_id"] async for d in db.c.find({"n": {"$gte": 38}})] == ["d-38", "d-39"]
    assert opened <= embedded_patches._READER_POOL_SIZE  # unpatched: one per find (41)


async def test_two_cursors_open_at_once_each_read_their_own_rows(db: Database) -> None:
    await db.c.insert_many([{"_id": i, "k": i % 2} for i in range(300)])
    evens = db.c.find({"k": 0}, batch_size=10).sort("_id", 1)
    odds = db.c.find({"k": 1}, batch_size=10).sort("_id", 1)
    got_evens: list[int] = []
    got_odds: list[int] = []
    async for a in evens:
        got_evens.append(a["_id"])
        if len(got_odds) < 150:
            got_odds.append((await odds.next())["_id"])
    assert got_evens == list(range(0, 300, 2))
    assert got_odds == list(range(1, 300, 2))


# --- Equality and `$in` served by an index ----------------------------------------------------


async def _found(db: Database, *args: Any) -> dict[str, Any]:
    document = await db.c.find_one(*args)
    assert document is not None, args
    return document


async def test_id_equality_finds_updates_and_deletes_exactly_the_right_document(
    db: Database,
) -> None:
    oid = ObjectId()
    await db.c.insert_many(
        [
            {"_id": "1", "v": "string one"},
            {"_id": 1, "v": "number one"},
            {"_id": oid, "v": "object id"},
            {"_id": {"a": "1"}, "v": "document"},
            {"_id": "a\u00e9'\"", "v": "quotes and accents"},
        ]
    )
    assert (await _found(db, {"_id": "1"}))["v"] == "string one"
    assert (await _found(db, {"_id": 1.0}))["v"] == "number one"
    assert (await _found(db, {"_id": oid}, {"v": 1}))["v"] == "object id"
    assert (await _found(db, {"_id": "a\u00e9'\""}))["v"] == "quotes and accents"
    assert await db.c.find_one({"_id": "2"}) is None
    assert await db.c.find_one({"_id": str(oid)}) is None  # a string is not its ObjectId
    assert await db.c.find_one({"_id": "1", "v": "number one"}) is None
    assert await _ids(db, {"$or": [{"_id": "1"}, {"_id": oid}]}) == ["1", oid]
    assert (await db.c.update_one({"_id": "1"}, {"$set": {"v": "changed"}})).modified_count == 1
    assert (await _found(db, {"_id": 1}))["v"] == "number one"
    assert (await _found(db, {"_id": "1"}))["v"] == "changed"
    assert (await db.c.delete_one({"_id": oid})).deleted_count == 1
    assert await db.c.count_documents({}) == 4
    assert await db.c.find_one({"_id": oid}) is None


async def test_id_in_finds_exactly_the_documents_named(db: Database) -> None:
    oid = ObjectId()
    await db.c.insert_many(
        [
            {"_id": "1", "v": "string one"},
            {"_id": 1, "v": "number one"},
            {"_id": oid, "v": "object id"},
            {"_id": str(oid), "v": "its hex"},
            {"_id": "b", "v": "b"},
        ]
    )
    assert await _ids(db, {"_id": {"$in": ["1", "b", "missing"]}}) == ["1", "b"]
    assert await _ids(db, {"_id": {"$in": [oid]}}) == [oid]
    assert await _ids(db, {"_id": {"$in": [str(oid)]}}) == [str(oid)]
    assert await _ids(db, {"_id": {"$in": [1.0, "b"]}}) == [1, "b"]  # numbers: mongoeco's SQL
    assert await _ids(db, {"_id": {"$in": ["1", "b"]}, "v": "b"}) == ["b"]
    assert await _ids(db, {"_id": {"$in": []}}) == []
    assert (await db.c.delete_many({"_id": {"$in": ["1", oid]}})).deleted_count == 2
    assert await _ids(db, {}) == [1, str(oid), "b"]


async def test_a_field_led_index_answers_equality_and_in_as_mongodb_does(db: Database) -> None:
    await db.c.create_index([("owner", 1), ("seq", 1)])
    oid = ObjectId()
    await db.c.insert_many(
        [
            {"_id": "a", "owner": "vol-1", "seq": 1},
            {"_id": "b", "owner": "vol-2", "seq": 1},
            {"_id": "c", "owner": "vol-1", "seq": 2},
            {"_id": "d", "owner": oid},
            {"_id": "e", "owner": str(oid)},
            {"_id": "f", "owner": 7},
            {"_id": "g"},
            {"_id": "h", "owner": "vol-\u00e9'\""},
        ]
    )
    assert await _ids(db, {"owner": "vol-1"}) == ["a", "c"]
    assert await _ids(db, {"owner": "vol-1", "seq": {"$gt": 1}}) == ["c"]
    assert await _ids(db, {"owner": {"$in": ["vol-2", "vol-\u00e9'\"", "none"]}}) == ["b", "h"]
    assert await _ids(db, {"owner": str(oid)}) == ["e"]  # a string is not its ObjectId
    assert await _ids(db, {"owner": oid}) == ["d"]
    assert await _ids(db, {"owner": {"$in": [7, "vol-2"]}}) == ["b", "f"]
    assert await _ids(db, {"owner": None}) == ["g"]
    assert await _ids(db, {"$or": [{"owner": "vol-2"}, {"seq": 2}]}) == ["b", "c"]
    changed = await db.c.update_many({"owner": "vol-1"}, {"$set": {"seen": True}})
    assert changed.modified_count == 2
    assert (await db.c.delete_many({"owner": {"$in": ["vol-2"]}})).deleted_count == 1
    assert await _ids(db, {"seen": True}) == ["a", "c"]


async def test_an_array_at_an_indexed_field_still_matches_its_elements(db: Database) -> None:
    await db.c.create_index("tag")
    await db.c.insert_many([{"_id": "a", "tag": "x"}, {"_id": "b", "tag": "y"}])
    assert await _ids(db, {"tag": "x"}) == ["a"]  # answered from the index
    await db.c.insert_one({"_id": "c", "tag": ["x", "z"]})
    assert await _ids(db, {"tag": "x"}) == ["a", "c"]
    assert await _ids(db, {"tag": {"$in": ["z", "y"]}}) == ["b", "c"]
    async with db.client.start_session() as session:
        await session.start_transaction()
        await db.c.insert_one({"_id": "t", "tag": "x"}, session=session)
        assert await _ids_in(db, {"tag": "x"}, session) == ["a", "c", "t"]  # its own write
        await session.abort_transaction()
    assert await _ids(db, {"tag": "x"}) == ["a", "c"]


async def test_audits_pre_read_and_lookups_by_field_do_no_more_work_at_3000_records_than_at_300(
    db: Database, steps: SqliteSteps
) -> None:
    """Counted, not timed: audit's append asks which of a batch's event ids are stored
    (`event_id` `$in`), then reads by `_id`; readers ask by demand. Unpatched, each of these
    scanned the whole events collection: 2,511 SQLite steps (of 100 instructions) at 300
    records, 23,505 at 3,000; patched, 202 and 150."""
    await log_store.ensure_indexes(db)
    events = db[log_store.EVENTS]
    total = 0

    async def fill(upto: int) -> None:
        nonlocal total
        records = [
            {
                "_id": log_store.record_id("default", seq),
                "partition": "default",
                "seq": seq,
                "event_id": f"evt-{seq}",
                "type": "claim.accepted",
                "subject": f"dem-{seq % 300}",
                "demand_id": f"dem-{seq % 300}",
            }
            for seq in range(total + 1, upto + 1)
        ]
        await events.insert_many(records)
        total = upto
        await events.find_one({"event_id": "warm"})  # the planner's questions, asked once

    async def lookups() -> int:
        before = steps.count
        for n in range(20):
            ids = [f"evt-{total - n}", f"evt-new-{n}", f"evt-{n + 1}"]
            stored = await events.find({"event_id": {"$in": ids}}, {"event_id": 1}).to_list()
            assert len(stored) == 2
            assert await events.find_one({"_id": log_store.record_id("default", n + 1)})
            assert len(await events.find({"demand_id": f"dem-{n}"}).to_list()) == total // 300
        return steps.count - before

    await fill(300)
    early = await lookups()
    await fill(3000)
    late = await lookups()
    assert late <= 2 * early, f"at 300 records {early} steps, at 3,000 {late}"


async def test_a_sorted_find_by_an_indexed_field_sorts_as_mongodb_does(db: Database) -> None:
    await db.c.create_index([("owner", 1), ("seq", -1)])
    await db.c.insert_many(
        [
            {"_id": "a", "owner": "o", "seq": 3},
            {"_id": "b", "owner": "o", "seq": Int64(2)},
            {"_id": "c", "owner": "p", "seq": 0},
            {"_id": "d", "owner": "o", "seq": 2.5},
        ]
    )

    async def order(query: dict[str, Any], direction: int) -> list[str]:
        return [d["_id"] async for d in db.c.find(query).sort("seq", direction)]

    assert await order({"owner": "o"}, -1) == ["a", "d", "b"]
    # An array at the sort key: MongoDB sorts by its smallest element ascending, its largest
    # descending; mongoeco must notice the array among the candidates and sort in Python.
    await db.c.insert_one({"_id": "e", "owner": "o", "seq": [9, 1]})
    assert await order({"owner": "o"}, 1) == ["e", "b", "d", "a"]
    assert await order({"owner": "o"}, -1) == ["e", "a", "d", "b"]
    assert await order({"owner": {"$in": ["o", "p"]}, "seq": {"$gte": 0}}, 1) == [
        "c",
        "e",
        "b",
        "d",
        "a",
    ]


async def test_a_sorted_page_by_owner_does_no_more_work_at_3000_documents_than_at_300(
    db: Database, steps: SqliteSteps
) -> None:
    """Counted: notify's inbox page (by owner, newest first). Unpatched, mongoeco's check
    before sorting ("does a matching document hold an array at the sort key?") scanned the
    collection on every page: 414 SQLite steps at 300 documents, 2,739 at 3,000; patched,
    162 and 58 (the owners asked hold ten documents at both sizes)."""
    await inbox.ensure_indexes(db)
    notifications = db[inbox.NOTIFICATIONS]
    total = 0

    def owner(seq: int) -> str:
        return f"vol-{seq % 30}" if seq <= 300 else f"other-{seq % 270}"

    async def fill(upto: int) -> None:
        nonlocal total
        await notifications.insert_many(
            [
                {
                    "_id": f"evt-{seq}",
                    "owner": owner(seq),
                    "seq": seq,
                    "owner_seq": inbox.owner_seq(owner(seq), seq),
                    "read": False,
                }
                for seq in range(total + 1, upto + 1)
            ]
        )
        total = upto
        await notifications.find_one({"owner": "warm"})

    async def pages() -> int:
        before = steps.count
        for n in range(10):
            page = await notifications.find({"owner": f"vol-{n}"}).sort("seq", -1).to_list(10)
            assert len(page) == 10
        return steps.count - before

    await fill(300)
    early = await pages()
    await fill(3000)
    late = await pages()
    assert late <= 2 * early, f"at 300 documents {early} steps, at 3,000 {late}"


async def test_an_aborted_transaction_leaves_the_next_reads_no_more_work_at_3000_than_at_300(
    db: Database, steps: SqliteSteps
) -> None:
    """Counted: a transaction that aborts (a conflict, a refused duplicate) used to drop
    every answer about the collection, so the reads after it asked each question of the
    whole collection again (2,203 SQLite steps at 300 documents, 21,646 at 3,000); now only
    the answers the undone rows touched are dropped (29 and 31)."""
    await db.c.create_index("owner")
    total = 0

    def owner(n: int) -> str:  # the owners read hold ten documents at both sizes
        return f"o-{n % 30}" if n <= 300 else f"x-{n % 270}"

    async def fill(upto: int) -> None:
        nonlocal total
        await db.c.insert_many(
            [{"_id": f"d-{n}", "owner": owner(n), "n": n} for n in range(total + 1, upto + 1)]
        )
        total = upto
        await db.c.find_one({"owner": "warm", "n": {"$gt": 0}})

    async def aborts_then_reads() -> int:
        before = steps.count
        for n in range(10):
            async with db.client.start_session() as session:
                await session.start_transaction()
                await db.c.insert_one({"_id": f"t-{n}", "owner": "o-1", "n": -1}, session=session)
                with pytest.raises(DuplicateKeyError):
                    await db.c.insert_one({"_id": "d-1"}, session=session)
                await session.abort_transaction()
            found = await db.c.find({"owner": f"o-{n}", "n": {"$gt": 0}}).to_list()
            assert len(found) == 10
        return steps.count - before

    await fill(300)
    early = await aborts_then_reads()
    await fill(3000)
    late = await aborts_then_reads()
    assert await db.c.count_documents({"n": -1}) == 0  # every aborted write undone
    assert late <= 2 * early, f"at 300 documents {early} steps, at 3,000 {late}"
