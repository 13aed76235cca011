"""Inboxes in MongoDB: one document per notification, numbered per owner.

`_id` is deterministic (cause, recipient), so a repeated cause finds its notification already
there. `seq` counts up per owner through a counter document updated in the same transaction:
two transactions for one owner conflict on the counter and one retries, so an owner's items
commit in `seq` order and a reader that resumes "after seq N" (the SSE stream's
`Last-Event-ID`) never skips one.

Uniqueness of (owner, seq) rests on `owner_seq`, one string field, rather than on a compound
unique index: the embedded stand-in checks a compound unique index by decoding every stored
notification on each insert, while a single string field is checked from its index (MongoDB
serves both from an index, so nothing is lost there).
"""

from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.clock import utcnow
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

NOTIFICATIONS = "notifications"
COUNTERS = "inbox_counters"


async def ensure_indexes(db: Database) -> None:
    await db[NOTIFICATIONS].create_index(
        "owner_seq", unique=True, partialFilterExpression={"owner_seq": {"$type": "string"}}
    )
    await db[NOTIFICATIONS].create_index([("owner", 1), ("seq", -1)])
    await db[NOTIFICATIONS].create_index([("owner", 1), ("read", 1)])


def owner_seq(owner: str, seq: int) -> str:
    return f"{owner}/{seq}"


async def add(tx: Tx, document: Document) -> Document | None:
    """Store a new notification with the owner's next `seq`; None if it is already there."""
    if await tx.db[NOTIFICATIONS].find_one(
        {"_id": document["_id"]}, {"_id": 1}, session=tx.session
    ):
        return None
    try:
        counter = await tx.db[COUNTERS].find_one_and_update(
            {"_id": document["owner"]},
            {"$inc": {"seq": 1}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        if counter is None:
            raise RetryTransaction("inbox counter not returned")
        seq = counter["seq"]
        stored = {
            **document,
            "seq": seq,
            "owner_seq": owner_seq(document["owner"], seq),
            "read": False,
            "read_at": None,
        }
        await tx.db[NOTIFICATIONS].insert_one(stored, session=tx.session)
    except DuplicateKeyError:
        # A concurrent transaction created the counter or this notification first.
        raise RetryTransaction("inbox insert raced") from None
    return stored


async def page(
    db: Database, owner: str, *, before: int | None, limit: int, unread_only: bool
) -> list[Document]:
    """Newest first; `before` is the `seq` the previous page ended on."""
    query: dict[str, Any] = {"owner": owner}
    if before is not None:
        query["seq"] = {"$lt": before}
    if unread_only:
        query["read"] = False
    return await db[NOTIFICATIONS].find(query).sort("seq", -1).to_list(limit)


async def unread_count(db: Database, owner: str) -> int:
    return await db[NOTIFICATIONS].count_documents({"owner": owner, "read": False})


async def newer_than(db: Database, owner: str, seq: int, limit: int) -> list[Document]:
    query = {"owner": owner, "seq": {"$gt": seq}}
    return await db[NOTIFICATIONS].find(query).sort("seq", 1).to_list(limit)


async def latest_seq(db: Database, owner: str) -> int:
    counter = await db[COUNTERS].find_one({"_id": owner})
    return int(counter["seq"]) if counter else 0


async def get(db: Database, notification_id: str) -> Document | None:
    return await db[NOTIFICATIONS].find_one({"_id": notification_id})


async def mark_read(db: Database, owner: str, notification_id: str) -> Document | None:
    await db[NOTIFICATIONS].update_one(
        {"_id": notification_id, "owner": owner, "read": False},
        {"$set": {"read": True, "read_at": utcnow()}},
    )
    return await db[NOTIFICATIONS].find_one({"_id": notification_id, "owner": owner})


async def mark_read_up_to(db: Database, owner: str, seq: int) -> int:
    result = await db[NOTIFICATIONS].update_many(
        {"owner": owner, "read": False, "seq": {"$lte": seq}},
        {"$set": {"read": True, "read_at": utcnow()}},
    )
    return result.modified_count


def public_view(document: Document) -> dict[str, Any]:
    """The notification as its owner, its webhook and its SSE stream see it (JSON-ready)."""
    read_at = document.get("read_at")
    return {
        "id": document["_id"],
        "seq": document["seq"],
        "recipient": document["recipient"],
        "kind": document["kind"],
        "title": document["title"],
        "body": document["body"],
        "cause_event_id": document["cause_event_id"],
        "cause_type": document["cause_type"],
        "demand_id": document.get("demand_id"),
        "community_id": document.get("community_id"),
        "created_at": document["created_at"].isoformat(),
        "read": document.get("read", False),
        "read_at": read_at.isoformat() if read_at else None,
    }


async def latest(tx: Tx, owner: str, limit: int) -> list[Document]:
    """The owner's newest notifications. Writes the owner's counter first: a notification
    being added meanwhile conflicts with this transaction, so neither misses the other."""
    await tx.db[COUNTERS].update_one(
        {"_id": owner}, {"$inc": {"seq": 0}}, upsert=True, session=tx.session
    )
    cursor = tx.db[NOTIFICATIONS].find({"owner": owner}, session=tx.session).sort("seq", -1)
    return list(await cursor.to_list(limit))


async def forget_owner(tx: Tx, owner: str) -> None:
    """Erasure: the owner's notifications and their counter go."""
    await tx.db[NOTIFICATIONS].delete_many({"owner": owner}, session=tx.session)
    await tx.db[COUNTERS].delete_one({"_id": owner}, session=tx.session)


async def counters(db: Database, owners: list[str]) -> dict[str, int]:
    """Each owner's latest `seq`, in one query (the SSE watch's round)."""
    cursor = db[COUNTERS].find({"_id": {"$in": owners}}, {"seq": 1})
    return {str(counter["_id"]): int(counter["seq"]) async for counter in cursor}
