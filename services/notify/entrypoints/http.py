"""Notify's HTTP side: the inbox, its live stream, and what became of a notification's
deliveries."""

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from services.notify.adapters import inbox, metrics
from services.notify.config import NotifySettings
from services.notify.domain.access import principal_key
from services.notify.domain.commands import IssueStreamTicket, MarkRead, MarkReadUpTo
from services.notify.domain.refusals import InvalidLastEventId
from services.notify.entrypoints.dependencies import Db, Owner, StreamOwner, token_expiry
from services.notify.entrypoints.schemas import (
    DeliveryOut,
    InboxPage,
    MarkReadIn,
    MarkReadOut,
    NotificationOut,
    StreamTicketOut,
)
from services.notify.entrypoints.streams import InboxWatch
from services.notify.handlers import commands, queries
from shared.auth import CurrentPrincipal
from shared.clock import utcnow
from shared.http.commands import execute
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse
from shared.http.negotiation import MAX_INT64
from shared.http.problems import not_found
from shared.store.mongo import Document

router = APIRouter(prefix="/v1", tags=["notify"])

STREAM_BATCH = 100

NotificationId = Annotated[str, Path(min_length=1, max_length=100)]


@router.get("/inbox", response_model=InboxPage)
async def list_inbox(
    owner: Owner,
    db: Db,
    after: Annotated[
        int | None, Query(ge=1, le=MAX_INT64, description="`next_after` of the page before")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    unread: Annotated[bool, Query(description="only unread notifications")] = False,
) -> dict[str, Any]:
    """The token's own notifications, newest first."""
    page = await queries.inbox_page(db, owner, after=after, limit=limit, unread_only=unread)
    return asdict(page)


@router.post("/inbox/read", response_model=MarkReadOut)
async def mark_all_read(
    body: MarkReadIn, request: Request, principal: CurrentPrincipal, owner: Owner, runtime: Runtime
) -> JSONResponse:
    """Mark read every notification up to `up_to` (the newest the reader has seen)."""
    command = MarkReadUpTo(owner=owner, up_to=body.up_to)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: commands.mark_read_up_to(tx, command),
        present=lambda done: StoredResponse.of(MarkReadOut(marked=done.marked, unread=done.unread)),
    )


@router.post("/inbox/{notification_id}/read", response_model=NotificationOut)
async def mark_read(
    notification_id: NotificationId,
    request: Request,
    principal: CurrentPrincipal,
    owner: Owner,
    runtime: Runtime,
) -> JSONResponse:
    """Mark one of the token's own notifications read."""
    command = MarkRead(owner=owner, notification_id=notification_id)

    def present(item: Document | None) -> StoredResponse:
        if item is None:
            raise not_found("notification", notification_id)
        return StoredResponse.of(NotificationOut.model_validate(inbox.public_view(item)))

    return await execute(
        runtime, request, principal, lambda tx: commands.mark_read(tx, command), present=present
    )


def _resume_point(last_event_id: str | None) -> int | None:
    if last_event_id is None or last_event_id == "":
        return None
    if not last_event_id.isdigit() or len(last_event_id) > 18:
        raise InvalidLastEventId()
    return int(last_event_id)


@router.post("/inbox/stream-ticket", response_model=StreamTicketOut, status_code=201)
async def stream_ticket(
    request: Request, principal: CurrentPrincipal, owner: Owner, runtime: Runtime
) -> JSONResponse:
    """A single-use ticket to open `/v1/inbox/stream?ticket=...` without a token in the URL.

    Redeem it within `expires_at` (30 s); the stream it opens closes when the token that
    asked for it expires."""
    settings: NotifySettings = request.app.state.settings
    command = IssueStreamTicket(
        owner=owner, principal=principal_key(principal), token_expires_at=token_expiry(request)
    )
    ttl = timedelta(seconds=settings.stream_ticket_ttl_s)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: commands.issue_stream_ticket(tx, command, ttl),
        present=lambda ticket: StoredResponse.of(
            StreamTicketOut(ticket=ticket.value, expires_at=ticket.expires_at), 201
        ),
        # A repeat asks for a fresh ticket (the first may be spent), and a ticket, a secret
        # stored only as its hash, is never kept in a stored response.
        idempotent=False,
    )


@router.get(
    "/inbox/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "`event: notification` lines, `id:` = seq; comments as pings",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
)
async def stream_inbox(
    request: Request,
    access: StreamOwner,
    db: Db,
    last_event_id_header: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    last_event_id: Annotated[str | None, Query(max_length=20)] = None,
) -> EventSourceResponse:
    """New notifications as Server-Sent Events (`event: notification`, `id:` = seq).

    With `Last-Event-ID` (header, as a browser sends on reconnect, or query) the stream
    first replays what came after that id; without it, it starts with what comes next.
    At most 5 open streams per principal (429 `too-many-streams`); the stream ends when the
    token expires (reconnect with a fresh one).
    """
    resume = _resume_point(last_event_id_header or last_event_id)
    owner = access.owner
    settings: NotifySettings = request.app.state.settings
    watch: InboxWatch = request.app.state.inbox_watch
    start = resume if resume is not None else await inbox.latest_seq(db, owner)
    # The slot is taken (or refused) before the response starts; the stream's end gives it
    # back, and so does the response's cleanup should the stream never start.
    subscription = watch.subscribe(access.principal, owner)

    # On server shutdown the stream ends by itself (within one poll), so the response closes
    # cleanly and the browser reconnects elsewhere with its Last-Event-ID.
    shutdown = anyio.Event()

    async def events() -> AsyncIterator[ServerSentEvent]:
        last = start
        look = True  # read the inbox once on opening, then only when the watch wakes us
        try:
            while not shutdown.is_set():
                left_s = (access.expires_at - utcnow()).total_seconds()
                if left_s <= 0:
                    yield ServerSentEvent(event="expired", data="token expired")
                    return
                if look:
                    items = await inbox.newer_than(db, owner, last, STREAM_BATCH)
                    metrics.STREAM_INBOX_READS.inc()
                    for item in items:
                        last = item["seq"]
                        yield ServerSentEvent(
                            data=json.dumps(inbox.public_view(item), ensure_ascii=False),
                            event="notification",
                            id=str(last),
                        )
                    if len(items) == STREAM_BATCH:
                        continue  # more waiting: read on without waiting to be woken
                # Bounded so that shutdown and expiry are noticed in time; a timeout alone
                # costs no query.
                look = await subscription.wait(min(settings.stream_poll_s, max(left_s, 0.05)))
        finally:
            watch.release(subscription)

    return EventSourceResponse(
        events(),
        background=BackgroundTask(watch.release, subscription),
        ping=settings.stream_ping_s,
        shutdown_event=shutdown,
        shutdown_grace_period=settings.stream_poll_s + 1.0,
    )


@router.get("/notifications/{notification_id}/deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    notification_id: NotificationId, principal: CurrentPrincipal, db: Db
) -> list[dict[str, Any]]:
    """Each channel's delivery of one notification, with every attempt (owner or admin)."""
    found = await queries.deliveries_of(db, principal, notification_id)
    if found is None:
        raise not_found("notification", notification_id)
    return [
        {
            "id": delivery["_id"],
            "channel": delivery["channel"],
            "target": delivery["target"],
            "state": delivery["state"],
            "attempts": delivery["attempts"],
            "next_attempt_at": delivery["next_attempt_at"]
            if delivery["state"] == "pending"
            else None,
            "history": delivery["history"],
        }
        for delivery in found
    ]
