"""Single-use, short-lived tickets that open an SSE stream without a token in the URL.

RFC 6750 §2.3 advises against bearer tokens in URLs (proxies and servers log them), and a
browser's EventSource cannot set `Authorization`. So a client with a token asks for a ticket
(`POST /v1/inbox/stream-ticket`) and opens `/v1/inbox/stream?ticket=...`. The ticket is kept
in MongoDB, so any notify replica honours it; only its SHA-256 is stored; redeeming deletes it
(single use); it lapses after `ttl` (and a TTL index removes the leftovers).
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.clock import utcnow
from shared.store.mongo import Database
from shared.store.unit_of_work import Tx

TICKETS = "stream_tickets"


async def ensure_indexes(db: Database) -> None:
    await db[TICKETS].create_index("expires_at", expireAfterSeconds=0)


@dataclass(frozen=True)
class Ticket:
    owner: str
    principal: str
    # When the token the ticket was issued for expires: the stream closes then.
    token_expires_at: datetime


def _digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


async def issue(tx: Tx, ticket: Ticket, ttl: timedelta) -> tuple[str, datetime]:
    value = secrets.token_urlsafe(32)
    expires_at = min(utcnow() + ttl, ticket.token_expires_at)
    await tx.db[TICKETS].insert_one(
        {
            "_id": _digest(value),
            "owner": ticket.owner,
            "principal": ticket.principal,
            "token_expires_at": ticket.token_expires_at,
            "expires_at": expires_at,
        },
        session=tx.session,
    )
    return value, expires_at


async def redeem(db: Database, value: str) -> Ticket | None:
    """The ticket's grant, once; None when unknown, used already or lapsed."""
    found = await db[TICKETS].find_one_and_delete(
        {"_id": _digest(value), "expires_at": {"$gt": utcnow()}}
    )
    if found is None:
        return None
    return Ticket(found["owner"], found["principal"], found["token_expires_at"])
