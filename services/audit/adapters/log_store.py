"""The event log in MongoDB: one document per event, in partitions, each with a head document.

A partition (see `domain/partitions.py`) is a chain of its own: `seq` 1, 2, 3, ... without
gaps and a hash chain from the genesis hash. Appending to a partition reads its head, writes
the records with seq = head + 1, 2, ... and moves the head, all in one transaction whose
head update is conditional on the seq it read: two appenders (two replicas) on one partition
conflict and one retries, so its seq is gap-free and insert order equals commit order (a
record with seq n commits only after n - 1 has, so a reader paging by seq never skips one).
Appenders on different partitions touch different heads and go on in parallel.

A record: `_id` `<partition>/<seq>`, `partition`, `seq`, the stored `event` (the wire dict
verbatim: it is what the hash covers) and beside it the fields readers filter on: `type`,
`subject`, `community_id`, `correlationid`, `demand_id` and `at`, the event's time as a UTC
datetime (ISO strings with different offsets do not compare).

A log written before partitions (records with `_id` = seq, one head `head`) is adopted as
partition `default` at start-up (`ensure_indexes`): the records gain `partition` and `seq`
(the hashed fields are not touched, so it still verifies), the head becomes `default`'s, and
its demands are routed to `default` so their stories stay whole. An audit of the old version
still running then finds no head and fails its appends (they go back to the broker) rather
than fork the chain: stop old replicas before starting new ones.
"""

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.audit.domain.chain import GENESIS_HASH, chain_hash
from services.audit.domain.merkle import Head
from services.audit.domain.partitions import DEFAULT, demand_route
from services.audit.domain.wire import community_id_of, demand_id_of, event_time
from shared.clock import utcnow
from shared.events.catalogue import DemandPublished
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

EVENTS = "events"
HEADS = "log_head"
ROUTES = "partition_routes"
LEGACY_HEAD = "head"
BATCH = 500

_log = structlog.get_logger("whistle.audit")


async def ensure_indexes(db: Database) -> None:
    events = db[EVENTS]
    await events.create_index("event_id", unique=True)
    await events.create_index([("partition", 1), ("seq", 1)])
    for name in ("subject", "type", "community_id", "correlationid", "demand_id"):
        await events.create_index([(name, 1), ("partition", 1), ("seq", 1)])
    await events.create_index([("at", 1)])
    await adopt_single_chain(db)


async def adopt_single_chain(db: Database) -> None:
    """Make a log of the single-chain version partition `default` (idempotent, any replica)."""
    legacy = await db[HEADS].find_one({"_id": LEGACY_HEAD})
    if legacy is not None:
        with contextlib.suppress(DuplicateKeyError):  # another replica adopted it first
            await db[HEADS].insert_one(
                {"_id": DEFAULT, "seq": int(legacy["seq"]), "hash": str(legacy["hash"])}
            )
        await db[HEADS].delete_one({"_id": LEGACY_HEAD})
    adopted = await db[EVENTS].update_many(
        {"partition": {"$exists": False}},
        [{"$set": {"partition": DEFAULT, "seq": "$_id"}}],
    )
    if adopted.modified_count:
        demands = await db[EVENTS].distinct("demand_id", {"partition": DEFAULT})
        for demand in demands:
            if demand is None:
                continue
            await db[ROUTES].update_one(
                {"_id": demand_route(str(demand))},
                {"$setOnInsert": {"partition": DEFAULT}},
                upsert=True,
            )
        _log.info("single_chain_adopted", partition=DEFAULT, records=adopted.modified_count)


@dataclass(frozen=True)
class Appended:
    """What one append transaction did: the seq of each event given (None: a duplicate)."""

    partition: str
    seqs: list[int | None]
    head_seq: int
    head_hash: str


class Misrouted(Exception):
    """A route this append would fix was fixed otherwise meanwhile: place the events again."""

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = list(keys)
        super().__init__(f"routes fixed meanwhile: {', '.join(self.keys)}")


