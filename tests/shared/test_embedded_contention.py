"""Contention on the embedded stand-in is a bounded wait, then 503 `busy` with Retry-After.

Every test provokes the contention for real against an embedded server on its SQLite engine
(served in this process, so the tests can hold the store the way another session or another
process would) and reads the answer through the services' own HTTP error handling.
"""

import asyncio
import sqlite3
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bson
import httpx
import mongoeco
import pytest
from fastapi import FastAPI
from mongoeco.engines import SQLiteEngine
from mongoeco.wire.protocol import encode_op_msg_request

from shared.http.problems import install_problem_handlers
from shared.store import embedded_gate, embedded_patches
from shared.store.embedded_gate import SerialTransactionServer
from shared.store.mongo import Database, make_client
from shared.store.unit_of_work import Tx, UnitOfWork

pytestmark = pytest.mark.broker

WAIT_S = 1.0


@dataclass
class Served:
    engine: SQLiteEngine
    path: Path
    url: str
    host: str
    port: int


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    assert embedded_patches.apply()
    path = tmp_path / "contended.sqlite"
    engine = SQLiteEngine(str(path))
    async with SerialTransactionServer(
        engine=engine, host="127.0.0.1", port=0, wait_s=WAIT_S
    ) as server:
        address = server.address
        url = f"mongodb://{address.host}:{address.port}/?directConnection=true"
        yield Served(engine, path, url, address.host, address.port)


def app_on(db: Database) -> FastAPI:
    """A service's shape: its routes, and shared/http's answers to what the store raises."""
    app = FastAPI()
    install_problem_handlers(app)
    uow = UnitOfWork(db.client, db)

    @app.post("/write")
    async def write() -> dict[str, str]:
        await db.things.insert_one({"kind": "plain"})
        return {"ok": "written"}

    @app.get("/read")
    async def read() -> dict[str, int]:
        return {"n": await db.things.count_documents({})}

    @app.post("/transaction")
    async def transaction() -> dict[str, str]:
        async def work(tx: Tx) -> None:
            await tx.db.things.insert_one({"kind": "tx"}, session=tx.session)

        await uow.run(work)
        return {"ok": "committed"}

    return app


