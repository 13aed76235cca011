"""Dispatch's series collections: the series themselves and one record per occurrence.

An occurrence record's `_id` is its name (`<series>:<start>`, `domain/series.py`), so the
store itself refuses a second record for a day: publishing is `insert` (or the move of a
superseded record back to published), inside the transaction that creates the demand.
"""

from datetime import datetime
from typing import Any, Literal

from pymongo.errors import DuplicateKeyError

from services.dispatch.domain.series import OccurrenceStatus, Series
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

SERIES = "series"
OCCURRENCES = "series_occurrences"


async def ensure_indexes(db: Database) -> None:
    await db[SERIES].create_index([("community_id", 1), ("_id", -1)])
    await db[OCCURRENCES].create_index([("series_id", 1), ("starts_at", 1)])


def _to_document(series: Series) -> dict[str, Any]:
    document = series.model_dump()
    document["_id"] = document.pop("id")
    return document


def _from_document(document: Document) -> Series:
    document = dict(document)
    document["id"] = document.pop("_id")
    return Series.model_validate(document)


async def insert_series(tx: Tx, series: Series) -> None:
    await tx.db[SERIES].insert_one(_to_document(series), session=tx.session)


async def get_series(db: Database, series_id: str, tx: Tx | None = None) -> Series | None:
    session = tx.session if tx else None
    document = await db[SERIES].find_one({"_id": series_id}, session=session)
    return _from_document(document) if document else None


async def save_series(tx: Tx, series: Series) -> Series:
    """Store a changed series as `version + 1`, only if nobody changed it since it was read."""
    saved = series.model_copy(update={"version": series.version + 1})
    replaced = await tx.db[SERIES].replace_one(
        {"_id": series.id, "version": series.version}, _to_document(saved), session=tx.session
    )
    if replaced.matched_count != 1:
        raise RetryTransaction(f"series {series.id} moved past version {series.version}")
    return saved


async def list_series(db: Database, community_id: str | None, limit: int = 100) -> list[Series]:
    query = {} if community_id is None else {"community_id": community_id}
    documents = await db[SERIES].find(query).sort("_id", -1).to_list(limit)
    return [_from_document(document) for document in documents]


async def occurrences(db: Database, series_id: str, tx: Tx | None = None) -> list[Document]:
    """Every occurrence record of the series, in start order."""
    session = tx.session if tx else None
    cursor = db[OCCURRENCES].find({"series_id": series_id}, session=session).sort("starts_at", 1)
    return [document async for document in cursor]


async def record_occurrence(
    tx: Tx,
    key: str,
    series_id: str,
    starts_at: datetime,
    status: Literal["published", "missed"],
    demand_id: str | None,
    previous: Document | None,
) -> None:
    """The occurrence published (or missed); `previous`: its superseded record, if any."""
    fields = {
        "series_id": series_id,
        "starts_at": starts_at,
        "status": status,
        "demand_id": demand_id,
    }
    if previous is None:
        try:
            await tx.db[OCCURRENCES].insert_one({"_id": key, **fields}, session=tx.session)
        except DuplicateKeyError:
            raise RetryTransaction(f"occurrence {key} was recorded concurrently") from None
        return
    replaced = [*previous.get("replaced", []), previous.get("demand_id")]
    moved = await tx.db[OCCURRENCES].update_one(
        {"_id": key, "status": "superseded"},
        {"$set": {**fields, "replaced": [d for d in replaced if d]}},
        session=tx.session,
    )
    if moved.modified_count != 1:
        raise RetryTransaction(f"occurrence {key} was published concurrently")


async def mark_occurrence(tx: Tx, key: str, status: OccurrenceStatus) -> None:
    await tx.db[OCCURRENCES].update_one(
        {"_id": key}, {"$set": {"status": status}}, session=tx.session
    )
