"""The `data` of every event type in the contract's catalogue, as frozen pydantic models.

The wire name of an event is written here explicitly (`TYPE`), never derived from a class
name, and each model carries the `DATAVERSION` of its schema. A consumer reads `data` with
`read_data`, which upcasts an older version and refuses a newer one.

Personal data (names, buildings, phones, emails, webhook URLs and secrets, unit members, a
demand's address and description) never travels in an event on `whistle.events`, which audit
records forever. It travels in the `PRIVATE` events below, published to `whistle.private`
(see `shared.broker.topology`), which audit is not bound to. Where the history must prove
what was said, the public event carries `details_digest`: a salted HMAC of the private fields
(`shared.events.digest`), whose salt lives only with the record in the owning service's
database and is deleted when the person is erased.

Each model is the one declaration of its event: `TYPE` (the wire name and routing key),
`DATAVERSION`, `PRODUCER` (the service that emits it), `SUBJECT` (what the envelope's
`subject` names), `WHEN` (one line: when it is emitted; the docs render it), `PRIVATE`, and
`UPCASTS`: for each older version v, a function turning version v's `data` into version
v+1's. A consumer reads `data` with `read_data`, which upcasts an older version and refuses
a newer one (`NewerDataversion`): an old consumer cannot know what a newer producer meant.
"""

from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

Level = Literal["community", "street", "district"]
Priority = Literal["routine", "urgent", "critical"]
DemandKind = Literal["staffing", "task"]
ClaimantType = Literal["unit", "volunteer"]
UnitKind = Literal[
    "department", "enterprise", "school", "social_org", "party_branch", "property", "other"
]
# How much a demand exposes who serves it (issue 14): `high` is kept from the vulnerable.
Exposure = Literal["low", "medium", "high"]
# Self-declared, personal data: only in units' record and `volunteer.details`, never audited.
RiskFactor = Literal["pregnancy", "chronic_illness", "immunocompromised", "disability", "other"]

# A community's fatigue limits (issue 14), each overridable per volunteer. The fields were
# added with defaults, so no DATAVERSION bump: an older event reads as the defaults
# (tolerant reader), and an older consumer ignores them.
DEFAULT_MAX_HOURS_PER_DAY = 10.0
DEFAULT_MIN_REST_HOURS = 11.0
DEFAULT_MAX_CONSECUTIVE_DAYS = 6


# Turns one version's `data` into the next version's (a new dict; the input is not changed).
Upcast = Callable[[dict[str, Any]], dict[str, Any]]


# Every model defined in this module with a `TYPE`, in the order written: the catalogue.
_ALL: list[type["EventData"]] = []


class EventData(BaseModel):
    # Tolerant reader: a newer producer may add fields an older consumer ignores.
    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    DATAVERSION: ClassVar[int] = 1
    PRODUCER: ClassVar[str]
    SUBJECT: ClassVar[str]
    WHEN: ClassVar[str]
    # True: published to `whistle.private`, never to the audited `whistle.events`.
    PRIVATE: ClassVar[bool] = False
    # Older version v -> the function making version v+1's data: one per version below.
    UPCASTS: ClassVar[Mapping[int, Upcast]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # Declaring the model is adding the event: no list to keep in step. Models made
        # elsewhere (tests) are not part of the contract and stay out.
        if cls.__module__ == __name__ and "TYPE" in cls.__dict__:
            if any(model.TYPE == cls.TYPE for model in _ALL):
                raise TypeError(f"two catalogue models say TYPE = {cls.TYPE!r}")
            _ALL.append(cls)

    @classmethod
    def event_type(cls) -> str:
        return cls.TYPE

    @classmethod
    def dataversion(cls) -> int:
        return cls.DATAVERSION


def _without(data: dict[str, Any], *fields: str) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in fields}


