"""The embedded MongoDB-wire-compatible server (mongoeco) for trying Whistle out and for tests.

It speaks the MongoDB wire protocol, so the services use the real PyMongo client against it.
It is a stand-in. `whistle run` gives each service a server of its own (one transaction at a
time per store, embedded_gate.py); embedded_patches.py removes the stand-in's costs that grew
with the collection under Whistle's workload (the `_id` checks of inserts, `_id` lookups, the
planner's per-write collection scans, a connection per find). Point `MONGODB_URL` at a real
MongoDB for anything beyond a trial.
"""

import asyncio
import signal
from contextlib import suppress
from pathlib import Path

from mongoeco.engines import MemoryEngine, SQLiteEngine

from shared.store import embedded_patches
from shared.store.embedded_gate import SerialTransactionServer

EMBEDDED_WARNING = (
    "the embedded MongoDB stand-in is for trying Whistle out, one store per service. "
    "Measured (make bench's load run, 8 clients without pause x 5 min, 2 cores): posting a "
    "demand p50 0.08 s, p95 0.26 s; a claim p50 0.2 s, p95 0.43 s; inbox reads p50 0.35 s, "
    "p95 0.7 s; no 5xx or 503 in 8,985 requests; at a street's pace a demand p50 27 ms, a "
    "claim p50 34 ms; audit ingests about 1,000 events/s. "
    "Lookups by _id or an indexed field use the indexes; ranges and sorts still read what "
    "those leave, so big stores slow down. "
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
