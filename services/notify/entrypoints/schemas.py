"""What notify's HTTP side returns (the contract's notify section, and what it leaves open)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from shared.events.catalogue import Recipient
from shared.http.negotiation import MAX_INT64


class NotificationOut(BaseModel):
    id: str
    seq: int  # the owner's running number: the SSE event id, and the paging cursor
    recipient: Recipient
    kind: str
    title: str
    body: str
    cause_event_id: str
    cause_type: str
    demand_id: str | None
    community_id: str | None
    created_at: datetime
    read: bool
    read_at: datetime | None


class InboxPage(BaseModel):
    items: list[NotificationOut]
    next_after: int | None  # pass as `after` for the next (older) page; null at the end
    unread: int


class MarkReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Everything up to this `seq` (what the reader has seen), not what arrived since.
    up_to: int = Field(ge=1, le=MAX_INT64)


class MarkReadOut(BaseModel):
    marked: int
    unread: int


class AttemptOut(BaseModel):
    at: datetime
    by: str | None = None
    ok: bool
    status: int | None
    error: str | None
    duration_ms: int


class DeliveryOut(BaseModel):
    id: str
    channel: str
    target: str
    state: str  # pending, sent or dead
    attempts: int
    next_attempt_at: datetime | None
    history: list[AttemptOut]


class StreamTicketOut(BaseModel):
    ticket: str = Field(description="pass as `?ticket=` to /v1/inbox/stream, once")
    expires_at: datetime