def _upcast_demand_published_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 carried the description and the exact place; v2 keeps only the grid."""
    location = data.get("location")
    grid = location.get("grid") if isinstance(location, dict) else None
    return _without(data, "description") | {"location": {"grid": grid}}


def _upcast_claim_v1(data: dict[str, Any]) -> dict[str, Any]:
    """v1 named the members; v2 says how many were named (the names stay in units)."""
    members = data.get("members") or ()
    return _without(data, "members") | {"members_named": len(members), "members_digest": None}


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


# --- zones: a community's grid and its five-colour risk zones (dispatch, issue 13) ----------

# High to low: 红 / 橙 / 黄 / 蓝 / 绿. A grid nobody has rated has no level.
ZoneLevel = Literal["red", "orange", "yellow", "blue", "green"]
ZONE_LEVELS: tuple[ZoneLevel, ...] = ("red", "orange", "yellow", "blue", "green")


class GridUploaded(EventData):
    """An admin uploaded a community's grid (GeoJSON). The geometry stays in dispatch (it
    can be large); the event names the grids and proves the upload by its digest."""

    TYPE = "grid.uploaded"
    PRODUCER = "dispatch"
    SUBJECT = "the community id"
    WHEN = "an admin uploads a community's grid (`PUT /v1/communities/{id}/grid`)"

    community_id: str
    version: int  # the community's grid uploads so far: the highest is the grid in force
    grid_ids: tuple[str, ...]
    buildings: int
    digest: str  # sha256 of the stored GeoJSON (canonical JSON)


class ZoneRated(EventData):
    """The secretary or the street rated a grid: the risk-zone map's history."""

    TYPE = "zone.rated"
    PRODUCER = "dispatch"
    SUBJECT = "the grid, as `<community id>/<grid id>`"
    WHEN = "a secretary or the street rates a grid's risk (`POST .../zones/{grid}/ratings`)"

    community_id: str
    grid_id: str
    level: ZoneLevel
    reason: str
    rated_by: str  # the account id (never a name)
    rated_at: AwareDatetime
    version: int  # the grid's ratings so far: ratings may arrive out of order, keep the highest


class ZoneRuleSet(EventData):
    """A community's eligibility rule tightened (or eased) per risk-zone level: a demand in a
    grid of a listed level is treated as at least that exposure (units applies it)."""

    TYPE = "zone.rule_set"
    PRODUCER = "dispatch"
    SUBJECT = "the community id"
    WHEN = "an admin or the street sets a community's zone rule (`PUT .../zone-rule`)"

    community_id: str
    version: int
    exposure_by_level: dict[ZoneLevel, Exposure]


# --- dispatch -------------------------------------------------------------------------------


class CommunityRegistered(EventData):
    TYPE = "community.registered"
    PRODUCER = "dispatch"
    SUBJECT = "the community id"
    WHEN = "an admin registers a community with its street and district"

    community_id: str
    name: str
    street: str
    district: str
    # Fatigue limits for the community's volunteers (night hours count 1.5x).
    max_hours_per_day: float = DEFAULT_MAX_HOURS_PER_DAY  # in any 24 hours
    min_rest_hours: float = DEFAULT_MIN_REST_HOURS  # between two working periods
    max_consecutive_days: int = DEFAULT_MAX_CONSECUTIVE_DAYS  # days in a row with a shift


class CommunityUpdated(EventData):
    """An admin changed a community's fatigue limits: all three as they now are, and the
    community's version after the change (changes may arrive out of order: keep the highest)."""

    TYPE = "community.updated"
    PRODUCER = "dispatch"
    SUBJECT = "the community id"
    WHEN = "an admin changes a community's fatigue limits (`PATCH /v1/communities/{id}`)"

    community_id: str
    version: int
    max_hours_per_day: float
    min_rest_hours: float
    max_consecutive_days: int


class DemandPublished(EventData):
    TYPE = "demand.published"
    PRODUCER = "dispatch"
    SUBJECT = "the demand id"
    WHEN = "the whistle: a secretary posts a demand"
    DATAVERSION = 2  # v2: description and exact place moved to `demand.details`
    UPCASTS = {1: _upcast_demand_published_v1}

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
    exposure: Exposure = "low"  # added with a default: no DATAVERSION bump (tolerant reader)
    # Salted digest of the `demand.details` fields (description and exact place).
    details_digest: str | None = None
    # A relay roster's turn (issue 14): the unit the turn is committed to, for which units
    # records a claim on its behalf. Added with defaults: no DATAVERSION bump.
    roster_id: str | None = None
    committed_unit_id: str | None = None
    # The series it is an occurrence of (`series.published` lists it); added with a default:
    # no DATAVERSION bump (tolerant reader).
    series_id: str | None = None


