"""One more layer of patience for a request whose transaction kept conflicting.

The unit of work already retries a conflicting transaction a dozen times within about a
second. A hot demand at a busy moment can outlast that (the embedded stand-in fails any
writing transaction that overlaps another commit anywhere in the server), so a request gets
a few more rounds, spaced out, before it answers 503 `busy`. Each round starts from scratch,
so a request that finally succeeds is decided on the state as it then is.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable

from shared.store.unit_of_work import TransactionConflict

ROUNDS = 4


async def patiently[T](attempt: Callable[[], Awaitable[T]]) -> T:
    for round_number in range(1, ROUNDS + 1):
        try:
            return await attempt()
        except TransactionConflict:
            if round_number == ROUNDS:
                raise
            await asyncio.sleep(random.uniform(0.05, 0.25) * round_number)
    raise AssertionError("unreachable")
