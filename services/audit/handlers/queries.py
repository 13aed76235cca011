"""Audit's read side: each function answers one auditor question from the log.

Access is decided before any of these runs (see `entrypoints/http.py`): a secretary's
questions arrive already narrowed to their community.
"""

import csv
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

import structlog

from services.audit.adapters import log_store
from services.audit.adapters.log_store import LogQuery
from services.audit.domain import merkle, responsiveness
from services.audit.domain.chain import GENESIS_HASH
from services.audit.domain.demand_state import DemandState, apply
from services.audit.domain.merkle import Head
from services.audit.domain.responsiveness import Grouping
from services.audit.domain.verification import ChainWalk
from services.audit.domain.wire import event_time
from shared.clock import utcnow
from shared.events.catalogue import DemandPublished
from shared.store.mongo import Database, Document

_log = structlog.get_logger("whistle.audit")

# Demand ids per `$in` query when the report gathers its demands' events.
REPORT_CHUNK = 200


def record_out(record: Document) -> dict[str, Any]:
    return {
        "partition": record["partition"],
        "seq": record["seq"],
        "hash": record["hash"],
        "prev_hash": record["prev_hash"],
        "event": record["event"],
    }


def cursor_of(record: Document) -> str:
    return f"{record['partition']}/{record['seq']}"


def parse_cursor(cursor: str) -> tuple[str, int] | None:
    """`<partition>/<seq>` as `next_cursor` gives it; None when it is not one."""
    partition, slash, seq = cursor.rpartition("/")
    if not slash or not partition or not seq.isdigit() or len(seq) > 18:
        return None
    return partition, int(seq)


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_after: int
    next_cursor: str | None


async def events_page(
    db: Database,
    query: LogQuery,
    *,
    partition: str | None,
    after: int,
    cursor: tuple[str, int] | None,
    limit: int,
) -> Page:
    """One page of matches: of one partition after seq `after`, or of every partition in
    (partition, seq) order after `cursor`; and where the next page starts.

    With no match the cursor stays where it was, so a follower can poll with it.
    """
    if partition is not None:
        records = await log_store.page(db, query, partition, after, limit)
        start: tuple[str, int] | None = (partition, after)
    else:
        records = [r async for r in log_store.scan_across(db, query, start=cursor, limit=limit)]
        start = cursor
    items = [record_out(record) for record in records]
    if records:
        return Page(items, int(records[-1]["seq"]), cursor_of(records[-1]))
    return Page(
        items,
        after if partition is not None else (cursor[1] if cursor else 0),
        f"{start[0]}/{start[1]}" if start else None,
    )


async def heads(db: Database) -> dict[str, Head]:
    return await log_store.heads(db)


async def events_stream(
    db: Database, query: LogQuery, partition: str | None, after: int, upto: Mapping[str, Head]
) -> AsyncIterator[dict[str, Any]]:
    """Every match up to the heads `upto` read when the request came in: of one partition
    after seq `after`, or of every partition (name order), each in seq order."""
    names = [partition] if partition is not None else sorted(upto)
    for name in names:
        head_seq = upto.get(name, (0, ""))[0]
        async for record in log_store.scan(
            db, query, name, after=after if partition is not None else 0, upto=head_seq
        ):
            yield record_out(record)


@dataclass(frozen=True)
class Timeline:
    community_id: str | None
    partition: str
    items: list[dict[str, Any]]
    next_after: int | None  # where the next page starts; None: this page is the last


TIMELINE_PAGE = 500


async def timeline(
    db: Database, demand_id: str, *, after: int = 0, limit: int = TIMELINE_PAGE
) -> Timeline | None:
    """One page of the demand's timeline: at most `limit` records after seq `after` of the
    partition its story is in, so a demand with a long story is read in pages, never held
    whole in memory."""
    partition = await log_store.partition_of_demand(db, demand_id)
    if partition is None:
        return None
    query = LogQuery(demand=demand_id)
    records: list[Document] = []
    more = False
    async for record in log_store.scan(
        db, query, partition, after=after, batch=min(limit + 1, 1000)
    ):
        if len(records) == limit:
            more = True
            break
        records.append(record)
    first = await _first_of(db, partition, query)
    if first is None:
        return None
    published = await _first_of(
        db, partition, LogQuery(demand=demand_id, type=DemandPublished.TYPE)
    )
    whistle = event_time(published["event"]) if published is not None else None
    community = first.get("community_id") or next(
        (r["community_id"] for r in records if r.get("community_id")), None
    )
    items = []
    for record in records:
        item = record_out(record)
        since = (event_time(record["event"]) - whistle).total_seconds() if whistle else None
        item["since_whistle_s"] = round(since, 3) if since is not None else None
        items.append(item)
    return Timeline(
        community, partition, items, int(records[-1]["seq"]) if more and records else None
    )


async def _first_of(db: Database, partition: str, query: LogQuery) -> Document | None:
    async for record in log_store.scan(db, query, partition, batch=1):
        return record
    return None


async def demand_state(db: Database, demand_id: str, as_of: datetime | None) -> DemandState | None:
    """The demand folded from its events whose time is at or before `as_of` (all: None)."""
    partition = await log_store.partition_of_demand(db, demand_id)
    if partition is None:
        return None
    query = LogQuery(demand_ids=[demand_id], until=as_of, until_inclusive=True)
    state: DemandState | None = None
    async for record in log_store.scan(db, query, partition):
        state = apply(state, record["event"], demand_id)
    return state if state is not None and state.published else None


@dataclass(frozen=True)
class ReportQuery:
    start: datetime
    end: datetime
    by: Grouping
    as_of: datetime | None = None
    community_id: str | None = None
    zone: tzinfo = responsiveness.DEFAULT_ZONE


