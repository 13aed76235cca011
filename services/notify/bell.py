"""A per-process bell rung after a commit that created notifications.

SSE streams in this process wait on it so new items go out at once; they also poll, because
another notify replica (or a timer) may have written them.
"""

import asyncio
import contextlib


class InboxBell:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, timeout_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=timeout_s)
