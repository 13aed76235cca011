"""Dispatch's commands, events and timers, one function each: check the rule, change the state,
emit the event (through the outbox, in the same transaction)."""

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from services.dispatch.adapters import reach, repository
from services.dispatch.domain import lifecycle
from services.dispatch.domain.claims import ClaimLedger
from services.dispatch.domain.model import Community, Demand
from services.dispatch.entrypoints.schemas import CancelIn, CommunityIn, CompleteIn, DemandIn
from shared.auth import Principal, Role, forbidden
from shared.clock import as_utc, utcnow
from shared.events.catalogue import (
    ClaimAccepted,
    ClaimCheckedIn,
    ClaimData,
    ClaimPromoted,
    ClaimReleased,
    ClaimWithdrawn,
    CommunityRegistered,
    DemandCancelled,
    DemandCompleted,
    DemandDetails,
    DemandEscalated,
    DemandExpired,
    DemandFilled,
    DemandPublished,
    DemandReopened,
    EventData,
    Location,
    PublicLocation,
)
from shared.events.digest import details_digest, new_salt
from shared.events.envelope import CloudEvent, make_event
from shared.http.problems import ProblemError
from shared.ids import new_id
from shared.store import timers
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import Tx

SOURCE = "/whistle/dispatch"
ACTOR = "dispatch"
ESCALATE = "demand.escalate"
EXPIRE = "demand.expire"

_log = structlog.get_logger("whistle.dispatch")
# A demand's deadline may lie this far in the past (clocks differ), not more.
PAST_LEEWAY = timedelta(minutes=1)
# The versions If-Match admits (strongly matched entity tags); None: no precondition.
Expected = frozenset[int] | None


def _event(data: EventData, demand: Demand, causationid: str, actor: str) -> CloudEvent:
    return make_event(
        data,
        source=SOURCE,
        subject=demand.id,
        correlationid=demand.id,
        causationid=causationid,
        actor=actor,
    )


def _not_found(demand_id: str) -> ProblemError:
    return ProblemError(404, "not-found", "Not found", f"no demand '{demand_id}'")


# --- communities ------------------------------------------------------------------------------


async def register_community(tx: Tx, command: CommunityIn, actor: Principal) -> Community:
    """Register a community; its id, street and district share one namespace of place ids."""
    community = Community(**command.model_dump())
    try:
        await repository.insert_community(tx, community)
    except repository.AlreadyExists:
        raise ProblemError(
            409,
            "community-exists",
            "Community exists",
            f"a community with id '{community.id}' is already registered",
        ) from None
    places = (
        (community.id, "community", "id"),
        (community.street, "street", "street"),
        (community.district, "district", "district"),
    )
    if len({place for place, _, _ in places}) < len(places):
        raise _place_taken("the community, its street and its district need three distinct ids")
    for place, kind, field in places:
        if (taken_as := await repository.claim_place(tx, place, kind)) is not None:
            raise _place_taken(
                f"'{place}' is already the id of a {taken_as}; it cannot also name a {kind}",
                field,
            )
    tx.emit(
        make_event(
            CommunityRegistered(
                community_id=community.id,
                name=community.name,
                street=community.street,
                district=community.district,
            ),
            source=SOURCE,
            subject=community.id,
            correlationid=community.id,
            causationid=community.id,
            actor=actor.sub,
        )
    )
    return community


def _place_taken(detail: str, field: str | None = None) -> ProblemError:
    errors = [{"loc": ["body", field], "msg": detail, "type": "id_taken"}] if field else None
    return ProblemError(409, "id-taken", "Id taken", detail, errors=errors)


def _stored(moment: datetime) -> datetime:
    """The instant as MongoDB keeps it (UTC, milliseconds): answer and compare what is stored."""
    moment = as_utc(moment)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


# --- the whistle ------------------------------------------------------------------------------


def _escalation_key(demand_id: str, level: str, version: int | None = None) -> str:
    suffix = f":v{version}" if version is not None else ""
    return f"escalate:{demand_id}:{level}{suffix}"


def _expiry_keys(demand_id: str) -> tuple[str, str]:
    return f"expire:{demand_id}", f"expire:{demand_id}:grace"


