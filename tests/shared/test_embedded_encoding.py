"""The stand-in's encoder (embedded_codec.py), its change capture switched off
(embedded_changes.py) and the gate's reading of a command (embedded_gate.py): the same
answers as mongoeco's own, less work. Real PyMongo over the wire where a store is involved."""

import asyncio
import datetime
import sqlite3
import struct
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import bson
import pytest
from bson import Decimal128, Int64, ObjectId
from mongoeco.core import codec as mongoeco_codec
from mongoeco.core.bson_scalars import BsonScalarOverflowError
from mongoeco.core.codec import DocumentCodec
from mongoeco.engines import SQLiteEngine
from mongoeco.engines import sqlite as mongoeco_sqlite
from mongoeco.wire._session_identity import wire_session_key
from mongoeco.wire.bson_bridge import decode_wire_value
from mongoeco.wire.protocol import OP_MSG, MessageHeader, decode_op_msg
from pymongo.errors import OperationFailure

from shared.store import embedded_codec, embedded_gate, embedded_patches
from shared.store.embedded_gate import SerialTransactionServer
from shared.store.mongo import Database, make_client

pytestmark = pytest.mark.broker

NOW = datetime.datetime(2026, 12, 2, 8, 30, 15, 123000, tzinfo=datetime.UTC)
DOCUMENTS: list[Any] = [
    {"_id": "a", "s": "text", "n": None, "t": True, "f": 1.5, "i": 7, "big": 2**40, "at": NOW},
    {"event": {"data": {"claimant": {"type": "unit", "ids": ["u-1", 2, 3.0]}}, "time": NOW}},
    {"looks_like_a_tag": {DocumentCodec._MARKER: {"type": "int64", "value": 5}}},
    {"oid": ObjectId("65a1b2c3d4e5f60718293a4b"), "dec": Decimal128("1.50"), "l": Int64(3)},
    {"raw": b"\x00\x01", "tuple": (1, "two"), "nested": [[1, [2, {"k": NOW}]]]},
    [1, "x", {"y": [None, False]}],
    "plain",
    2**62,
]


@pytest.fixture
def unpatched() -> Iterator[None]:
    """mongoeco's own encode and check, for comparison."""
    assert embedded_patches.apply()
    patched_encode = DocumentCodec.encode
    patched_check = mongoeco_codec.validate_bson_value  # type: ignore[attr-defined]
    DocumentCodec.encode = staticmethod(embedded_codec._original_encode)  # type: ignore[method-assign]
    mongoeco_codec.validate_bson_value = embedded_codec._original_validate  # type: ignore[attr-defined]
    try:
        yield
    finally:
        DocumentCodec.encode = patched_encode  # type: ignore[method-assign]
        mongoeco_codec.validate_bson_value = patched_check  # type: ignore[attr-defined]


def _encoded_by_mongoeco(value: Any) -> Any:
    return embedded_codec._original_encode(value)


def test_every_value_is_encoded_as_mongoeco_encodes_it(unpatched: None) -> None:
    expected = [_encoded_by_mongoeco(document) for document in DOCUMENTS]
    assert [embedded_codec._encode(document) for document in DOCUMENTS] == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ({"a": {"b": [1, 2**63]}}, BsonScalarOverflowError),
        ({"a": [{"b": -(2**63) - 1}]}, BsonScalarOverflowError),
        ({"a": {"b": {1: "key not text"}}}, TypeError),
        ({"a": [{"b": {1, 2}}]}, TypeError),
        ({"a": ({"b": 2**64},)}, BsonScalarOverflowError),
    ],
    ids=["int64 overflow, deep", "int64 underflow", "non-text key", "a set", "in a tuple"],
)
def test_what_mongoeco_refuses_is_still_refused_with_its_error(
    value: Any, error: type[Exception]
) -> None:
    assert embedded_patches.apply()
    with pytest.raises(error):
        embedded_codec._encode(value)
    with pytest.raises(error):
        embedded_codec._original_validate(value)


def test_the_check_runs_once_per_document_not_once_per_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert embedded_patches.apply()
    checked: list[Any] = []
    original = embedded_codec._validate

    def counting(value: Any) -> None:
        checked.append(value)
        original(value)

    monkeypatch.setattr(embedded_codec, "_validate", counting)
    deep: dict[str, Any] = {"leaf": 1}
    for level in range(6):
        deep = {f"level{level}": deep, "list": [deep]}
    DocumentCodec.encode(deep)
    assert checked == [deep]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    assert embedded_patches.apply()
    path = tmp_path / "store.sqlite"
    engine = SQLiteEngine(str(path))
    async with SerialTransactionServer(engine=engine, host="127.0.0.1", port=0) as server:
        address = server.address
        client = make_client(f"mongodb://{address.host}:{address.port}/?directConnection=true")
        try:
            yield client.encoding, path
        finally:
            await client.close()


def _outbox_rows(path: Path) -> int:
    """Rows of mongoeco's change outbox, and of its record of each change (kept after the
    change itself is dispatched and pruned)."""
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        return sum(
            int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
            for table in ("change_outbox", "change_outbox_identities")
            if table in tables
        )


