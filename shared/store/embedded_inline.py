"""The embedded server runs its SQLite work on its own event loop, not in a worker thread.

mongoeco's SQLite engine hands every engine call (a find's fetch, an update, a commit) to a
thread pool and awaits it, so that SQLite never blocks the loop. On Whistle's stores that
buys nothing: the gate (embedded_gate.py) already runs one command at a time, so the loop has
nothing else to do while a call runs except answer handshakes and pings, which take
microseconds and may wait that long. What the hand-off costs is real: a submit, a wake-up of
the loop through its self-pipe and a future's callbacks, for every engine call. py-spy under
the load run put it at about a fifth of notify's store's CPU (ThreadPoolExecutor.submit 6 %,
`_write_to_self` 7.5 %, the futures' set_result chain 8 %), and measured alone a find by
`_id` cost 1.00 ms of the server's CPU through the pool and 0.80 ms inline.

Connecting and disconnecting stay in the pool: they wait on the engine's lifecycle
condition, which another thread may hold. Closing a finished scan reader is mongoeco's own
`run_in_executor` and stays there too; the reader's lock orders it against a fetch.
Context variables (mongoeco's injected clock) are copied per call, as the pool's submit did.
"""

import contextvars
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from mongoeco.engines import SQLiteEngine

_original_run_blocking: Callable[..., Awaitable[Any]] = SQLiteEngine._run_blocking


def _in_the_pool(func: Callable[..., Any]) -> bool:
    """Connect and disconnect (as patched, if they are) wait on the lifecycle condition."""
    function = getattr(func, "__func__", None)
    return function is not None and function in (
        SQLiteEngine._connect_sync,
        SQLiteEngine._disconnect_sync,
    )


async def _run_on_the_loop(
    self: SQLiteEngine, func: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    if _in_the_pool(func):
        return await _original_run_blocking(self, func, *args, **kwargs)
    return contextvars.copy_context().run(partial(func, *args, **kwargs))


def apply() -> None:
    SQLiteEngine._run_blocking = _run_on_the_loop  # type: ignore[method-assign]
