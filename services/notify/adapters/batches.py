"""Reads by many ids, in bounded chunks.

A fan-out reads the contacts, inbox ids and counters of all its recipients at once; one
`$in` per chunk keeps each query document bounded (the embedded stand-in refuses an `$in`
of about 500 values: its SQL expression grows past SQLite's depth limit).
"""

from collections.abc import AsyncIterator, Iterable, Mapping
from itertools import batched
from typing import Any

from pymongo.asynchronous.client_session import AsyncClientSession

from shared.store.mongo import Database, Document

IN_CHUNK = 200


async def find_by_ids(
    db: Database,
    collection: str,
    ids: Iterable[Any],
    projection: Mapping[str, Any] | None = None,
    *,
    session: AsyncClientSession | None = None,
) -> AsyncIterator[Document]:
    """The documents of `collection` whose `_id` is among `ids`, chunk by chunk."""
    for chunk in batched(dict.fromkeys(ids), IN_CHUNK, strict=False):
        cursor = db[collection].find({"_id": {"$in": list(chunk)}}, projection, session=session)
        async for document in cursor:
            yield document