class DemandDetails(EventData):
    """The private half of a published demand: what units shows a claimant once accepted."""

    TYPE = "demand.details"
    PRODUCER = "dispatch"
    SUBJECT = "the demand id"
    WHEN = (
        "with every `demand.published`: the description and exact place, on `whistle.private` "
        "only (never audited)"
    )
    PRIVATE = True

    demand_id: str
    community_id: str
    description: str | None = None
    location: Location = Location()


class DemandEscalated(EventData):
    TYPE = "demand.escalated"
    PRODUCER = "dispatch"
    SUBJECT = "the demand id"
    WHEN = "`fill_by` passed with slots still open: community -> street -> district"

    demand_id: str
    community_id: str
    from_level: Level
    to_level: Level
    target: str  # the street or district id the whistle now reaches
    filled: int
    slots: int


class DemandCancelled(EventData):
    TYPE = "demand.cancelled"
    PRODUCER = "dispatch"
    SUBJECT = "the demand id"
    WHEN = "the secretary cancels the demand"

    demand_id: str
    community_id: str
    reason: str


class DemandCompleted(EventData):
    TYPE = "demand.completed"
    PRODUCER = "dispatch"
    SUBJECT = "the demand id"
    WHEN = "the secretary confirms the work done"

    demand_id: str
    community_id: str
    summary: str | None = None


class DemandUpdated(EventData):
    """A secretary edited an open demand: its editable fields as they now are (all of them,
    so a consumer needs no earlier edit), which of them changed, and the demand's version
    after the edit (edits may arrive out of order: keep the highest)."""

    TYPE = "demand.updated"
    PRODUCER = "dispatch"
    SUBJECT = "the demand id"
    WHEN = "the secretary edits a live demand's title, slots, priority, skills or `fill_by`"

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
    PRODUCER = "dispatch"
    SUBJECT = "the demand id"
    WHEN = "`ends_at` passed before the secretary completed the demand"

    demand_id: str
    community_id: str
    filled: int
    slots: int


class RosterTurn(BaseModel):
    model_config = ConfigDict(frozen=True)

    day: date
    unit_id: str
    demand_id: str


class RosterConfirmed(EventData):
    """A relay roster confirmed: each turn's day, unit and the demand published for it, and
    the days no unit could serve (ids and dates only)."""

    TYPE = "roster.confirmed"
    PRODUCER = "dispatch"
    SUBJECT = "the roster id"
    WHEN = (
        "a secretary confirms a proposed relay roster (`POST /v1/rosters/{id}/confirm`); its "
        "turns' demands are published with it"
    )

    roster_id: str
    community_id: str
    first_day: date
    last_day: date
    people_per_turn: int
    turns: tuple[RosterTurn, ...]
    unassigned: tuple[date, ...] = ()


class SeriesPublished(EventData):
    """A batch of a series' occurrences was published, each as its own `demand.published`
    (in the same transaction): their demand ids and starts, in start order. The series'
    creation says it even with an empty batch (its first occurrence beyond the horizon)."""

    TYPE = "series.published"
    PRODUCER = "dispatch"
    SUBJECT = "the series id"
    WHEN = (
        "a series is created, edited, or its stored timer finds occurrences within the horizon:"
        " those are published as demands"
    )

    series_id: str
    community_id: str
    rrule: str
    demand_ids: tuple[str, ...] = ()
    starts: tuple[AwareDatetime, ...] = ()


