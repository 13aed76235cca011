"""Notify's commands: one small frozen model each (what the reader asked, nothing more)."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Command(BaseModel):
    model_config = ConfigDict(frozen=True)


class MarkRead(Command):
    """Mark one of the owner's notifications read."""

    owner: str
    notification_id: str


class MarkReadUpTo(Command):
    """Mark read everything up to `up_to` (the newest the reader has seen)."""

    owner: str
    up_to: int


class IssueStreamTicket(Command):
    """A single-use ticket to open the owner's stream without a token in the URL."""

    owner: str
    principal: str
    # The stream it opens closes when the token that asked for it expires.
    token_expires_at: datetime