async def test_writes_record_no_changes_and_still_read_back(
    store: tuple[Database, Path],
) -> None:
    db, path = store
    await db.c.insert_one({"_id": "a", "v": 1, "at": NOW})
    await db.c.insert_many([{"_id": "b", "v": 2}, {"_id": "c", "v": 3}])
    await db.c.update_one({"_id": "a"}, {"$inc": {"v": 10}})
    await db.c.delete_one({"_id": "c"})
    async with db.client.start_session() as session:
        await session.start_transaction()
        await db.c.insert_one({"_id": "t", "v": 4}, session=session)
        await db.c.update_one({"_id": "b"}, {"$set": {"v": 20}}, session=session)
        await session.commit_transaction()
    async with db.client.start_session() as session:
        await session.start_transaction()
        await db.c.insert_one({"_id": "gone", "v": 5}, session=session)
        await session.abort_transaction()

    found = {doc["_id"]: doc["v"] async for doc in db.c.find({}, {"v": 1})}
    assert found == {"a": 11, "b": 20, "t": 4}
    assert (await db.c.find_one({"_id": "a"}) or {})["at"] == NOW
    assert _outbox_rows(path) == 0


async def test_no_collection_registers_for_changes_so_nothing_writes_beside_the_store(
    store: tuple[Database, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """mongoeco renewed each collection's change registration every 60 s, by a write of a
    thread of its own: a transaction that had read before it could then never write
    ("database is locked"), and the store stalled for the gate's whole wait. Here the renewal
    would come every 50 ms, during the transaction's pause."""
    monkeypatch.setattr(mongoeco_sqlite, "_EPHEMERAL_CHANGE_CONSUMER_HEARTBEAT_SECONDS", 0.05)
    db, path = store
    await db.c.insert_one({"_id": "a", "v": 1})
    async with db.client.start_session() as session:
        await session.start_transaction()
        assert await db.c.find_one({"_id": "a"}, session=session) == {"_id": "a", "v": 1}
        await asyncio.sleep(0.3)
        await db.c.update_one({"_id": "a"}, {"$inc": {"v": 1}}, session=session)
        await session.commit_transaction()
    assert await db.c.find_one({"_id": "a"}) == {"_id": "a", "v": 2}
    assert not [t for t in threading.enumerate() if t.name == "mongoeco-outbox-registration"]
    with sqlite3.connect(path) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "change_outbox_consumers" in tables:
            assert conn.execute("SELECT COUNT(*) FROM change_outbox_consumers").fetchone()[0] == 0


async def test_a_change_stream_is_still_refused_over_the_wire(
    store: tuple[Database, Path],
) -> None:
    """Capture is off because no wire client can read it: the day mongoeco serves
    `$changeStream`, this fails and embedded_changes.py must go."""
    db, _ = store
    with pytest.raises(OperationFailure, match=r"\$changeStream"):
        await db.c.watch()


def _op_msg(body: dict[str, Any], sequences: dict[str, list[dict[str, Any]]]) -> bytes:
    payload = struct.pack("<I", 0)
    for identifier, documents in sequences.items():
        encoded = identifier.encode() + b"\x00" + b"".join(bson.encode(d) for d in documents)
        payload += b"\x01" + struct.pack("<i", 4 + len(encoded)) + encoded
    payload += b"\x00" + bson.encode(body)
    return payload


def test_the_gate_reads_the_body_as_mongoeco_does_without_the_documents() -> None:
    lsid = {"id": bson.Binary(b"0123456789abcdef", 4)}
    body = {"insert": "events", "lsid": lsid, "txnNumber": Int64(7), "autocommit": False}
    documents = [{"_id": f"p/{n}", "event": {"n": n}} for n in range(50)]
    payload = _op_msg(body, {"documents": documents})
    header = MessageHeader(16 + len(payload), 1, 0, OP_MSG)

    theirs = decode_op_msg(header, payload).body
    assert theirs.pop("documents") is not None
    assert decode_wire_value(bson.decode(embedded_gate._op_msg_body(payload).raw)) == theirs
    facts = embedded_gate._transaction_facts(header, payload)
    assert (facts.command, facts.in_transaction, facts.starts) == ("insert", True, False)
    assert facts.key == wire_session_key(theirs["lsid"])


def test_the_gate_decodes_only_the_session_of_a_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """A find's filter, an update's changes: mongoeco decodes them to run the command; the
    gate needs the command's name, its session and two flags."""
    lsid = {"id": bson.Binary(b"fedcba9876543210", 4)}
    body = {
        "find": "notifications",
        "filter": {"owner": "vol_1", "seq": {"$gt": Int64(40)}, "tags": ["a", "b"] * 50},
        "sort": {"seq": -1},
        "lsid": lsid,
        "txnNumber": Int64(3),
        "startTransaction": True,
        "autocommit": False,
    }
    payload = _op_msg(body, {})
    header = MessageHeader(16 + len(payload), 1, 0, OP_MSG)
    decoded: list[Any] = []

    def recorded(value: Any) -> Any:
        decoded.append(value)
        return decode_wire_value(value)

    monkeypatch.setattr(embedded_gate, "decode_wire_value", recorded)
    facts = embedded_gate._transaction_facts(header, payload)
    theirs = decode_op_msg(header, payload).body
    assert (facts.command, facts.starts, facts.in_transaction) == ("find", True, True)
    assert facts.key == wire_session_key(theirs["lsid"])
    assert decoded == [lsid]


def test_a_malformed_message_has_no_facts_and_is_left_to_the_server() -> None:
    header = MessageHeader(16 + 9, 1, 0, OP_MSG)
    truncated = struct.pack("<I", 0) + b"\x00" + struct.pack("<i", 400)
    assert embedded_gate._transaction_facts(header, truncated) == embedded_gate._NO_SESSION
