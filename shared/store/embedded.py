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
from shared.store import embedded_patches
from shared.store.embedded_gate import SerialTransactionServer

EMBEDDED_WARNING = (
    "the embedded MongoDB stand-in is for trying Whistle out: its inserts slow down as data "
    "grows (measured 5 ms at 200 documents, 51 ms at 3,000 on the SQLite engine). "
    "Set MONGODB_URL to a real MongoDB (a replica set, for transactions) for real use."
)


embedded_patches.apply()


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
