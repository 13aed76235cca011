"""Audit's read side: each function answers one auditor question from the log.

Access is decided before any of these runs (see `entrypoints/http.py`): a secretary's
questions arrive already narrowed to their community.
"""

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from services.audit.adapters import log_store
from services.audit.adapters.log_store import LogQuery
from services.audit.domain import responsiveness
from services.audit.domain.demand_state import DemandState, apply, event_time
from services.audit.domain.responsiveness import Grouping
from services.audit.domain.verification import ChainWalk
from shared.clock import utcnow
from shared.store.mongo import Database, Document

_log = structlog.get_logger("whistle.audit")

# Demand ids per `$in` query when the report gathers its demands' events.
REPORT_CHUNK = 200


def record_out(record: Document) -> dict[str, Any]:
    return {
        "seq": record["_id"],
        "hash": record["hash"],
        "prev_hash": record["prev_hash"],
        "event": record["event"],
    }


async def events_page(
    db: Database, query: LogQuery, after: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of matches and the `after` that continues from it.

    With no match the cursor stays where it was, so a follower can poll with it.
    """
    records = await log_store.page(db, query, after, limit)
    items = [record_out(record) for record in records]
    return items, items[-1]["seq"] if items else after


async def head_seq(db: Database) -> int:
    return int((await log_store.head(db))["seq"])


async def events_stream(
    db: Database, query: LogQuery, after: int, upto: int
) -> AsyncIterator[dict[str, Any]]:
    """Every match from `after` up to the head seq `upto` read when the request came in."""
    async for record in log_store.scan(db, query, after=after, upto=upto):
        yield record_out(record)


@dataclass(frozen=True)
class Timeline:
    community_id: str | None
    items: list[dict[str, Any]]
    next_after: int | None  # where the next page starts; None: this page is the last


TIMELINE_PAGE = 500


async def timeline(
    db: Database, demand_id: str, *, after: int = 0, limit: int = TIMELINE_PAGE
) -> Timeline | None:
    """One page of the demand's timeline: at most `limit` records after seq `after`, so a
    demand with a long story is read in pages, never held whole in memory."""
    query = LogQuery(demand=demand_id)
    records: list[Document] = []
    more = False
    async for record in log_store.scan(db, query, after=after, batch=min(limit + 1, 1000)):
        if len(records) == limit:
            more = True
            break
        records.append(record)
    first = await _first_of(db, demand_id)
    if first is None:
        return None
    published = await _first_of(db, demand_id, LogQuery(demand=demand_id, type="demand.published"))
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
    return Timeline(community, items, records[-1]["_id"] if more and records else None)


async def _first_of(db: Database, demand_id: str, query: LogQuery | None = None) -> Document | None:
    async for record in log_store.scan(db, query or LogQuery(demand=demand_id), batch=1):
        return record
    return None


async def demand_state(db: Database, demand_id: str, as_of: datetime | None) -> DemandState | None:
    """The demand folded from its events whose time is at or before `as_of` (all: None)."""
    query = LogQuery(demand_ids=[demand_id], until=as_of, until_inclusive=True)
    state: DemandState | None = None
    async for record in log_store.scan(db, query):
        state = apply(state, record["event"], demand_id)
    return state if state is not None and state.published else None


@dataclass(frozen=True)
class ReportQuery:
    start: datetime
    end: datetime
    by: Grouping
    as_of: datetime | None = None
    community_id: str | None = None


async def responsiveness_report(db: Database, query: ReportQuery) -> dict[str, Any]:
    """Demands whistled in [start, end), each folded from its events up to `as_of`, scored.

    Without `as_of` every event of those demands in the log counts, so the same log always
    gives the same report.
    """
    ids = await log_store.published_demand_ids(db, query.start, query.end, query.community_id)
    tallies = responsiveness.Tallies(query.by)
    # A chunk of demands is folded, tallied and dropped: memory holds one chunk's states and
    # the rows, not every demand of the period.
    for first in range(0, len(ids), REPORT_CHUNK):
        chunk = ids[first : first + REPORT_CHUNK]
        states: dict[str, DemandState | None] = {}
        events = LogQuery(demand_ids=chunk, until=query.as_of, until_inclusive=True)
        async for record in log_store.scan(db, events):
            demand_id = record["demand_id"]
            states[demand_id] = apply(states.get(demand_id), record["event"], demand_id)
        tallies.add(
            state
            for state in states.values()
            if state is not None and responsiveness.whistled_between(state, query.start, query.end)
        )
    rows = tallies.rows()
    return {
        "rules": responsiveness.rules(),
        "from": query.start.isoformat(),
        "to": query.end.isoformat(),
        "as_of": query.as_of.isoformat() if query.as_of else None,
        "by": query.by,
        "community_id": query.community_id,
        "rows": [row.as_dict() for row in rows],
    }


def report_csv(report: dict[str, Any]) -> str:
    """One header line, one line per row; every line carries the rule set's version."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["rules_version", "by", *responsiveness.COLUMNS])
    for row in report["rows"]:
        writer.writerow(
            [
                report["rules"]["version"],
                report["by"],
                *("" if row[name] is None else row[name] for name in responsiveness.COLUMNS),
            ]
        )
    return buffer.getvalue()


VERIFY_CHECKPOINT = "verify_checkpoint"


async def verify(db: Database, *, full: bool = False) -> dict[str, Any]:
    """Walk the chain up to the head read at the start; appends meanwhile are not judged.

    A walk that ends ok leaves a checkpoint (seq, hash); the next walk starts there, so a
    repeat only walks what is new, after checking that the checkpoint's record still has
    the hash it was verified with (otherwise, or with `full`, it walks from the start).
    A record rewritten before the checkpoint with the rest re-hashed escapes this check;
    the signed checkpoints (`whistle verify --checkpoints`) are what catch that.
    """
    head = await log_store.head(db)
    walk = ChainWalk()
    checkpoint = None if full else await db[VERIFY_CHECKPOINT].find_one({"_id": "verified"})
    if checkpoint is not None and int(checkpoint["seq"]) <= int(head["seq"]):
        seq, verified_hash = int(checkpoint["seq"]), str(checkpoint["hash"])
        record = await db[log_store.EVENTS].find_one({"_id": seq}, {"hash": 1})
        if record is not None and record.get("hash") == verified_hash:
            walk = ChainWalk(events=seq, head_hash=verified_hash)
    start = walk.events
    async for record in log_store.scan(
        db, LogQuery(), after=start, upto=int(head["seq"]), batch=1000
    ):
        if not walk.check(record):
            break
    walk.finish(head)
    verdict = walk.verdict() | {"walked_from_seq": start, "walked": walk.events - start}
    if walk.ok:
        await db[VERIFY_CHECKPOINT].update_one(
            {"_id": "verified"},
            {"$set": {"seq": walk.events, "hash": walk.head_hash, "at": utcnow()}},
            upsert=True,
        )
        _log.info("log_verified", seq=walk.events, hash=walk.head_hash, walked=walk.events - start)
    else:
        _log.error("log_tampered", first_bad_seq=walk.first_bad_seq, reason=walk.reason)
    return verdict
