"""One `AsyncMongoClient` per process and event loop (PyMongo's async API; Motor is retired)."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, ExecutionTimeout
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from shared.metrics import MONGO_COMMANDS

Document = dict[str, Any]
Database = AsyncDatabase[Document]


class CommandCounter(CommandListener):
    """Counts every command on `/metrics`, so `make bench` can show commands per request."""

    def started(self, event: CommandStartedEvent) -> None:
        MONGO_COMMANDS.labels(event.command_name).inc()

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


_COMMAND_COUNTER = CommandCounter()


def make_client(url: str, *, app_name: str = "whistle") -> AsyncMongoClient[Document]:
    # tz_aware: datetimes come back in UTC with their offset, as the contract's RFC 3339 wants.
    return AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        uuidRepresentation="standard",
        event_listeners=[_COMMAND_COUNTER],
    )


async def ping(db: Database) -> None:
    await db.command("ping")


def store_unreachable(error: BaseException) -> bool:
    """The database could not be reached (possibly wrapped, e.g. by TransactionConflict)."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ConnectionFailure):
            return True
        seen = seen.__cause__
    return False


_log = structlog.get_logger("whistle.store")


def store_busy(error: BaseException) -> bool:
    """The store did not get to the command in time (MaxTimeMSExpired): busy, not broken."""
    return isinstance(error, ExecutionTimeout)


async def until_store_answers(
    step: Callable[[], Awaitable[None]], *, what: str, max_delay_s: float = 5.0
) -> None:
    """Run a start-up step, waiting while the store is busy or unreachable: a restart on a
    store still working off a backlog (or not up yet) comes up late, it does not fail."""
    delay = 0.25
    while True:
        try:
            await step()
            return
        except (ExecutionTimeout, ConnectionFailure) as error:
            _log.warning("store_not_ready", step=what, error=type(error).__name__, retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_delay_s)
