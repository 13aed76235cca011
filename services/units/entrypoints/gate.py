"""One claim transaction per demand at a time in this process.

Correctness never rests on this: the slot check and increment are one atomic conditional
update, which holds across replicas. The gate only keeps a hot demand (fifty people tapping
"claim" at once) from turning into fifty transactions that all write the same document and
retry each other's conflicts; across replicas at most one per process contends.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedGate:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._holders[key] -= 1
            if self._holders[key] == 0:  # nobody waits: forget the key, the dict stays small
                del self._holders[key]
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)