async def call(app: FastAPI, method: str, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
        return await client.request(method, path)


def assert_busy(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"].endswith("/busy")


@pytest.mark.parametrize(("method", "path"), [("POST", "/write"), ("GET", "/read")])
async def test_a_transaction_the_gate_does_not_see_makes_commands_busy_not_500(
    served: Served, method: str, path: str
) -> None:
    """mongoeco's own "active transaction bound to another session", raised for real: here
    the transaction is opened on the engine directly (as a second front end would), so the
    gate lets the command through and mongoeco refuses it."""
    holder = mongoeco.AsyncMongoClient(served.engine)
    client = make_client(served.url)
    try:
        db = client.contended
        await db.things.insert_one({"kind": "seed"})
        async with holder.start_session() as session:
            session.start_transaction()
            await holder.contended.things.insert_one({"kind": "held"}, session=session)
            response = await call(app_on(db), method, path)
            assert_busy(response)
            transaction = await call(app_on(db), "POST", "/transaction")
            assert_busy(transaction)
            session.abort_transaction()  # mongoeco's in-process session: synchronous
        # Nothing of the refused commands was stored, and the store serves again.
        assert await db.things.count_documents({}) == 1
        assert (await call(app_on(db), "POST", "/write")).status_code == 200
    finally:
        await client.close()


async def test_sqlite_database_is_locked_by_another_process_is_busy_not_500(
    served: Served,
) -> None:
    """SQLite's own lock, held by another connection to the file (a second process pointed
    at the same store): the engine's write fails "database is locked" after SQLite's
    busy timeout, and the service answers busy."""
    client = make_client(served.url)
    other = sqlite3.connect(served.path, timeout=0.1, isolation_level=None)
    try:
        db = client.contended
        await db.things.insert_one({"kind": "seed"})
        other.execute("BEGIN IMMEDIATE")  # the write lock, held by someone else
        response = await asyncio.wait_for(call(app_on(db), "POST", "/write"), 60)
        assert_busy(response)
        other.execute("ROLLBACK")
        assert (await call(app_on(db), "POST", "/write")).status_code == 200
        assert await db.things.count_documents({}) == 2
    finally:
        other.close()
        await client.close()


async def raw_command(served: Served, body: dict[str, Any]) -> dict[str, Any]:
    """One command over the wire without a session (PyMongo always adds one; its background
    killCursors and other clients do not)."""
    reader, writer = await asyncio.open_connection(served.host, served.port)
    try:
        writer.write(encode_op_msg_request(body, request_id=7))
        await writer.drain()
        header = await reader.readexactly(16)
        rest = await reader.readexactly(struct.unpack("<i", header[:4])[0] - 16)
        return bson.decode(rest[5:])
    finally:
        writer.close()


async def test_a_command_without_a_session_waits_for_the_open_transaction(
    served: Served,
) -> None:
    client = make_client(served.url)
    try:
        db = client.contended
        async with client.start_session() as session:
            await session.start_transaction()
            await db.things.insert_one({"_id": "in-tx"}, session=session)
            refused = await raw_command(
                served, {"insert": "things", "documents": [{"_id": "raw"}], "$db": "contended"}
            )
            assert refused["code"] == embedded_gate.MAX_TIME_MS_EXPIRED, refused
            waiting = asyncio.create_task(
                raw_command(
                    served,
                    {"insert": "things", "documents": [{"_id": "raw"}], "$db": "contended"},
                )
            )
            await asyncio.sleep(0.2)
            await session.commit_transaction()
        # Once the transaction is committed the waiting command gets its turn.
        assert (await waiting)["ok"] == 1.0
        assert sorted([d["_id"] async for d in db.things.find({})]) == ["in-tx", "raw"]
    finally:
        await client.close()


async def test_a_transaction_aborted_for_going_quiet_is_retried_whole_never_half_committed(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate aborts a transaction whose client went quiet; that client's next command
    in it is NoSuchTransaction (transient), so the unit of work runs the work again from
    the start. Left to mongoeco, the rest of the work committed without its first write."""
    monkeypatch.setattr(embedded_gate, "IDLE_ABORT_S", 0.3)
    client = make_client(served.url)
    try:
        db = client.contended
        uow = UnitOfWork(client, db)
        attempts = 0

        async def work(tx: Tx) -> None:
            nonlocal attempts
            attempts += 1
            await tx.db.things.insert_one({"step": 1, "attempt": attempts}, session=tx.session)
            if attempts == 1:
                # Another session wants the store while this transaction's client is quiet
                # (it waits for that read) past IDLE_ABORT_S: the gate aborts the transaction.
                await db.other.find_one({})
            await tx.db.things.insert_one({"step": 2, "attempt": attempts}, session=tx.session)

        await uow.run(work)
        stored = sorted([(d["attempt"], d["step"]) async for d in db.things.find({})])
        assert attempts == 2
        assert stored == [(2, 1), (2, 2)]  # one whole attempt, none of the aborted one
    finally:
        await client.close()


async def test_ping_answers_at_once_while_a_transaction_holds_the_store(served: Served) -> None:
    """/readyz pings the store (PyMongo sends it with a session): a store at work is not a
    store that is down."""
    client = make_client(served.url)
    try:
        db = client.contended
        async with client.start_session() as session:
            await session.start_transaction()
            await db.things.insert_one({"_id": "in-tx"}, session=session)
            assert (await asyncio.wait_for(db.command("ping"), WAIT_S / 2))["ok"] == 1.0
            await session.commit_transaction()
    finally:
        await client.close()


async def test_commands_waiting_for_a_transaction_go_in_the_order_they_came(
    served: Served,
) -> None:
    """A line, not a scramble: when the transaction commits, those waiting for it run
    oldest first, so none is passed over until its wait runs out."""
    client = make_client(served.url)
    finished: list[int] = []

    async def insert(n: int) -> None:
        reply = await raw_command(
            served, {"insert": "things", "documents": [{"_id": f"w{n}"}], "$db": "contended"}
        )
        assert reply["ok"] == 1.0, reply
        finished.append(n)

    try:
        async with client.start_session() as session:
            await session.start_transaction()
            await client.contended.things.insert_one({"_id": "in-tx"}, session=session)
            waiting = []
            for n in range(8):
                waiting.append(asyncio.create_task(insert(n)))
                await asyncio.sleep(0.03)
            await session.commit_transaction()
        await asyncio.gather(*waiting)
        assert finished == list(range(8))
    finally:
        await client.close()


async def test_a_command_arriving_as_the_store_comes_free_waits_behind_those_already_waiting(
    served: Served,
) -> None:
    """The moment a transaction ends, those already waiting are woken but have not run yet;
    a command arriving just then found the store free and went first, and under load the
    same waiter could be passed over again and again until its wait ran out."""
    gate = SerialTransactionServer(engine=served.engine, host="127.0.0.1", port=0, wait_s=5)
    went: list[str] = []

    def facts(key: str) -> Any:
        return embedded_gate._Facts(key, "find", starts=False, ends=False, in_transaction=False)

    async def command(key: str) -> None:
        await gate._admit(facts(key), asyncio.get_running_loop().time())
        went.append(key)
        async with gate._turn:  # done: the store is free again
            gate._busy = False
            gate._turn.notify_all()

    async with gate._turn:
        gate._owner = "the-transaction"
        gate._owned_since = gate._owner_seen = asyncio.get_running_loop().time()
    waiting = [asyncio.create_task(command(f"early-{n}")) for n in range(3)]
    await asyncio.sleep(0.05)
    assert went == []
    async with gate._turn:  # the transaction commits...
        gate._owner = None
        gate._turn.notify_all()
    await command("late")  # ...and a new command arrives at once
    await asyncio.gather(*waiting)
    assert went == ["early-0", "early-1", "early-2", "late"]
