"""The `data` of every event type in the contract's catalogue, as frozen pydantic models.

The wire name of an event is written here explicitly (`TYPE`), never derived from a class
name, and each model carries the `DATAVERSION` of its schema. A consumer parses `data` with
`parse_data`, which picks the model by the envelope's `type`.
"""

from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

Level = Literal["community", "street", "district"]
Priority = Literal["routine", "urgent", "critical"]
DemandKind = Literal["staffing", "task"]
ClaimantType = Literal["unit", "volunteer"]
UnitKind = Literal[
    "department", "enterprise", "school", "social_org", "party_branch", "property", "other"
]


class EventData(BaseModel):
    # Tolerant reader: a newer producer may add fields an older consumer ignores.
    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    DATAVERSION: ClassVar[int] = 1

    @classmethod
    def event_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def dataversion(cls) -> int:
        return cls.DATAVERSION


class Contact(BaseModel):
    model_config = ConfigDict(frozen=True)

    email: str | None = None
    phone: str | None = None
    webhook_url: str | None = None


class Location(BaseModel):
    model_config = ConfigDict(frozen=True)

    grid: str | None = None
    building: str | None = None
    address: str | None = None
    lat: float | None = None
    lon: float | None = None


class Claimant(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: ClaimantType
    id: str


# --- dispatch -------------------------------------------------------------------------------


class CommunityRegistered(EventData):
    TYPE = "community.registered"

    community_id: str
    name: str
    street: str
    district: str


class DemandPublished(EventData):
    TYPE = "demand.published"

    demand_id: str
    community_id: str
    street: str
    district: str
    kind: DemandKind
    title: str
    description: str | None = None
    location: Location = Location()
    skills: tuple[str, ...] = ()
    slots: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    fill_by: AwareDatetime
    priority: Priority
    level: Level = "community"
    created_by: str


class DemandEscalated(EventData):
    TYPE = "demand.escalated"

    demand_id: str
    community_id: str
    from_level: Level
    to_level: Level
    target: str  # the street or district id the whistle now reaches
    filled: int
    slots: int


class DemandCancelled(EventData):
    TYPE = "demand.cancelled"

    demand_id: str
    community_id: str
    reason: str


class DemandCompleted(EventData):
    TYPE = "demand.completed"

    demand_id: str
    community_id: str
    summary: str | None = None


class DemandExpired(EventData):
    """Not in the contract's table: `ends_at` passed before the secretary completed it."""

    TYPE = "demand.expired"

    demand_id: str
    community_id: str
    filled: int
    slots: int


# --- units ----------------------------------------------------------------------------------


class DemandFilled(EventData):
    TYPE = "demand.filled"

    demand_id: str
    community_id: str
    filled: int
    slots: int


class DemandReopened(EventData):
    TYPE = "demand.reopened"

    demand_id: str
    community_id: str
    filled: int
    slots: int


class UnitRegistered(EventData):
    TYPE = "unit.registered"

    unit_id: str
    name: str
    kind: UnitKind
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()
    contact: Contact = Contact()


class VolunteerRegistered(EventData):
    TYPE = "volunteer.registered"

    volunteer_id: str
    name: str
    community_id: str
    building: str | None = None
    skills: tuple[str, ...] = ()
    max_hours_per_week: float = 40
    contact: Contact = Contact()


class ClaimData(EventData):
    """What every claim event says: which claim, on which demand, by whom, for how many."""

    claim_id: str
    demand_id: str
    community_id: str
    claimant: Claimant
    headcount: int
    members: tuple[str, ...] = ()


class ClaimAccepted(ClaimData):
    TYPE = "claim.accepted"

    filled: int
    slots: int


class ClaimWaitlisted(ClaimData):
    TYPE = "claim.waitlisted"


class ClaimPromoted(ClaimData):
    TYPE = "claim.promoted"

    filled: int
    slots: int


class ClaimWithdrawn(ClaimData):
    TYPE = "claim.withdrawn"

    reason: str | None = None
    was_accepted: bool = True
    filled: int
    slots: int


class ClaimReleased(ClaimData):
    TYPE = "claim.released"

    reason: str


class ClaimCheckedIn(ClaimData):
    TYPE = "claim.checked_in"

    checked_in_at: AwareDatetime


class ClaimCompleted(ClaimData):
    TYPE = "claim.completed"

    report: str
    served: int = 0
    hours: float
    person_times: int


class ClaimNoShow(ClaimData):
    TYPE = "claim.no_show"


# --- notify ---------------------------------------------------------------------------------


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["unit", "volunteer", "secretary", "street", "district"]
    id: str


class NotificationSent(EventData):
    TYPE = "notification.sent"

    notification_id: str
    recipient: Recipient
    channel: Literal["inbox", "webhook", "email"]
    cause_event_id: str
    cause_type: str
    demand_id: str | None = None
    community_id: str | None = None
    attempts: int = 1


class NotificationFailed(EventData):
    TYPE = "notification.failed"

    notification_id: str
    recipient: Recipient
    channel: Literal["inbox", "webhook", "email"]
    cause_event_id: str
    cause_type: str
    demand_id: str | None = None
    community_id: str | None = None
    attempts: int
    error: str


_ALL: tuple[type[EventData], ...] = (
    CommunityRegistered,
    DemandPublished,
    DemandEscalated,
    DemandCancelled,
    DemandCompleted,
    DemandExpired,
    DemandFilled,
    DemandReopened,
    UnitRegistered,
    VolunteerRegistered,
    ClaimAccepted,
    ClaimWaitlisted,
    ClaimPromoted,
    ClaimWithdrawn,
    ClaimReleased,
    ClaimCheckedIn,
    ClaimCompleted,
    ClaimNoShow,
    NotificationSent,
    NotificationFailed,
)

CATALOGUE: dict[str, type[EventData]] = {model.TYPE: model for model in _ALL}


class UnknownEventType(LookupError):
    pass


def data_model_for(event_type: str) -> type[EventData]:
    try:
        return CATALOGUE[event_type]
    except KeyError:
        raise UnknownEventType(event_type) from None


def parse_data[T: EventData](model: type[T], data: dict[str, Any]) -> T:
    """Validate an event's `data` against its model (raises pydantic.ValidationError)."""
    return model.model_validate(data)
