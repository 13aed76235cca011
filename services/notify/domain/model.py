"""What notify knows: its own copy of the registry and of demands and claims, plain data.

Notify reads no other service's database; these copies are kept from the events it consumes.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.events.catalogue import (
    ClaimAccepted,
    Claimant,
    ClaimCheckedIn,
    ClaimCompleted,
    ClaimData,
    ClaimNoShow,
    ClaimPromoted,
    ClaimReleased,
    ClaimWaitlisted,
    ClaimWithdrawn,
    Priority,
    Recipient,
)
from shared.events.envelope import CloudEvent

DemandStatus = Literal["open", "filled", "cancelled", "completed", "expired"]
ClaimStatus = Literal[
    "accepted", "waitlisted", "withdrawn", "released", "checked_in", "completed", "no_show"
]
Channel = Literal["inbox", "webhook", "email"]

# Each claim event, and the status it leaves the claim in (one handler serves them all).
CLAIM_STATUS: dict[type[ClaimData], ClaimStatus] = {
    ClaimAccepted: "accepted",
    ClaimPromoted: "accepted",
    ClaimWaitlisted: "waitlisted",
    ClaimWithdrawn: "withdrawn",
    ClaimReleased: "released",
    ClaimCheckedIn: "checked_in",
    ClaimCompleted: "completed",
    ClaimNoShow: "no_show",
}
# Claims whose holder has a place on the demand (and must hear if it is called off).
HOLDING: frozenset[str] = frozenset({"accepted", "checked_in"})
# Claims still waiting for their shift to start (a reminder is due to them).
AWAITING_SHIFT: frozenset[str] = frozenset({"accepted"})
# Demand states in which nobody is being sought any more.
CLOSED: frozenset[str] = frozenset({"cancelled", "completed", "expired"})

# The `kind` of the notifications notify's own timers send (notification kinds, not events:
# the other kinds are the type of the event that caused them).
REMINDER_KIND = "claim.reminder"
REALERT_KIND = "demand.realert"

# The kinds of notify's stored timers.
TIMER_REMINDER = "notify.reminder"
TIMER_REALERT = "notify.realert"
TIMER_FANOUT = "notify.fanout"


@dataclass(frozen=True)
class Policy:
    """The settings the rules depend on."""

    reminder_lead: timedelta
    email_enabled: bool
    # Recipients per fan-out transaction (see `handlers.notices.fan_out`).
    fanout_batch: int = 200


@dataclass(frozen=True)
class NotificationCause:
    """What a notification answers to: an event, or one of notify's own timers."""

    event_id: str
    type: str
    correlationid: str
    demand_id: str | None = None
    community_id: str | None = None

    @classmethod
    def of(cls, event: CloudEvent) -> "NotificationCause":
        return cls(
            event_id=event.id,
            type=event.type,
            correlationid=event.correlationid,
            demand_id=event.data.get("demand_id"),
            community_id=event.data.get("community_id"),
        )

    @classmethod
    def about(cls, demand: "Demand", event_id: str, kind: str) -> "NotificationCause":
        """A cause known by its demand: its publication (handled late), or a timer."""
        return cls(event_id, kind, demand.id, demand.id, demand.community_id)


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Community(Frozen):
    id: str
    name: str
    street: str
    district: str


class Unit(Frozen):
    """Who a unit is for matching; how to reach it is in `adapters.contacts`."""

    id: str
    name: str
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()


class Volunteer(Frozen):
    """A volunteer by id, community and skills only: no name, no contact (see contacts)."""

    id: str
    community_id: str
    skills: tuple[str, ...] = ()


class Demand(Frozen):
    id: str
    community_id: str
    street: str
    district: str
    title: str
    skills: tuple[str, ...]
    slots: int
    filled: int = 0
    priority: Priority
    status: DemandStatus = "open"
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    published_at: datetime
    # The `demand.published` event: a whistle is one notification per person, whichever
    # handler (the publication's or a late-handled registration's) delivers it.
    publication_id: str = ""

    @property
    def unfilled(self) -> bool:
        return self.status not in CLOSED and self.filled < self.slots


class Claim(Frozen):
    id: str
    demand_id: str
    claimant: Claimant
    headcount: int
    status: ClaimStatus


class Notice(Frozen):
    """One notification to one recipient, before it is stored."""

    recipient: Recipient
    kind: str  # the cause event's type, or `claim.reminder` / `demand.realert`
    title: str
    body: str
    # What makes it "the same notification": the cause event id unless several causes say
    # one thing (a cancellation is announced by `demand.cancelled` and `claim.released`).
    dedupe_key: str


def notices(to: list[Recipient], kind: str, text: tuple[str, str], dedupe_key: str) -> list[Notice]:
    """One notice per recipient, all saying `text` (title, body)."""
    title, body = text
    return [
        Notice(recipient=r, kind=kind, title=title, body=body, dedupe_key=dedupe_key) for r in to
    ]
