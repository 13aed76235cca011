"""Inboxes in MongoDB: one document per notification, numbered per owner.

`_id` is deterministic (cause, recipient), so a repeated cause finds its notification already
there. `seq` counts up per owner through a counter document updated in the same transaction:
two transactions for one owner conflict on the counter and one retries, so an owner's items
commit in `seq` order and a reader that resumes "after seq N" (the SSE stream's
`Last-Event-ID`) never skips one. The counter also keeps the owner's unread count, moved in
the transactions that add or mark notifications, so an inbox page reads only its own page.

Uniqueness of (owner, seq) rests on `owner_seq`, one string field, rather than on a compound
unique index: the embedded stand-in checks a compound unique index by decoding every stored
notification on each insert, while a single string field is checked from its index (MongoDB
serves both from an index, so nothing is lost there).
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from services.notify.adapters.batches import find_by_ids
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


async def add_many(tx: Tx, documents: Iterable[Document]) -> list[Document]:
    """Store the notifications that are new, each with its owner's next `seq`; returns them.

    A constant number of commands whatever the batch (a whistle reaches hundreds): one read
    of which ids are already there, the owners' counters moved together, one insert."""
    fresh: dict[str, Document] = {document["_id"]: document for document in documents}
    if not fresh:
        return []
    cursor = find_by_ids(tx.db, NOTIFICATIONS, list(fresh), {"_id": 1}, session=tx.session)
    async for existing in cursor:
        fresh.pop(existing["_id"], None)
    if not fresh:
        return []
    added = Counter(document["owner"] for document in fresh.values())
    try:
        last = await _advance(tx, added)
        next_seq = {owner: last[owner] - count + 1 for owner, count in added.items()}
        stored: list[Document] = []
        for document in fresh.values():
            seq = next_seq[document["owner"]]
            next_seq[document["owner"]] = seq + 1
            stored.append(
                {
                    **document,
                    "seq": seq,
                    "owner_seq": owner_seq(document["owner"], seq),
                    "read": False,
                    "read_at": None,
                }
            )
        await tx.db[NOTIFICATIONS].insert_many(stored, session=tx.session)
    except DuplicateKeyError:
        # A concurrent transaction created a counter or one of these notifications first.
        raise RetryTransaction("inbox insert raced") from None
    return stored