def record_id(partition: str, seq: int) -> str:
    return f"{partition}/{seq}"


def record_for(partition: str, seq: int, prev_hash: str, event: dict[str, Any]) -> Document:
    return {
        "_id": record_id(partition, seq),
        "partition": partition,
        "seq": seq,
        "event_id": event["id"],
        "type": event["type"],
        "subject": event["subject"],
        "community_id": community_id_of(event),
        "correlationid": event.get("correlationid"),
        "demand_id": demand_id_of(event),
        "at": event_time(event),
        "received_at": utcnow(),
        "prev_hash": prev_hash,
        "hash": chain_hash(prev_hash, event),
        "event": event,
    }


async def routes(db: Database, keys: Iterable[str]) -> dict[str, str]:
    """The fixed routes among `keys` (route key -> partition)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    found = db[ROUTES].find({"_id": {"$in": wanted}})
    return {str(route["_id"]): str(route["partition"]) async for route in found}


async def _fix_routes(tx: Tx, fixes: Mapping[str, str]) -> None:
    """Fix the routes with the append, or refuse it when one was fixed otherwise meanwhile."""
    if not fixes:
        return
    found = tx.db[ROUTES].find({"_id": {"$in": sorted(fixes)}}, session=tx.session)
    existing = {str(route["_id"]): str(route["partition"]) async for route in found}
    moved = [key for key, partition in existing.items() if fixes[key] != partition]
    if moved:
        raise Misrouted(moved)
    missing = [
        {"_id": key, "partition": fixes[key]} for key in sorted(fixes) if key not in existing
    ]
    if not missing:
        return
    try:
        await tx.db[ROUTES].insert_many(missing, ordered=True, session=tx.session)
    except (BulkWriteError, DuplicateKeyError) as error:
        if not _is_duplicate_key(error):
            raise
        raise RetryTransaction("a route was fixed concurrently") from None


async def append(
    tx: Tx, partition: str, events: Sequence[dict[str, Any]], fixes: Mapping[str, str]
) -> Appended:
    """Append the events not already in the log to `partition`, in order, in one transaction,
    fixing the routes they settle."""
    session = tx.session
    ids = [event["id"] for event in events]
    stored = tx.db[EVENTS].find({"event_id": {"$in": ids}}, {"event_id": 1}, session=session)
    seen = {record["event_id"] async for record in stored}
    head = await tx.db[HEADS].find_one({"_id": partition}, session=session)
    start_seq, start_hash = (int(head["seq"]), str(head["hash"])) if head else (0, GENESIS_HASH)
    seq, last_hash = start_seq, start_hash
    records: list[Document] = []
    seqs: list[int | None] = []
    for event in events:
        if event["id"] in seen:
            seqs.append(None)
            continue
        seen.add(event["id"])
        seq += 1
        record = record_for(partition, seq, last_hash, event)
        last_hash = record["hash"]
        records.append(record)
        seqs.append(seq)
    if not records:
        return Appended(partition, seqs, start_seq, start_hash)
    await _fix_routes(tx, fixes)
    try:
        await tx.db[EVENTS].insert_many(records, ordered=True, session=session)
        if head is None:
            await tx.db[HEADS].insert_one(
                {"_id": partition, "seq": seq, "hash": last_hash}, session=session
            )
    except (BulkWriteError, DuplicateKeyError) as error:
        if not _is_duplicate_key(error):
            raise
        # Another appender stored one of these (or took this seq) since we read: start again.
        raise RetryTransaction("an event or seq was stored concurrently") from None
    if head is not None:
        moved = await tx.db[HEADS].update_one(
            {"_id": partition, "seq": start_seq},
            {"$set": {"seq": seq, "hash": last_hash}},
            session=session,
        )
        if moved.matched_count == 0:
            raise RetryTransaction("the partition's head moved")
    return Appended(partition, seqs, seq, last_hash)


def _is_duplicate_key(error: BulkWriteError | DuplicateKeyError) -> bool:
    if isinstance(error, DuplicateKeyError):
        return True
    return any(item.get("code") == 11000 for item in error.details.get("writeErrors", []))


async def head(db: Database, partition: str) -> Head:
    found = await db[HEADS].find_one({"_id": partition})
    return (int(found["seq"]), str(found["hash"])) if found else (0, GENESIS_HASH)


async def heads(db: Database) -> dict[str, Head]:
    """Every partition's committed head."""
    return {
        str(doc["_id"]): (int(doc["seq"]), str(doc["hash"]))
        async for doc in db[HEADS].find({"_id": {"$ne": LEGACY_HEAD}})
    }


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


