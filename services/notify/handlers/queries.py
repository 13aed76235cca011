"""Notify's reads: an inbox page, and what became of a notification's deliveries."""

from dataclasses import dataclass
from typing import Any

from services.notify.adapters import deliveries, inbox
from services.notify.domain.access import may_see_deliveries
from shared.auth import Principal
from shared.store.mongo import Database, Document


@dataclass(frozen=True)
class InboxPage:
    items: list[dict[str, Any]]
    next_after: int | None
    unread: int


async def inbox_page(
    db: Database, owner: str, *, after: int | None, limit: int, unread_only: bool
) -> InboxPage:
    """Newest first, one page read (the index serves it); `next_after` while more may follow."""
    items = await inbox.page(db, owner, before=after, limit=limit, unread_only=unread_only)
    return InboxPage(
        items=[inbox.public_view(item) for item in items],
        next_after=items[-1]["seq"] if len(items) == limit else None,
        unread=await inbox.unread_count(db, owner),
    )


async def deliveries_of(
    db: Database, principal: Principal, notification_id: str
) -> list[Document] | None:
    """Each channel's delivery of one notification; None when the principal may not see it
    (or it does not exist: the same answer, so nobody learns another's notification ids)."""
    item = await inbox.get(db, notification_id)
    if item is None or not may_see_deliveries(principal, item["owner"]):
        return None
    return await deliveries.of_notification(db, notification_id)
