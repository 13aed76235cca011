"""The event log in MongoDB: one document per event, `_id` = seq, plus a head document.

Appending reads the head, writes the records with seq = head + 1, 2, ... and moves the head,
all in one transaction whose head update is conditional on the seq it read: two appenders
conflict and one retries, so seq is gap-free and insert order equals commit order (a record
with seq n commits only after n - 1 has, so a reader paging by seq never skips one).

The stored `event` is the wire dict verbatim (it is what the hash covers); beside it, the
fields readers filter on: `type`, `subject`, `community_id`, `correlationid` and `at`, the
event's time as a UTC datetime (ISO strings with different offsets do not compare).
"""

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.audit.domain.chain import GENESIS_HASH, chain_hash
from services.audit.domain.demand_state import demand_id_of, event_time
from shared.clock import utcnow
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

EVENTS = "events"
HEAD = "log_head"
BATCH = 500


async def ensure_indexes(db: Database) -> None:
    events = db[EVENTS]
    await events.create_index("event_id", unique=True)
    await events.create_index([("subject", 1), ("_id", 1)])
    await events.create_index([("type", 1), ("_id", 1)])
    await events.create_index([("community_id", 1), ("_id", 1)])
    await events.create_index([("correlationid", 1), ("_id", 1)])
    await events.create_index([("demand_id", 1), ("_id", 1)])
    await events.create_index([("at", 1)])
    await db[HEAD].update_one(
        {"_id": "head"}, {"$setOnInsert": {"seq": 0, "hash": GENESIS_HASH}}, upsert=True
    )


@dataclass(frozen=True)
class Appended:
    """What one append transaction did: the seq of each event given (None: a duplicate)."""

    seqs: list[int | None]
    head_seq: int
    head_hash: str


def record_for(seq: int, prev_hash: str, event: dict[str, Any]) -> Document:
    data = event["data"] if isinstance(event.get("data"), dict) else {}
    return {
        "_id": seq,
        "event_id": event["id"],
        "type": event["type"],
        "subject": event["subject"],
        "community_id": data.get("community_id"),
        "correlationid": event.get("correlationid"),
        "demand_id": demand_id_of(event),
        "at": event_time(event),
        "received_at": utcnow(),
        "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, event),
        "event": event,
    }


async def append(tx: Tx, events: Sequence[dict[str, Any]]) -> Appended:
    """Append the events not already in the log, in the order given, in one transaction."""
    session = tx.session
    ids = [event["id"] for event in events]
    stored = tx.db[EVENTS].find({"event_id": {"$in": ids}}, {"event_id": 1}, session=session)
    seen = {record["event_id"] async for record in stored}
    head = await tx.db[HEAD].find_one({"_id": "head"}, session=session)
    if head is None:
        raise RetryTransaction("the log head is not there yet")
    seq, last_hash = int(head["seq"]), str(head["hash"])
    records: list[Document] = []
    seqs: list[int | None] = []
    for event in events:
        if event["id"] in seen:
            seqs.append(None)
            continue
        seen.add(event["id"])
        seq += 1
        record = record_for(seq, last_hash, event)
        last_hash = record["hash"]
        records.append(record)
        seqs.append(seq)
    if not records:
        return Appended(seqs, int(head["seq"]), str(head["hash"]))
    try:
        await tx.db[EVENTS].insert_many(records, ordered=True, session=session)
    except (BulkWriteError, DuplicateKeyError) as error:
        if not _is_duplicate_key(error):
            raise
        # Another appender stored one of these (or took this seq) since we read: start again.
        raise RetryTransaction("an event or seq was stored concurrently") from None
    moved = await tx.db[HEAD].update_one(
        {"_id": "head", "seq": head["seq"]},
        {"$set": {"seq": seq, "hash": last_hash}},
        session=session,
    )
    if moved.matched_count == 0:
        raise RetryTransaction("the log head moved")
    return Appended(seqs, seq, last_hash)


def _is_duplicate_key(error: BulkWriteError | DuplicateKeyError) -> bool:
    if isinstance(error, DuplicateKeyError):
        return True
    return any(item.get("code") == 11000 for item in error.details.get("writeErrors", []))


async def head(db: Database) -> Document:
    found = await db[HEAD].find_one({"_id": "head"})
    return found or {"_id": "head", "seq": 0, "hash": GENESIS_HASH}


@dataclass(frozen=True)
class LogQuery:
    """A filter over the log; every field narrows it."""

    type: str | None = None
    subject: str | None = None
    community_id: str | None = None
    correlationid: str | None = None
    # A demand's own events and every event that names it (claims, notifications).
    demand: str | None = None
    demand_ids: Sequence[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    until_inclusive: bool = False

    def filter(self) -> Document:
        query: Document = {}
        for name in ("type", "subject", "community_id", "correlationid"):
            if (value := getattr(self, name)) is not None:
                query[name] = value
        if self.demand is not None:
            query["$or"] = [{"demand_id": self.demand}, {"correlationid": self.demand}]
        if self.demand_ids is not None:
            query["demand_id"] = {"$in": list(self.demand_ids)}
        bounds: Document = {}
        if self.since is not None:
            bounds["$gte"] = self.since
        if self.until is not None:
            bounds["$lte" if self.until_inclusive else "$lt"] = self.until
        if bounds:
            query["at"] = bounds
        return query


async def page(db: Database, query: LogQuery, after: int, limit: int) -> list[Document]:
    cursor = db[EVENTS].find({**query.filter(), "_id": {"$gt": after}}).sort("_id", 1)
    return await cursor.limit(limit).to_list(limit)


async def scan(
    db: Database, query: LogQuery, *, after: int = 0, upto: int | None = None, batch: int = BATCH
) -> AsyncIterator[Document]:
    """Every matching record after `after` (up to seq `upto`), fetched a batch at a time.

    Each batch is a fresh keyset query (`_id > last seen`), so memory stays at one batch and
    no server cursor is held open between batches while the client reads slowly.
    """
    while True:
        seq_range: Document = {"$gt": after}
        if upto is not None:
            seq_range["$lte"] = upto
        records = await (
            db[EVENTS]
            .find({**query.filter(), "_id": seq_range})
            .sort("_id", 1)
            .limit(batch)
            .to_list(batch)
        )
        for record in records:
            yield record
        if len(records) < batch:
            return
        after = records[-1]["_id"]


async def published_demand_ids(
    db: Database, since: datetime, until: datetime, community_id: str | None
) -> list[str]:
    """Demands whose whistle (`demand.published`) falls in [since, until)."""
    query = LogQuery(type="demand.published", community_id=community_id, since=since, until=until)
    return [
        str(record["demand_id"])
        async for record in scan(db, query)
        if record.get("demand_id") is not None
    ]
