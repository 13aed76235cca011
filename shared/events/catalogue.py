"""The `data` of every event type in the contract's catalogue, as frozen pydantic models.

The wire name of an event is written here explicitly (`TYPE`), never derived from a class
name, and each model carries the `DATAVERSION` of its schema. A consumer parses `data` with
`parse_data`, which picks the model by the envelope's `type`.

Personal data (names, buildings, phones, emails, webhook URLs and secrets, unit members, a
demand's address and description) never travels in an event on `whistle.events`, which audit
records forever. It travels in the `PRIVATE` events below, published to `whistle.private`
(see `shared.broker.topology`), which audit is not bound to. Where the history must prove
what was said, the public event carries `details_digest`: a salted HMAC of the private fields
(`shared.events.digest`), whose salt lives only with the record in the owning service's
database and is deleted when the person is erased.
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
    # True: published to `whistle.private`, never to the audited `whistle.events`.
    PRIVATE: ClassVar[bool] = False

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


class PublicLocation(BaseModel):
    """What an audited event says of a place: the grid only (never a building or address)."""

    model_config = ConfigDict(frozen=True)

    grid: str | None = None


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
    DATAVERSION = 2  # v2: description and exact place moved to `demand.details`

    demand_id: str
    community_id: str
    street: str
    district: str
    kind: DemandKind
    title: str
    location: PublicLocation = PublicLocation()
    skills: tuple[str, ...] = ()
    slots: int
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    fill_by: AwareDatetime
    priority: Priority
    level: Level = "community"
    created_by: str
    # Salted digest of the `demand.details` fields (description and exact place).
    details_digest: str | None = None


class DemandDetails(EventData):
    """The private half of a published demand: what units shows a claimant once accepted."""

    TYPE = "demand.details"
    PRIVATE = True

    demand_id: str
    community_id: str
    description: str | None = None
    location: Location = Location()


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


class DemandUpdated(EventData):
    """A secretary edited an open demand: its editable fields as they now are (all of them,
    so a consumer needs no earlier edit), which of them changed, and the demand's version
    after the edit (edits may arrive out of order: keep the highest)."""

    TYPE = "demand.updated"

    demand_id: str
    community_id: str
    version: int
    changed: tuple[str, ...]
    title: str
    slots: int
    priority: Priority
    skills: tuple[str, ...] = ()
    fill_by: AwareDatetime


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
    DATAVERSION = 2  # v2: the contact moved to `unit.details`

    unit_id: str
    name: str  # an organisation's name, not a person's
    kind: UnitKind
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()
    details_digest: str | None = None


class UnitUpdated(EventData):
    """A unit's record was corrected (`PATCH /v1/units/{id}`); `version` orders updates."""

    TYPE = "unit.updated"

    unit_id: str
    version: int
    name: str
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()
    details_digest: str | None = None


class UnitDetails(EventData):
    """The private half of a unit's record: how notify reaches it, and its webhook secret."""

    TYPE = "unit.details"
    PRIVATE = True

    unit_id: str
    version: int
    contact: Contact = Contact()
    webhook_secret: str | None = None


class VolunteerRegistered(EventData):
    TYPE = "volunteer.registered"
    DATAVERSION = 2  # v2: name, building and contact moved to `volunteer.details`

    volunteer_id: str
    community_id: str
    skills: tuple[str, ...] = ()
    max_hours_per_week: float = 40
    details_digest: str | None = None


class VolunteerUpdated(EventData):
    """A volunteer's record was corrected (`PATCH /v1/volunteers/{id}`)."""

    TYPE = "volunteer.updated"

    volunteer_id: str
    community_id: str
    version: int
    skills: tuple[str, ...] = ()
    max_hours_per_week: float = 40
    details_digest: str | None = None


class VolunteerErased(EventData):
    """A volunteer's personal data was erased everywhere; the id stays, for the history."""

    TYPE = "volunteer.erased"

    volunteer_id: str
    community_id: str
    claims_withdrawn: tuple[str, ...] = ()


class VolunteerDetails(EventData):
    """The private half of a volunteer's record: name, building, how notify reaches them."""

    TYPE = "volunteer.details"
    PRIVATE = True

    volunteer_id: str
    community_id: str
    version: int
    name: str
    building: str | None = None
    contact: Contact = Contact()
    webhook_secret: str | None = None


class ClaimData(EventData):
    """What every claim event says: which claim, on which demand, by whom, for how many.

    v2: the members' names stay in units; the event says how many were named and carries a
    salted digest of the names (the salt is kept with the claim in units)."""

    DATAVERSION = 2

    claim_id: str
    demand_id: str
    community_id: str
    claimant: Claimant
    headcount: int
    members_named: int = 0
    members_digest: str | None = None


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
    DemandDetails,
    DemandEscalated,
    DemandCancelled,
    DemandCompleted,
    DemandUpdated,
    DemandExpired,
    DemandFilled,
    DemandReopened,
    UnitRegistered,
    UnitUpdated,
    UnitDetails,
    VolunteerRegistered,
    VolunteerUpdated,
    VolunteerErased,
    VolunteerDetails,
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
# The types that go to `whistle.private` and never into the audited log.
PRIVATE_TYPES: frozenset[str] = frozenset(model.TYPE for model in _ALL if model.PRIVATE)


def is_private(event_type: str) -> bool:
    return event_type in PRIVATE_TYPES


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
