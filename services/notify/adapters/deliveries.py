"""Pending deliveries (webhook, email) in MongoDB, taken by one worker at a time with a lease.

Each delivery document keeps every attempt (`history`), its state (pending -> sent | dead)
and, while pending, when it may be tried next. A delivery given up on is also copied to the
dead letters, where an operator finds what never arrived and why.
"""

from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from shared.clock import utcnow
from shared.events.catalogue import Recipient
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import RetryTransaction, Tx

DELIVERIES = "deliveries"
DEAD_LETTERS = "dead_letters"


async def ensure_indexes(db: Database) -> None:
    await db[DELIVERIES].create_index([("state", 1), ("next_attempt_at", 1)])
    await db[DELIVERIES].create_index("notification_id")


async def ensure_recipient_index(db: Database) -> None:
    # Erasure finds a person's deliveries without scanning every one.
    await db[DELIVERIES].create_index([("recipient.type", 1), ("recipient.id", 1)])


def _pending(document: Document) -> Document:
    now = utcnow()
    return {
        **document,
        "state": "pending",
        "attempts": 0,
        "history": [],
        "next_attempt_at": now,
        "lease_until": None,
        "lease_owner": None,
        "created_at": now,
    }


async def schedule(tx: Tx, document: Document) -> bool:
    """Schedule one delivery unless it exists (a notification already in the inbox)."""
    if await tx.db[DELIVERIES].find_one({"_id": document["_id"]}, {"_id": 1}, session=tx.session):
        return False
    await tx.db[DELIVERIES].insert_one(_pending(document), session=tx.session)
    return True


async def schedule_new(tx: Tx, documents: list[Document]) -> None:
    """Schedule the deliveries of notifications just created, in one insert."""
    if not documents:
        return
    try:
        await tx.db[DELIVERIES].insert_many(
            [_pending(document) for document in documents], session=tx.session
        )
    except DuplicateKeyError:
        # Only a concurrent catch-up (`deliver_waiting`) could have made one: start again.
        raise RetryTransaction("delivery scheduled concurrently") from None


def _free(now: datetime) -> dict[str, Any]:
    return {"$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}]}


async def due(db: Database, limit: int) -> list[tuple[str, str]]:
    """(id, target) of deliveries due now and not leased, oldest due first."""
    now = utcnow()
    query = {"state": "pending", "next_attempt_at": {"$lte": now}, **_free(now)}
    cursor = db[DELIVERIES].find(query, {"_id": 1, "target": 1}).sort("next_attempt_at", 1)
    return [(document["_id"], document["target"]) for document in await cursor.to_list(limit)]


async def take(db: Database, delivery_id: str, owner: str, until: datetime) -> Document | None:
    """Lease one due delivery for this worker; None if another worker has it or it is done."""
    now = utcnow()
    return await db[DELIVERIES].find_one_and_update(
        {"_id": delivery_id, "state": "pending", **_free(now)},
        {"$set": {"lease_until": until, "lease_owner": owner}},
        return_document=ReturnDocument.AFTER,
    )


async def release(db: Database, delivery_id: str, owner: str) -> None:
    await db[DELIVERIES].update_one(
        {"_id": delivery_id, "state": "pending", "lease_owner": owner},
        {"$set": {"lease_until": None, "lease_owner": None}},
    )


async def record(
    tx: Tx,
    delivery_id: str,
    owner: str,
    attempt: Document,
    *,
    state: str,
    next_attempt_at: datetime | None,
) -> bool:
    """Record one attempt and its outcome; False if this worker no longer holds the lease."""
    changes: dict[str, Any] = {"state": state, "lease_until": None, "lease_owner": None}
    if next_attempt_at is not None:
        changes["next_attempt_at"] = next_attempt_at
    result = await tx.db[DELIVERIES].update_one(
        {"_id": delivery_id, "state": "pending", "lease_owner": owner},
        {"$set": changes, "$inc": {"attempts": 1}, "$push": {"history": attempt}},
        session=tx.session,
    )
    return result.modified_count == 1


async def dead_letter(tx: Tx, delivery: Document, error: str) -> None:
    await tx.db[DEAD_LETTERS].replace_one(
        {"_id": delivery["_id"]},
        {
            "_id": delivery["_id"],
            "notification_id": delivery["notification_id"],
            "channel": delivery["channel"],
            "target": delivery["target"],
            "recipient": delivery["recipient"],
            "attempts": delivery["attempts"] + 1,
            "error": error,
            "payload": delivery["payload"],
            "dead_at": utcnow(),
        },
        upsert=True,
        session=tx.session,
    )


async def of_notification(db: Database, notification_id: str) -> list[Document]:
    return (
        await db[DELIVERIES].find({"notification_id": notification_id}).sort("_id", 1).to_list(10)
    )


async def forget_recipient(tx: Tx, recipient: Recipient) -> None:
    """Erasure: deliveries owed to the recipient stop, and their addresses are not kept."""
    query = {"recipient.type": recipient.type, "recipient.id": recipient.id}
    await tx.db[DELIVERIES].delete_many(query, session=tx.session)
    await tx.db[DEAD_LETTERS].delete_many(query, session=tx.session)
