"""The stand-in's engine calls run on its loop (embedded_inline.py): where they run, and that
what MongoDB promises still holds through real PyMongo over the wire: isolation of an open
transaction, aborts that leave nothing, cursors read in batches side by side, a store that
reconnects after a stop."""

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from mongoeco.engines import SQLiteEngine

from shared.store import embedded_inline, embedded_patches
from shared.store.embedded_gate import SerialTransactionServer
from shared.store.mongo import make_client

pytestmark = pytest.mark.broker


def run_blocking(engine: SQLiteEngine) -> Callable[..., Awaitable[Any]]:
    return cast(Callable[..., Awaitable[Any]], engine._run_blocking)


_mark: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="outside")


async def serve(path: Path) -> AsyncIterator[str]:
    engine = SQLiteEngine(str(path))
    async with SerialTransactionServer(
        engine=engine, host="127.0.0.1", port=0, wait_s=5.0
    ) as server:
        yield f"mongodb://{server.address.host}:{server.address.port}/?directConnection=true"


@pytest.fixture
async def url(tmp_path: Path) -> AsyncIterator[str]:
    assert embedded_patches.apply()
    async for served in serve(tmp_path / "inline.sqlite"):
        yield served


async def test_engine_calls_run_on_the_loop_and_lifecycle_calls_in_the_pool(
    tmp_path: Path,
) -> None:
    assert embedded_patches.apply()
    engine = SQLiteEngine(str(tmp_path / "where.sqlite"))
    assert await run_blocking(engine)(threading.get_ident) == threading.get_ident()
    assert embedded_inline._in_the_pool(engine._connect_sync)
    assert embedded_inline._in_the_pool(engine._disconnect_sync)
    assert not embedded_inline._in_the_pool(engine._create_sqlite_connection)


async def test_an_engine_call_sees_the_callers_context_and_cannot_change_it() -> None:
    assert embedded_patches.apply()
    engine = SQLiteEngine(":memory:")
    _mark.set("the command's")

    def work() -> str:
        seen = _mark.get()
        _mark.set("changed inside")
        return seen

    assert await run_blocking(engine)(work) == "the command's"
    assert _mark.get() == "the command's"


async def test_an_open_transaction_is_invisible_to_others_until_it_commits(url: str) -> None:
    writer, reader = make_client(url), make_client(url)
    try:
        things = writer.inline.things
        await things.insert_one({"_id": "x", "n": 1})
        async with writer.start_session() as session:
            await session.start_transaction()
            await things.update_one({"_id": "x"}, {"$set": {"n": 2}}, session=session)
            await things.insert_one({"_id": "y", "n": 9}, session=session)
            # The other client's read waits for its turn (the gate), then sees the commit.
            read = asyncio.create_task(reader.inline.things.find_one({"_id": "x"}))
            await asyncio.sleep(0.2)
            assert not read.done()
            await session.commit_transaction()
        assert (await read) == {"_id": "x", "n": 2}
        assert await reader.inline.things.count_documents({}) == 2
    finally:
        await writer.close()
        await reader.close()


async def test_an_aborted_transaction_leaves_nothing(url: str) -> None:
    client = make_client(url)
    try:
        things = client.inline.things
        await things.insert_one({"_id": "x", "n": 1})
        async with client.start_session() as session:
            await session.start_transaction()
            await things.update_one({"_id": "x"}, {"$set": {"n": 2}}, session=session)
            await things.insert_one({"_id": "y"}, session=session)
            await session.abort_transaction()
        assert [doc async for doc in things.find({})] == [{"_id": "x", "n": 1}]
    finally:
        await client.close()


async def test_cursors_read_in_batches_side_by_side_see_every_document_once(url: str) -> None:
    client = make_client(url)
    try:
        things = client.inline.things
        await things.insert_many([{"_id": f"d{n:04}", "n": n} for n in range(700)])
        first = things.find({}).sort("_id", 1).batch_size(50)
        second = things.find({"n": {"$gte": 350}}).sort("_id", -1).batch_size(30)
        seen_first: list[int] = []
        seen_second: list[int] = []
        async for doc in first:
            seen_first.append(doc["n"])
            if len(seen_second) < 350:
                seen_second.append((await anext(second))["n"])
        assert seen_first == list(range(700))
        assert seen_second == list(range(699, 349, -1))
    finally:
        await client.close()


async def test_a_store_stopped_and_served_again_keeps_what_was_committed(
    tmp_path: Path,
) -> None:
    assert embedded_patches.apply()
    path = tmp_path / "again.sqlite"
    for round_ in range(3):
        async for served in serve(path):
            client = make_client(served)
            try:
                things = client.inline.things
                assert await things.count_documents({}) == round_
                await things.insert_one({"_id": f"r{round_}"})
            finally:
                await client.close()
