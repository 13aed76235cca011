"""Notify's commands, one function each, run by `shared.http.commands.execute` in a unit of
work: marking notifications read, and issuing a stream ticket."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notify.adapters import inbox, stream_tickets
from services.notify.domain.commands import IssueStreamTicket, MarkRead, MarkReadUpTo
from shared.store.mongo import Document
from shared.store.unit_of_work import Tx


@dataclass(frozen=True)
class Marked:
    marked: int
    unread: int


async def mark_read(tx: Tx, command: MarkRead) -> Document | None:
    """The notification as it now stands (read); None when the owner has no such one."""
    return await inbox.mark_read(tx, command.owner, command.notification_id)


async def mark_read_up_to(tx: Tx, command: MarkReadUpTo) -> Marked:
    marked = await inbox.mark_read_up_to(tx, command.owner, command.up_to)
    return Marked(marked, await inbox.unread_count(tx.db, command.owner, tx))


@dataclass(frozen=True)
class Ticket:
    value: str
    expires_at: datetime


async def issue_stream_ticket(tx: Tx, command: IssueStreamTicket, ttl: timedelta) -> Ticket:
    grant = stream_tickets.Ticket(command.owner, command.principal, command.token_expires_at)
    value, expires_at = await stream_tickets.issue(tx, grant, ttl)
    return Ticket(value, expires_at)