async def publish_demand(tx: Tx, command: DemandIn, actor: Principal, request_id: str) -> Demand:
    """The whistle: a secretary of the community (or an admin) posts a demand."""
    if not (actor.is_admin or actor.is_secretary_of(command.community_id)):
        raise forbidden(
            f"only the secretary of community '{command.community_id}' posts its demands"
        )
    now = utcnow()
    if command.ends_at <= now:
        raise ProblemError(
            422,
            "validation-error",
            "Unprocessable content",
            "the request is not valid: body.ends_at",
            errors=[{"loc": ["body", "ends_at"], "msg": "ends_at is in the past", "type": "past"}],
        )
    # A deadline already passed would escalate at once; a minute of leeway for clocks.
    if (command.fill_by or command.starts_at) < now - PAST_LEEWAY:
        field = "fill_by" if command.fill_by is not None else "starts_at"
        raise ProblemError(
            422,
            "validation-error",
            "Unprocessable content",
            f"the request is not valid: body.{field} is in the past",
            errors=[{"loc": ["body", field], "msg": f"{field} is in the past", "type": "past"}],
        )
    community = await repository.get_community(tx.db, command.community_id, tx)
    if community is None:
        raise ProblemError(
            422,
            "unknown-community",
            "Unknown community",
            f"community '{command.community_id}' is not registered",
            errors=[
                {
                    "loc": ["body", "community_id"],
                    "msg": "unknown community",
                    "type": "unknown_community",
                }
            ],
        )
    demand_id = new_id("dem")
    demand = Demand(
        id=demand_id,
        community_id=community.id,
        street=community.street,
        district=community.district,
        kind=command.kind,
        title=command.title,
        description=command.description,
        location=Location(**command.location.model_dump()),
        skills=tuple(command.skills),
        slots=command.slots,
        starts_at=_stored(command.starts_at),
        ends_at=_stored(command.ends_at),
        fill_by=_stored(command.fill_by or command.starts_at),
        priority=command.priority,
        status="open",
        filled=0,
        level="community",
        created_at=now,
        created_by=actor.sub,
        version=1,
        escalation_timer=_escalation_key(demand_id, "street"),
        details_salt=new_salt(),
    )
    await repository.insert_demand(tx, demand)
    await timers.schedule(
        tx,
        _escalation_key(demand.id, "street"),
        ESCALATE,
        demand.fill_by,
        {"demand_id": demand.id, "to_level": "street"},
    )
    await timers.schedule(
        tx,
        _expiry_keys(demand.id)[0],
        EXPIRE,
        demand.ends_at,
        {"demand_id": demand.id, "grace": False},
    )
    details = DemandDetails(
        demand_id=demand.id,
        community_id=demand.community_id,
        description=demand.description,
        location=demand.location,
    )
    assert demand.details_salt is not None
    digest = details_digest(
        demand.details_salt, details.model_dump(mode="json", include={"description", "location"})
    )
    # The exact place and the description go to the private exchange only (audit never
    # records them); the audited publication proves them by a salted digest.
    tx.emit(
        make_event(
            details,
            source=SOURCE,
            subject=demand.id,
            correlationid=demand.id,
            causationid=request_id,
            actor=actor.sub,
            time=now,
        ),
        make_event(
            DemandPublished(
                demand_id=demand.id,
                community_id=demand.community_id,
                street=demand.street,
                district=demand.district,
                kind=demand.kind,
                title=demand.title,
                location=PublicLocation(grid=demand.location.grid),
                details_digest=digest,
                skills=demand.skills,
                slots=demand.slots,
                starts_at=demand.starts_at,
                ends_at=demand.ends_at,
                fill_by=demand.fill_by,
                priority=demand.priority,
                level=demand.level,
                created_by=demand.created_by,
            ),
            source=SOURCE,
            subject=demand.id,
            correlationid=demand.id,
            causationid=request_id,
            actor=actor.sub,
            time=now,
        ),
    )
    return demand


# --- the secretary closes a demand ------------------------------------------------------------


