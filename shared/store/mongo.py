"""One `AsyncMongoClient` per process and event loop (PyMongo's async API; Motor is retired)."""

from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure

Document = dict[str, Any]
Database = AsyncDatabase[Document]


def make_client(url: str, *, app_name: str = "whistle") -> AsyncMongoClient[Document]:
    # tz_aware: datetimes come back in UTC with their offset, as the contract's RFC 3339 wants.
    return AsyncMongoClient(
        url,
        appname=app_name,
        tz_aware=True,
        serverSelectionTimeoutMS=5000,
        connectTimeoutMS=3000,
        uuidRepresentation="standard",
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