async def _advance(tx: Tx, added: Mapping[str, int]) -> dict[str, int]:
    """Move each owner's `seq` (and unread count) on by what it gets; returns the new seqs."""
    if len(added) == 1:
        [(owner, count)] = added.items()
        counter = await tx.db[COUNTERS].find_one_and_update(
            {"_id": owner},
            {"$inc": {"seq": count, "unread": count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
            session=tx.session,
        )
        if counter is None:
            raise RetryTransaction("inbox counter not returned")
        return {owner: int(counter["seq"])}
    await tx.db[COUNTERS].bulk_write(
        [
            UpdateOne({"_id": owner}, {"$inc": {"seq": count, "unread": count}}, upsert=True)
            for owner, count in added.items()
        ],
        ordered=False,
        session=tx.session,
    )
    cursor = find_by_ids(tx.db, COUNTERS, list(added), {"seq": 1}, session=tx.session)
    seqs = {str(counter["_id"]): int(counter["seq"]) async for counter in cursor}
    if seqs.keys() != added.keys():
        raise RetryTransaction("inbox counters not all returned")
    return seqs


async def page(
    db: Database, owner: str, *, before: int | None, limit: int, unread_only: bool
) -> list[Document]:
    """Newest first; `before` is the `seq` the previous page ended on."""
    query: dict[str, Any] = {"owner": owner}
    if before is not None:
        query["seq"] = {"$lt": before}
    if unread_only:
        query["read"] = False
    # `limit` goes to the server: the (owner, seq) index then serves exactly one page (without
    # it the stand-in decoded every notification of the owner to sort them).
    cursor = db[NOTIFICATIONS].find(query).sort("seq", -1).limit(limit)
    return await cursor.to_list()


async def unread_count(db: Database, owner: str, tx: Tx | None = None) -> int:
    """From the owner's counter: counting the unread notifications would read each one."""
    session = tx.session if tx is not None else None
    counter = await db[COUNTERS].find_one({"_id": owner}, {"unread": 1}, session=session)
    return max(0, int(counter.get("unread", 0))) if counter else 0


async def newer_than(db: Database, owner: str, seq: int, limit: int) -> list[Document]:
    query = {"owner": owner, "seq": {"$gt": seq}}
    return await db[NOTIFICATIONS].find(query).sort("seq", 1).limit(limit).to_list()


async def latest_seq(db: Database, owner: str) -> int:
    counter = await db[COUNTERS].find_one({"_id": owner})
    return int(counter["seq"]) if counter else 0


async def get(db: Database, notification_id: str) -> Document | None:
    return await db[NOTIFICATIONS].find_one({"_id": notification_id})


async def mark_read(tx: Tx, owner: str, notification_id: str) -> Document | None:
    """Mark one notification read (once: the unread count drops only when it was unread)."""
    found = await tx.db[NOTIFICATIONS].find_one_and_update(
        {"_id": notification_id, "owner": owner, "read": False},
        {"$set": {"read": True, "read_at": utcnow()}},
        return_document=ReturnDocument.AFTER,
        session=tx.session,
    )
    if found is not None:
        await _unread_down(tx, owner, 1)
        return found
    return await tx.db[NOTIFICATIONS].find_one(
        {"_id": notification_id, "owner": owner}, session=tx.session
    )


async def mark_read_up_to(tx: Tx, owner: str, seq: int) -> int:
    result = await tx.db[NOTIFICATIONS].update_many(
        {"owner": owner, "read": False, "seq": {"$lte": seq}},
        {"$set": {"read": True, "read_at": utcnow()}},
        session=tx.session,
    )
    await _unread_down(tx, owner, result.modified_count)
    return result.modified_count


async def _unread_down(tx: Tx, owner: str, marked: int) -> None:
    # In the transaction that marked them: the count and the notifications never disagree.
    if marked:
        await tx.db[COUNTERS].update_one(
            {"_id": owner}, {"$inc": {"unread": -marked}}, session=tx.session
        )


async def count_unread_where_missing(db: Database) -> None:
    """Start-up: give counters kept before the unread count existed their count, once.

    Runs before this process consumes anything, so no `$inc` lands on a counter still
    without its count."""
    async for counter in db[COUNTERS].find({"unread": {"$exists": False}}, {"_id": 1}):
        owner = counter["_id"]
        unread = await db[NOTIFICATIONS].count_documents({"owner": owner, "read": False})
        await db[COUNTERS].update_one(
            {"_id": owner, "unread": {"$exists": False}}, {"$set": {"unread": unread}}
        )


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
        {"_id": owner}, {"$inc": {"seq": 0, "unread": 0}}, upsert=True, session=tx.session
    )
    cursor = tx.db[NOTIFICATIONS].find({"owner": owner}, session=tx.session).sort("seq", -1)
    return list(await cursor.limit(limit).to_list())


async def forget_owner(tx: Tx, owner: str) -> None:
    """Erasure: the owner's notifications and their counter go."""
    await tx.db[NOTIFICATIONS].delete_many({"owner": owner}, session=tx.session)
    await tx.db[COUNTERS].delete_one({"_id": owner}, session=tx.session)


async def counters(db: Database, owners: list[str]) -> dict[str, int]:
    """Each owner's latest `seq`, in one query (the SSE watch's round)."""
    cursor = find_by_ids(db, COUNTERS, owners, {"seq": 1})
    return {str(counter["_id"]): int(counter["seq"]) async for counter in cursor}