class SeriesChanged(EventData):
    """The secretary edited the rest of a series: the fields changed, the future demands
    updated in place (each also a `demand.updated`) and those cancelled (each a
    `demand.cancelled`) because the new rule or times no longer have them, or a field no
    demand event carries changed (they are published again: a `series.published` follows)."""

    TYPE = "series.changed"
    PRODUCER = "dispatch"
    SUBJECT = "the series id"
    WHEN = "the secretary edits the rest of a series (`PATCH /v1/series/{id}`)"

    series_id: str
    community_id: str
    version: int
    changed: tuple[str, ...]
    rrule: str
    updated: tuple[str, ...] = ()
    cancelled: tuple[str, ...] = ()


class SeriesCancelled(EventData):
    """The secretary cancelled the rest of a series: its future demands (each also a
    `demand.cancelled`); those already started are left as they are."""

    TYPE = "series.cancelled"
    PRODUCER = "dispatch"
    SUBJECT = "the series id"
    WHEN = "the secretary cancels the rest of a series (`POST /v1/series/{id}/cancel`)"

    series_id: str
    community_id: str
    reason: str
    cancelled: tuple[str, ...] = ()


# --- units ----------------------------------------------------------------------------------


class DemandFilled(EventData):
    TYPE = "demand.filled"
    PRODUCER = "units"
    SUBJECT = "the demand id"
    WHEN = "the last open slot is taken"

    demand_id: str
    community_id: str
    filled: int
    slots: int


class DemandReopened(EventData):
    TYPE = "demand.reopened"
    PRODUCER = "units"
    SUBJECT = "the demand id"
    WHEN = "a slot of a filled demand opens again"

    demand_id: str
    community_id: str
    filled: int
    slots: int


class UnitRegistered(EventData):
    TYPE = "unit.registered"
    PRODUCER = "units"
    SUBJECT = "the unit id"
    WHEN = "an admin registers a stationed unit"
    DATAVERSION = 2  # v2: the contact moved to `unit.details`
    UPCASTS = {1: lambda data: _without(data, "contact")}

    unit_id: str
    name: str  # an organisation's name, not a person's
    kind: UnitKind
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()
    details_digest: str | None = None


class UnitUpdated(EventData):
    """A unit's record was corrected (`PATCH /v1/units/{id}`); `version` orders updates."""

    TYPE = "unit.updated"
    PRODUCER = "units"
    SUBJECT = "the unit id"
    WHEN = "an admin corrects a unit's record (`PATCH /v1/units/{id}`)"

    unit_id: str
    version: int
    name: str
    communities: tuple[str, ...]
    skills: tuple[str, ...] = ()
    details_digest: str | None = None


class UnitDetails(EventData):
    """The private half of a unit's record: how notify reaches it, and its webhook secret."""

    TYPE = "unit.details"
    PRODUCER = "units"
    SUBJECT = "the unit id"
    WHEN = (
        "a unit is registered or corrected, or its webhook secret rotated: its contact and "
        "webhook secret, on `whistle.private` only (never audited)"
    )
    PRIVATE = True

    unit_id: str
    version: int
    contact: Contact = Contact()
    webhook_secret: str | None = None


class VolunteerRegistered(EventData):
    TYPE = "volunteer.registered"
    PRODUCER = "units"
    SUBJECT = "the volunteer id"
    WHEN = "an admin or the community's secretary registers a volunteer"
    DATAVERSION = 2  # v2: name, building and contact moved to `volunteer.details`
    UPCASTS = {1: lambda data: _without(data, "name", "building", "contact")}

    volunteer_id: str
    community_id: str
    skills: tuple[str, ...] = ()
    max_hours_per_week: float = 40
    # The volunteer's own fatigue limits; None: their community's (added with defaults).
    max_hours_per_day: float | None = None
    min_rest_hours: float | None = None
    max_consecutive_days: int | None = None
    details_digest: str | None = None


class VolunteerUpdated(EventData):
    """A volunteer's record was corrected (`PATCH /v1/volunteers/{id}`)."""

    TYPE = "volunteer.updated"
    PRODUCER = "units"
    SUBJECT = "the volunteer id"
    WHEN = (
        "an admin or the community's secretary corrects a volunteer (`PATCH /v1/volunteers/{id}`)"
    )

    volunteer_id: str
    community_id: str
    version: int
    skills: tuple[str, ...] = ()
    max_hours_per_week: float = 40
    # The volunteer's own fatigue limits; None: their community's (added with defaults).
    max_hours_per_day: float | None = None
    min_rest_hours: float | None = None
    max_consecutive_days: int | None = None
    details_digest: str | None = None


