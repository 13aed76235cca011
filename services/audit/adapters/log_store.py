"""The event log in MongoDB: one document per event, `_id` = seq, plus a head document.

Appending reads the head, writes the record with seq = head + 1 and moves the head, all in
one transaction whose head update is conditional on the seq it read: two appenders conflict
and one retries, so seq is gap-free and insert order equals commit order.
"""

from typing import Any

from pymongo.errors import DuplicateKeyError

from services.audit.domain.chain import GENESIS_HASH, chain_hash
from shared.clock import utcnow
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

EVENTS = "events"
HEAD = "log_head"


class Duplicate(Exception):
    pass


async def ensure_indexes(db: Database) -> None:
    await db[EVENTS].create_index("event_id", unique=True)
    await db[EVENTS].create_index([("subject", 1), ("_id", 1)])
    await db[EVENTS].create_index([("type", 1), ("_id", 1)])
    await db[EVENTS].create_index([("community_id", 1), ("_id", 1)])
    await db[EVENTS].create_index([("time", 1)])
    await db[HEAD].update_one(
        {"_id": "head"}, {"$setOnInsert": {"seq": 0, "hash": GENESIS_HASH}}, upsert=True
    )


async def append(tx: Tx, event: dict[str, Any]) -> Document:
    session = tx.session
    if await tx.db[EVENTS].find_one({"event_id": event["id"]}, {"_id": 1}, session=session):
        raise Duplicate(event["id"])
    head = await tx.db[HEAD].find_one({"_id": "head"}, session=session)
    if head is None:
        raise RetryTransaction("the log head is not there yet")
    seq = head["seq"] + 1
    record = {
        "_id": seq,
        "event_id": event["id"],
        "type": event["type"],
        "subject": event["subject"],
        "community_id": (event.get("data") or {}).get("community_id"),
        "correlationid": event.get("correlationid"),
        "time": event["time"],
        "received_at": utcnow(),
        "prev_hash": head["hash"],
        "hash": chain_hash(head["hash"], event),
        "event": event,
    }
    try:
        await tx.db[EVENTS].insert_one(record, session=session)
    except DuplicateKeyError:
        raise Duplicate(event["id"]) from None
    moved = await tx.db[HEAD].update_one(
        {"_id": "head", "seq": head["seq"]},
        {"$set": {"seq": seq, "hash": record["hash"]}},
        session=session,
    )
    if moved.matched_count == 0:
        raise RetryTransaction("the log head moved")
    return record


async def page(db: Database, query: Document, after: int, limit: int) -> list[Document]:
    return await db[EVENTS].find({**query, "_id": {"$gt": after}}).sort("_id", 1).to_list(limit)