async def _demand_to_close(
    tx: Tx, demand_id: str, actor: Principal, expected_version: Expected
) -> Demand:
    demand = await repository.get_demand(tx.db, demand_id, tx)
    if demand is None:
        raise _not_found(demand_id)
    if not (actor.is_admin or actor.is_secretary_of(demand.community_id)):
        raise forbidden(
            f"only the secretary of community '{demand.community_id}' closes its demands"
        )
    if expected_version is not None and demand.version not in expected_version:
        asked = ", ".join(str(version) for version in sorted(expected_version)) or "none"
        raise ProblemError(
            412,
            "version-mismatch",
            "The demand changed",
            f"If-Match asked for version {asked}; the demand is at {demand.version}",
        )
    return demand


def _refused(error: lifecycle.TransitionRefused) -> ProblemError:
    title = "Demand closed" if error.slug == "demand-closed" else "Demand not started"
    return ProblemError(409, error.slug, title, error.detail)


async def _stop_timers(tx: Tx, demand: Demand) -> None:
    keys = [*_expiry_keys(demand.id)]
    if demand.escalation_timer is not None:
        keys.append(demand.escalation_timer)
    await timers.cancel(tx, *keys)


async def cancel_demand(
    tx: Tx,
    demand_id: str,
    command: CancelIn,
    actor: Principal,
    request_id: str,
    expected_version: Expected = None,
) -> Demand:
    """The secretary calls the whistle off; units releases every claim when it hears of it."""
    demand = await _demand_to_close(tx, demand_id, actor, expected_version)
    saved = await _close(tx, demand, lifecycle.cancel, {"cancel_reason": command.reason})
    data = DemandCancelled(
        demand_id=demand.id, community_id=demand.community_id, reason=command.reason
    )
    tx.emit(_event(data, saved, request_id, actor.sub))
    return saved


async def complete_demand(
    tx: Tx,
    demand_id: str,
    command: CompleteIn,
    actor: Principal,
    request_id: str,
    expected_version: Expected = None,
) -> Demand:
    """The secretary confirms the work done."""
    demand = await _demand_to_close(tx, demand_id, actor, expected_version)
    saved = await _close(tx, demand, lifecycle.complete, {"summary": command.summary})
    data = DemandCompleted(
        demand_id=demand.id, community_id=demand.community_id, summary=command.summary
    )
    tx.emit(_event(data, saved, request_id, actor.sub))
    return saved


async def _close(
    tx: Tx,
    demand: Demand,
    transition: Callable[[lifecycle.Lifecycle], lifecycle.Lifecycle],
    details: dict[str, str | None],
) -> Demand:
    try:
        state = transition(demand.lifecycle)
    except lifecycle.TransitionRefused as error:
        raise _refused(error) from None
    await _stop_timers(tx, demand)
    update = {"status": state.status, "closed_at": utcnow(), "escalation_timer": None, **details}
    return await repository.save_demand(tx, demand.model_copy(update=update))


def reading_scopes(principal: Principal, communities: Sequence[str] = ()) -> list[Document]:
    """Alternatives that admit a demand to the principal's reads (empty: everything).

    A secretary reads their community's demands and those escalated to their street or
    district (street/district staff hold a secretary token whose `community` is that id); a
    volunteer or unit the demands of the communities it serves (`communities`, from dispatch's
    projection of units' registry); auditors and admins everything."""
    if principal.role in (Role.AUDITOR, Role.ADMIN):
        return []
    if principal.role in (Role.VOLUNTEER, Role.UNIT):
        # `$in: []` matches nothing: no registration seen yet, nothing to read.
        return [{"community_id": {"$in": list(communities)}}]
    scope = principal.community
    return [
        {"community_id": scope},
        {"street": scope, "level": {"$in": ["street", "district"]}},
        {"district": scope, "level": "district"},
    ]


def may_read(principal: Principal, demand: Demand, communities: Sequence[str] = ()) -> bool:
    if principal.role in (Role.AUDITOR, Role.ADMIN):
        return True
    if principal.role in (Role.VOLUNTEER, Role.UNIT):
        return demand.community_id in communities
    scope = principal.community
    return (
        demand.community_id == scope
        or (demand.street == scope and demand.level in ("street", "district"))
        or (demand.district == scope and demand.level == "district")
    )