class VolunteerErased(EventData):
    """A volunteer's personal data was erased everywhere; the id stays, for the history."""

    TYPE = "volunteer.erased"
    PRODUCER = "units"
    SUBJECT = "the volunteer id"
    WHEN = (
        "an admin or the community's secretary erases a volunteer (`DELETE /v1/volunteers/{id}`);"
        " ids only, their details are gone from every service"
    )

    volunteer_id: str
    community_id: str
    claims_withdrawn: tuple[str, ...] = ()


class VolunteerDetails(EventData):
    """The private half of a volunteer's record: name, building, how notify reaches them."""

    TYPE = "volunteer.details"
    PRODUCER = "units"
    SUBJECT = "the volunteer id"
    WHEN = (
        "a volunteer is registered or corrected, or their webhook secret rotated: name, "
        "building, contact and webhook secret, on `whistle.private` only (never audited)"
    )
    PRIVATE = True

    volunteer_id: str
    community_id: str
    version: int
    name: str
    building: str | None = None
    contact: Contact = Contact()
    webhook_secret: str | None = None
    # Self-declared, for who may take high-exposure work; personal data (added with defaults).
    birth_year: int | None = None
    risk_factors: tuple[RiskFactor, ...] = ()


class ClaimData(EventData):
    """What every claim event says: which claim, on which demand, by whom, for how many.

    v2: the members' names stay in units; the event says how many were named and carries a
    salted digest of the names (the salt is kept with the claim in units)."""

    DATAVERSION = 2
    UPCASTS = {1: _upcast_claim_v1}
    PRODUCER = "units"
    SUBJECT = "the demand id"

    claim_id: str
    demand_id: str
    community_id: str
    claimant: Claimant
    headcount: int
    members_named: int = 0
    members_digest: str | None = None


class ClaimAccepted(ClaimData):
    TYPE = "claim.accepted"
    WHEN = (
        "a claimant reports for the demand and gets slots, or a roster's turn is committed to "
        "a unit (`committed_by`)"
    )

    filled: int
    slots: int
    # The roster whose confirmation made this claim on the unit's behalf (issue 14); None:
    # the claimant's own. Added with a default: no DATAVERSION bump.
    committed_by: str | None = None


class ClaimWaitlisted(ClaimData):
    TYPE = "claim.waitlisted"
    WHEN = "a claimant asked to wait for a full demand (`waitlist: true`)"


class ClaimPromoted(ClaimData):
    TYPE = "claim.promoted"
    WHEN = "a waitlisted claim gets the slots that opened"

    filled: int
    slots: int


class ClaimWithdrawn(ClaimData):
    TYPE = "claim.withdrawn"
    WHEN = "the claimant withdraws"

    reason: str | None = None
    was_accepted: bool = True
    filled: int
    slots: int


class ClaimReleased(ClaimData):
    TYPE = "claim.released"
    WHEN = "the demand was cancelled: every claim holding or awaiting a place"

    reason: str


class ClaimCheckedIn(ClaimData):
    TYPE = "claim.checked_in"
    WHEN = "the claimant checks in on site with the demand's code (the report)"

    checked_in_at: AwareDatetime


class ClaimCompleted(ClaimData):
    TYPE = "claim.completed"
    WHEN = "the claimant reports the work done"

    report: str
    served: int = 0
    hours: float
    person_times: int


class ClaimNoShow(ClaimData):
    TYPE = "claim.no_show"
    WHEN = "`ends_at` passed without a check-in"


class ClaimFacts(EventData):
    """What a claim event says that does not change the claim's standing (no `ClaimData`:
    the consumers of every claim event, dispatch's ledger and notify, have nothing to do).
    The members' names stay in units: a count and a salted digest, as in `ClaimData`."""

    PRODUCER = "units"
    SUBJECT = "the demand id"

    claim_id: str
    demand_id: str
    community_id: str
    claimant: Claimant
    headcount: int
    members_named: int = 0
    members_digest: str | None = None


