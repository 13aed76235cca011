"""The embedded MongoDB-wire-compatible server (mongoeco) for trying Whistle out and for tests.

It speaks the MongoDB wire protocol, so the services use the real PyMongo client against it.
It is a stand-in. `whistle run` gives each service a server of its own (one transaction at a
time per store); embedded_patches.py makes inserts check `_id` from the primary key instead of
decoding the whole collection (measured: flat at about 2 ms per insert to 5,000 documents,
where it was 25 ms at 500 and 48 ms at 1,500). Point `MONGODB_URL` at a real MongoDB for
anything beyond a trial.
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
    "Measured (make bench, 8 clients x 5 min, 2 cores): posting a demand p50 0.11 s, "
    "p95 0.36 s; a claim p50 0.32 s, p95 0.71 s; inbox reads p50 1.2 s, p95 2.9 s, slowing "
    "as the store grows; 1 of 3,696 requests answered 500. "
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