async def page(
    db: Database, query: LogQuery, partition: str, after: int, limit: int
) -> list[Document]:
    cursor = (
        db[EVENTS]
        .find({**query.filter(), "partition": partition, "seq": {"$gt": after}})
        .sort("seq", 1)
    )
    return await cursor.limit(limit).to_list(limit)


async def scan(
    db: Database,
    query: LogQuery,
    partition: str,
    *,
    after: int = 0,
    upto: int | None = None,
    batch: int = BATCH,
) -> AsyncIterator[Document]:
    """Every matching record of `partition` after seq `after` (up to `upto`), a batch at a time.

    Each batch is a fresh keyset query (`seq > last seen`), so memory stays at one batch and
    no server cursor is held open between batches while the client reads slowly.
    """
    while True:
        seq_range: Document = {"$gt": after}
        if upto is not None:
            seq_range["$lte"] = upto
        records = await (
            db[EVENTS]
            .find({**query.filter(), "partition": partition, "seq": seq_range})
            .sort("seq", 1)
            .limit(batch)
            .to_list(batch)
        )
        for record in records:
            yield record
        if len(records) < batch:
            return
        after = records[-1]["seq"]


async def scan_across(
    db: Database,
    query: LogQuery,
    *,
    start: tuple[str, int] | None = None,
    limit: int | None = None,
    batch: int = BATCH,
) -> AsyncIterator[Document]:
    """Every matching record of every partition, in (partition, seq) order, after `start`
    (a partition and a seq in it), at most `limit`; a keyset query per batch, as `scan`."""
    given = 0
    while limit is None or given < limit:
        conditions = [query.filter()]
        if start is not None:
            partition, seq = start
            conditions.append(
                {
                    "$or": [
                        {"partition": partition, "seq": {"$gt": seq}},
                        {"partition": {"$gt": partition}},
                    ]
                }
            )
        size = batch if limit is None else min(batch, limit - given)
        records = await (
            db[EVENTS]
            .find({"$and": conditions})
            .sort([("partition", 1), ("seq", 1)])
            .limit(size)
            .to_list(size)
        )
        for record in records:
            yield record
        given += len(records)
        if len(records) < size:
            return
        start = (str(records[-1]["partition"]), int(records[-1]["seq"]))


async def partition_of_demand(db: Database, demand_id: str) -> str | None:
    """The partition a demand's story is in (None: the log has nothing of it)."""
    found = await db[ROUTES].find_one({"_id": demand_route(demand_id)})
    if found is not None:
        return str(found["partition"])
    # Events that name the demand only as their correlation id (e.g. notifications).
    record = await db[EVENTS].find_one(LogQuery(demand=demand_id).filter(), {"partition": 1})
    return str(record["partition"]) if record is not None else None


async def published_demand_ids(
    db: Database, since: datetime, until: datetime, community_id: str | None
) -> list[str]:
    """Demands whose whistle (`demand.published`) falls in [since, until), in every partition."""
    query = LogQuery(type=DemandPublished.TYPE, community_id=community_id, since=since, until=until)
    return [
        str(record["demand_id"])
        async for record in scan_across(db, query)
        if record.get("demand_id") is not None
    ]