def sees_the_exact_place(principal: Principal, accepted: bool) -> bool:
    """Claimants see a demand's address, building, coordinates and description only once
    their claim is accepted; everyone who may read the demand otherwise sees it all."""
    return principal.role not in (Role.VOLUNTEER, Role.UNIT) or accepted


def claimant_state(data: ClaimData) -> reach.ClaimantState:
    return "ended" if isinstance(data, ClaimWithdrawn | ClaimReleased) else "accepted"


async def check_listing_scope(
    db: Database, principal: Principal, community_id: str | None, communities: Sequence[str]
) -> None:
    """Naming a community outside one's reach is refused, not answered with a misleading
    empty page."""
    if community_id is None or principal.role in (Role.AUDITOR, Role.ADMIN):
        return
    if principal.role in (Role.VOLUNTEER, Role.UNIT):
        if community_id not in communities:
            raise forbidden(f"demands of community '{community_id}' are not yours to read")
        return
    if community_id == principal.community:
        return
    community = await repository.get_community(db, community_id)
    if community is None or principal.community not in (community.street, community.district):
        raise forbidden(f"demands of community '{community_id}' are not yours to read")


# --- units' events: keep `filled` and `status` current ----------------------------------------

UnitsFact = (
    ClaimAccepted
    | ClaimPromoted
    | ClaimWithdrawn
    | ClaimReleased
    | ClaimCheckedIn
    | DemandFilled
    | DemandReopened
)


def _at(event: CloudEvent) -> datetime:
    return _stored(event.time)


def ledger_after(ledger: ClaimLedger, event: CloudEvent, data: UnitsFact) -> ClaimLedger:
    """The ledger once one of units' facts is applied (pure: any order, any repetition)."""
    at = _at(event)
    match data:
        case ClaimAccepted() | ClaimPromoted():
            return ledger.accepted(data.claim_id, data.headcount, at, data.filled)
        case ClaimWithdrawn():
            return ledger.withdrawn(data.claim_id, data.headcount, at, data.filled)
        case ClaimReleased():
            return ledger.released(data.claim_id, data.headcount, at)
        case ClaimCheckedIn():
            return ledger.checked_in_claim(data.claim_id, data.headcount, at)
        case DemandFilled() | DemandReopened():
            return ledger.figure_reported(at, data.filled)


async def apply_units_event(
    tx: Tx, event: CloudEvent, data: UnitsFact, default_step_s: float
) -> None:
    demand = await repository.get_demand(tx.db, data.demand_id, tx)
    if demand is None:
        _log.warning("units_event_for_unknown_demand", demand_id=data.demand_id)
        return
    before = demand.ledger
    if not before.claims and (claim_id := getattr(data, "claim_id", None)) is not None:
        record = await repository.get_claim_record(tx, demand.id, claim_id)
        before = before.at_hand(record) if record is not None else before
    ledger = ledger_after(before, event, data)
    state = lifecycle.with_fill(demand.lifecycle, ledger.filled(demand.slots))
    started_at = demand.started_at
    if ledger.checked_in and started_at is None:
        state = lifecycle.start(state)
        started_at = data.checked_in_at if isinstance(data, ClaimCheckedIn) else _at(event)
    if ledger == before and state == demand.lifecycle and started_at == demand.started_at:
        return
    changed = demand.model_copy(
        update={
            "ledger": ledger,
            "filled": state.filled,
            "status": state.status,
            "started_at": started_at,
        }
    )
    if state.status == "in_progress" and demand.status != "in_progress":
        # Started: nobody needs to be called any more.
        if demand.escalation_timer is not None:
            await timers.cancel(tx, demand.escalation_timer)
        changed = changed.model_copy(update={"escalation_timer": None})
    elif demand.status == "filled" and state.status == "open":
        changed = await _resume_ladder(tx, changed, default_step_s)
    await repository.save_demand(tx, changed)


