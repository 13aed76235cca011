"""The embedded MongoDB-wire-compatible server (mongoeco) for trying Whistle out and for tests.

It speaks the MongoDB wire protocol, so the services use the real PyMongo client against it.
It is a stand-in: it checks unique indexes by scanning, so inserts slow down as collections
grow (measured on its SQLite engine: 5 ms at 200 documents, 51 ms at 3,000). Point
`MONGODB_URL` at a real MongoDB for anything beyond a trial.
"""

import asyncio
import signal
from contextlib import suppress
from pathlib import Path
from typing import Any

from mongoeco.engines import MemoryEngine, SQLiteEngine
from mongoeco.wire.sessions import WireSessionStore

from shared.store.embedded_gate import SerialTransactionServer

EMBEDDED_WARNING = (
    "the embedded MongoDB stand-in is for trying Whistle out: its inserts slow down as data "
    "grows (measured 5 ms at 200 documents, 51 ms at 3,000 on the SQLite engine). "
    "Set MONGODB_URL to a real MongoDB (a replica set, for transactions) for real use."
)


def _commit_or_abort(self: WireSessionStore, body: dict[str, Any]) -> dict[str, Any]:
    """commitTransaction that aborts a transaction whose commit failed, as MongoDB does.

    mongoeco leaves such a transaction open on its wire session; PyMongo reuses the session
    id for the next transaction, which then silently continues the stale snapshot (its writes
    reappear, later commits lose documents). Aborting on failure restores MongoDB's behaviour.
    """
    session = self._require_session(body)
    if session.transaction_active:
        try:
            session.commit_transaction()
        except BaseException:
            with suppress(Exception):
                session.abort_transaction()
            raise
    return {"ok": 1.0}


WireSessionStore.commit_transaction = _commit_or_abort  # type: ignore[method-assign]


def url_for(host: str, port: int) -> str:
    return f"mongodb://{host}:{port}/?directConnection=true"


async def serve_embedded(
    *, host: str = "127.0.0.1", port: int = 27017, path: Path | None = None
) -> None:
    """Serve until SIGINT/SIGTERM; prints one `ready <url>` line once it accepts connections."""
    engine = SQLiteEngine(str(path)) if path is not None else MemoryEngine()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with SerialTransactionServer(engine=engine, host=host, port=port) as server:
        address = server.address
        print(f"ready {url_for(address.host, address.port)}", flush=True)
        await stop.wait()