class ClaimCommitmentAccepted(ClaimFacts):
    TYPE = "claim.commitment_accepted"
    WHEN = "a unit accepts the roster turn committed to it (`POST /v1/claims/{id}/accept`)"

    roster_id: str


class ClaimMembersNamed(ClaimFacts):
    TYPE = "claim.members_named"
    WHEN = "a unit names the people it sends (`PUT /v1/claims/{id}/members`), before check-in"


class ClaimMemberSubstituted(ClaimFacts):
    TYPE = "claim.member_substituted"
    WHEN = (
        "a unit sends one person in another's place (`POST /v1/claims/{id}/members/substitute`),"
        " before check-in"
    )


class ClaimEligibilityOverridden(EventData):
    """A secretary let one volunteer claim a demand a rule would keep them from, once.

    Names the rule, never why it applied (an age or a risk factor is health data); the
    secretary's reason is free text they are asked to keep free of health data."""

    TYPE = "claim.eligibility_overridden"
    PRODUCER = "units"
    SUBJECT = "the demand id"
    WHEN = (
        "a secretary of the demand's community grants one volunteer one claim past an "
        "eligibility rule (`POST /v1/demands/{id}/eligibility-overrides`)"
    )

    demand_id: str
    community_id: str
    volunteer_id: str
    rule: str  # e.g. "high-exposure": which rule is waived, not why it applied
    reason: str
    granted_by: str


# --- notify ---------------------------------------------------------------------------------


class Recipient(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: Literal["unit", "volunteer", "secretary", "street", "district"]
    id: str


class NotificationSent(EventData):
    TYPE = "notification.sent"
    PRODUCER = "notify"
    SUBJECT = "the notification id"
    WHEN = "one delivery on one channel succeeded"

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
    PRODUCER = "notify"
    SUBJECT = "the notification id"
    WHEN = "one delivery on one channel gave up after its retries"

    notification_id: str
    recipient: Recipient
    channel: Literal["inbox", "webhook", "email"]
    cause_event_id: str
    cause_type: str
    demand_id: str | None = None
    community_id: str | None = None
    attempts: int
    error: str


CATALOGUE: dict[str, type[EventData]] = {model.TYPE: model for model in _ALL}
# Every claim event (they share `ClaimData`): a consumer of all of them names this.
CLAIM_EVENTS: tuple[type[ClaimData], ...] = tuple(
    model for model in _ALL if issubclass(model, ClaimData)
)
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


class UnreadableDataversion(ValueError):
    """`data` of a version this consumer cannot read: dead-lettered, never guessed at."""


class NewerDataversion(UnreadableDataversion):
    pass


class MissingUpcast(UnreadableDataversion):
    pass


def upcast(model: type[EventData], data: dict[str, Any], version: int) -> dict[str, Any]:
    """`data` of `version` brought to the model's `DATAVERSION`, one step at a time."""
    if version > model.DATAVERSION:
        raise NewerDataversion(
            f"{model.TYPE} dataversion {version} is newer than this consumer reads "
            f"({model.DATAVERSION}): deploy the consumer that knows it, then move the dead "
            "letter back"
        )
    for step in range(max(version, 1), model.DATAVERSION):
        try:
            up = model.UPCASTS[step]
        except KeyError:
            raise MissingUpcast(
                f"{model.TYPE} has no upcast from dataversion {step} to {step + 1}"
            ) from None
        data = up(data)
    return data


def read_data[T: EventData](model: type[T], data: dict[str, Any], version: int) -> T:
    """The one way a consumer reads `data`: upcast to the current version, then validate.

    Raises `UnreadableDataversion` (newer, or no upcast) or pydantic.ValidationError."""
    return model.model_validate(upcast(model, data, version))


def public_models() -> tuple[type[EventData], ...]:
    """Every event audited on `whistle.events` (all but the `PRIVATE` ones)."""
    return tuple(model for model in _ALL if not model.PRIVATE)