async def _resume_ladder(tx: Tx, demand: Demand, default_step_s: float) -> Demand:
    """A slot opened again after `fill_by`, with the ladder stopped: take it up a step later."""
    now = utcnow()
    next_level = lifecycle.should_escalate(demand.lifecycle, demand.level)
    if demand.escalation_timer is not None or next_level is None or now < demand.fill_by:
        return demand
    step = await _step_s(tx, demand, default_step_s)
    key = _escalation_key(demand.id, next_level, demand.version)
    await timers.schedule(
        tx,
        key,
        ESCALATE,
        now + timedelta(seconds=step),
        {"demand_id": demand.id, "to_level": next_level},
    )
    return demand.model_copy(update={"escalation_timer": key})


# --- timers: the escalation ladder and expiry -------------------------------------------------


async def _step_s(tx: Tx, demand: Demand, default_step_s: float) -> float:
    community = await repository.get_community(tx.db, demand.community_id, tx)
    if community is not None and community.escalation_step_s is not None:
        return community.escalation_step_s
    return default_step_s


async def escalate(tx: Tx, timer: Document, default_step_s: float) -> None:
    """`fill_by` (or a further step) passed: an open demand goes one level up."""
    demand = await repository.get_demand(tx.db, timer["payload"]["demand_id"], tx)
    if demand is None:
        return
    changed = demand
    if demand.escalation_timer == timer["_id"]:
        changed = demand.model_copy(update={"escalation_timer": None})
    to_level = lifecycle.should_escalate(demand.lifecycle, demand.level)
    if to_level is None or to_level != timer["payload"]["to_level"]:
        # Filled, started or closed meanwhile: the ladder stops here.
        if changed is not demand:
            await repository.save_demand(tx, changed)
        return
    now = utcnow()
    changed = changed.model_copy(update={"level": to_level, "escalated_at": now})
    if (after := lifecycle.NEXT_LEVEL.get(to_level)) is not None:
        key = _escalation_key(demand.id, after)
        step = await _step_s(tx, demand, default_step_s)
        await timers.schedule(
            tx,
            key,
            ESCALATE,
            now + timedelta(seconds=step),
            {"demand_id": demand.id, "to_level": after},
        )
        changed = changed.model_copy(update={"escalation_timer": key})
    saved = await repository.save_demand(tx, changed)
    data = DemandEscalated(
        demand_id=demand.id,
        community_id=demand.community_id,
        from_level=demand.level,
        to_level=to_level,
        target=demand.street if to_level == "street" else demand.district,
        filled=demand.filled,
        slots=demand.slots,
    )
    tx.emit(_event(data, saved, f"timer:{timer['_id']}", ACTOR))


async def expire(tx: Tx, timer: Document, grace_s: float) -> None:
    """`ends_at` passed: an unfinished demand expires (one in progress after a grace period)."""
    demand = await repository.get_demand(tx.db, timer["payload"]["demand_id"], tx)
    if demand is None or demand.lifecycle.closed:
        return
    if not timer["payload"].get("grace") and not lifecycle.expires_at_end(demand.lifecycle):
        await timers.schedule(
            tx,
            _expiry_keys(demand.id)[1],
            EXPIRE,
            as_utc(demand.ends_at) + timedelta(seconds=grace_s),
            {"demand_id": demand.id, "grace": True},
        )
        return
    state = lifecycle.expire(demand.lifecycle)
    if state is None:
        return
    if demand.escalation_timer is not None:
        await timers.cancel(tx, demand.escalation_timer)
    saved = await repository.save_demand(
        tx,
        demand.model_copy(
            update={"status": state.status, "closed_at": utcnow(), "escalation_timer": None}
        ),
    )
    data = DemandExpired(
        demand_id=demand.id,
        community_id=demand.community_id,
        filled=demand.filled,
        slots=demand.slots,
    )
    tx.emit(_event(data, saved, f"timer:{timer['_id']}", ACTOR))


UNITS_EVENT_MODELS: dict[str, type[UnitsFact]] = {
    model.TYPE: model
    for model in (
        ClaimAccepted,
        ClaimPromoted,
        ClaimWithdrawn,
        ClaimReleased,
        ClaimCheckedIn,
        DemandFilled,
        DemandReopened,
    )
}