async def responsiveness_report(db: Database, query: ReportQuery) -> dict[str, Any]:
    """Demands whistled in [start, end), each folded from its events up to `as_of`, scored.

    Without `as_of` every event of those demands in the log counts, so the same log always
    gives the same report.
    """
    ids = await log_store.published_demand_ids(db, query.start, query.end, query.community_id)
    tallies = responsiveness.Tallies(query.by, query.zone)
    # A chunk of demands is folded, tallied and dropped: memory holds one chunk's states and
    # the rows, not every demand of the period.
    for first in range(0, len(ids), REPORT_CHUNK):
        chunk = ids[first : first + REPORT_CHUNK]
        states: dict[str, DemandState | None] = {}
        events = LogQuery(demand_ids=chunk, until=query.as_of, until_inclusive=True)
        async for record in log_store.scan_across(db, events):
            demand_id = record["demand_id"]
            states[demand_id] = apply(states.get(demand_id), record["event"], demand_id)
        tallies.add(
            state
            for state in states.values()
            if state is not None and responsiveness.whistled_between(state, query.start, query.end)
        )
    rows = tallies.rows()
    return {
        "rules": responsiveness.rules(query.zone),
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "as_of": query.as_of.isoformat() if query.as_of else None,
        "by": query.by,
        "community_id": query.community_id,
        "rows": [row.as_dict() for row in rows],
        "fairness": tallies.fairness(),
    }


def report_csv(report: dict[str, Any]) -> str:
    """One header line, one line per row; every line carries the rule set's version and
    the window's two fairness indices (across units, across volunteers; empty: no hours)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    kinds = responsiveness.CLAIMANT_KINDS
    writer.writerow(
        ["rules_version", "by", *responsiveness.COLUMNS, *(f"fairness_{kind}s" for kind in kinds)]
    )
    indices = [report["fairness"][kind]["index"] for kind in kinds]
    for row in report["rows"]:
        writer.writerow(
            [
                report["rules"]["version"],
                report["by"],
                *("" if row[name] is None else row[name] for name in responsiveness.COLUMNS),
                *("" if index is None else index for index in indices),
            ]
        )
    return buffer.getvalue()


VERIFY_CHECKPOINT = "verify_checkpoint"


async def verify(
    db: Database, *, partition: str | None = None, full: bool = False
) -> dict[str, Any]:
    """Walk one partition's chain, or every partition's; each up to the head read at the start.

    Every partition is walked to the end, so the verdict names each broken one; the answer's
    `first_bad_seq` and `reason` are the first broken partition's (in name order).
    """
    heads = await log_store.heads(db)
    if partition is not None:
        return await _verify_partition(db, partition, heads.get(partition), full=full)
    verdicts = [await _verify_partition(db, name, heads[name], full=full) for name in sorted(heads)]
    events = sum(int(v.get("events", v.get("events_verified", 0))) for v in verdicts)
    summary: dict[str, Any] = {
        "ok": all(v["ok"] for v in verdicts),
        "events": events,
        "root": merkle.root(heads),
        "walked": sum(int(v["walked"]) for v in verdicts),
        "partitions": verdicts,
    }
    bad = next((v for v in verdicts if not v["ok"]), None)
    if bad is not None:
        summary |= {
            "partition": bad["partition"],
            "first_bad_seq": bad["first_bad_seq"],
            "reason": bad["reason"],
            "events_verified": bad["events_verified"],
        }
        del summary["events"]
    return summary


async def _verify_partition(
    db: Database, partition: str, head: Head | None, *, full: bool
) -> dict[str, Any]:
    """Walk the partition's chain up to `head`; appends meanwhile are not judged.

    A walk that ends ok leaves a checkpoint (seq, hash); the next walk starts there, so a
    repeat only walks what is new, after checking that the checkpoint's record still has
    the hash it was verified with (otherwise, or with `full`, it walks from the start).
    A record rewritten before the checkpoint with the rest re-hashed escapes this check;
    the signed checkpoints (`whistle verify --checkpoints`) are what catch that.
    """
    head_seq, head_hash = head if head is not None else (0, GENESIS_HASH)
    walk = ChainWalk()
    mark = f"verified:{partition}"
    checkpoint = None if full else await db[VERIFY_CHECKPOINT].find_one({"_id": mark})
    if checkpoint is not None and int(checkpoint["seq"]) <= head_seq:
        seq, verified_hash = int(checkpoint["seq"]), str(checkpoint["hash"])
        record = await db[log_store.EVENTS].find_one(
            {"partition": partition, "seq": seq}, {"hash": 1}
        )
        if record is not None and record.get("hash") == verified_hash:
            walk = ChainWalk(events=seq, head_hash=verified_hash)
    start = walk.events
    async for record in log_store.scan(
        db, LogQuery(), partition, after=start, upto=head_seq, batch=1000
    ):
        if not walk.check(record):
            break
    walk.finish({"seq": head_seq, "hash": head_hash})
    verdict = (
        {"partition": partition}
        | walk.verdict()
        | {"walked_from_seq": start, "walked": walk.events - start}
    )
    if walk.ok:
        await db[VERIFY_CHECKPOINT].update_one(
            {"_id": mark},
            {"$set": {"seq": walk.events, "hash": walk.head_hash, "at": utcnow()}},
            upsert=True,
        )
        _log.info(
            "log_verified",
            partition=partition,
            seq=walk.events,
            hash=walk.head_hash,
            walked=walk.events - start,
        )
    else:
        _log.error(
            "log_tampered",
            partition=partition,
            first_bad_seq=walk.first_bad_seq,
            reason=walk.reason,
        )
    return verdict
