"""The embedded stand-in on its SQLite engine, as `whistle run` uses it, under concurrency."""

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.store.mongo import make_client
from shared.store.unit_of_work import TransactionConflict, Tx, UnitOfWork
from tests.support.processes import ROOT

pytestmark = pytest.mark.broker


@pytest.fixture
def sqlite_mongodb_url(tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "services.cli",
            "mongo",
            "--port",
            "0",
            "--path",
            str(tmp_path / "trial.sqlite"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("ready "), line
        yield line.removeprefix("ready ")
    finally:
        process.terminate()
        process.wait(10)


async def test_transactions_and_plain_operations_from_many_clients_all_succeed(
    sqlite_mongodb_url: str,
) -> None:
    """SQLite holds one transaction for the whole store and used to refuse everyone else."""
    clients = [make_client(sqlite_mongodb_url) for _ in range(3)]  # like three services
    try:

        async def transactions(n: int) -> None:
            client = clients[n]
            uow = UnitOfWork(client, client.trial)
            for i in range(10):

                async def work(tx: Tx, i: int = i) -> None:
                    await tx.db.items.insert_one({"_id": f"{n}-{i}"}, session=tx.session)
                    await tx.db.counts.update_one(
                        {"_id": n}, {"$inc": {"c": 1}}, upsert=True, session=tx.session
                    )

                await uow.run(work)

        async def plain() -> None:
            db = clients[2].trial
            for i in range(20):
                await db.marks.insert_one({"_id": i})
                await db.items.count_documents({})

        await asyncio.wait_for(asyncio.gather(transactions(0), transactions(1), plain()), 60)
        db = clients[0].trial
        assert await db.items.count_documents({}) == 20
        assert {d["c"] async for d in db.counts.find({})} == {10}
        assert await db.marks.count_documents({}) == 20
    finally:
        for client in clients:
            await client.close()


async def test_an_operation_outside_the_open_transaction_waits_bounded_then_is_busy(
    mongodb_url: str,
) -> None:
    """A work function that (wrongly) reads outside its session is refused busy after a
    bounded wait: never let through alongside the open transaction (that was the 500)."""
    client = make_client(mongodb_url)
    try:
        db = client[f"t{uuid.uuid4().hex[:8]}_gate"]
        uow = UnitOfWork(client, db)

        async def work(tx: Tx) -> None:
            await tx.db.inside.update_one(
                {"_id": 1}, {"$set": {"x": 1}}, upsert=True, session=tx.session
            )
            await db.outside.find_one({"_id": 1})  # no session: waits for its own transaction

        with pytest.raises(TransactionConflict, match="busy"):
            await asyncio.wait_for(uow.run(work), 30)
        # The transaction was aborted: nothing of it stored, and the store is free again.
        assert await db.inside.count_documents({}) == 0
        await db.inside.insert_one({"_id": 2})
        assert await db.inside.count_documents({}) == 1
    finally:
        await client.close()
