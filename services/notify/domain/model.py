"""What notify knows: its own copy of the registry and of demands and claims, plain data.

Notify reads no other service's database; these copies are kept from the events it consumes.
"""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.events.catalogue import Claimant, Priority, Recipient

DemandStatus = Literal["open", "filled", "cancelled", "completed", "expired"]
ClaimStatus = Literal[
    "accepted", "waitlisted", "withdrawn", "released", "checked_in", "completed", "no_show"
]
Channel = Literal["inbox", "webhook", "email"]

# Claims whose holder has a place on the demand (and must hear if it is called off).
HOLDING: frozenset[str] = frozenset({"accepted", "checked_in"})
# Claims still waiting for their shift to start (a reminder is due to them).
AWAITING_SHIFT: frozenset[str] = frozenset({"accepted"})
# Demand states in which nobody is being sought any more.
CLOSED: frozenset[str] = frozenset({"cancelled", "completed", "expired"})


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
