"""Dispatch's commands, one function each: check the rule, change the state, emit the event
(through the outbox, in the same transaction)."""

from collections.abc import Callable
from datetime import datetime, timedelta

from services.dispatch.adapters import repository
from services.dispatch.domain import access, lifecycle, refusals
from services.dispatch.domain.commands import (
    EDITABLE,
    CancelDemand,
    ChangeCommunityLimits,
    CompleteDemand,
    Expected,
    PublishDemand,
    RegisterCommunity,
    UpdateDemand,
)
from services.dispatch.domain.model import Community, Demand
from services.dispatch.handlers import timers, zones
from shared.auth import Principal
from shared.clock import utcnow
from shared.events.catalogue import (
    CommunityRegistered,
    CommunityUpdated,
    DemandCancelled,
    DemandCompleted,
    DemandDetails,
    DemandPublished,
    DemandUpdated,
    Location,
    PublicLocation,
)
from shared.events.digest import details_digest, new_salt
from shared.http.problems import not_found
from shared.ids import new_id
from shared.store.unit_of_work import Tx

# A demand's deadline may lie this far in the past (clocks differ), not more.
PAST_LEEWAY = timedelta(minutes=1)


async def register_community(tx: Tx, command: RegisterCommunity, actor: Principal) -> Community:
    """Register a community; its id, street and district share one namespace of place ids."""
    community = Community(**command.model_dump())
    try:
        await repository.insert_community(tx, community)
    except repository.AlreadyExists:
        raise refusals.CommunityExists(community.id) from None
    places = (
        (community.id, "community", "id"),
        (community.street, "street", "street"),
        (community.district, "district", "district"),
    )
    if len({place for place, _, _ in places}) < len(places):
        raise refusals.IdTaken("the community, its street and its district need three distinct ids")
    for place, kind, field in places:
        if (taken_as := await repository.claim_place(tx, place, kind)) is not None:
            raise refusals.IdTaken(
                f"'{place}' is already the id of a {taken_as}; it cannot also name a {kind}",
                field=field,
            )
    data = CommunityRegistered(
        community_id=community.id,
        name=community.name,
        street=community.street,
        district=community.district,
        max_hours_per_day=community.max_hours_per_day,
        min_rest_hours=community.min_rest_hours,
        max_consecutive_days=community.max_consecutive_days,
    )
    tx.emit(data, subject=community.id)
    return community


async def change_community_limits(
    tx: Tx, command: ChangeCommunityLimits, actor: Principal
) -> Community:
    """New fatigue limits for a community (admin): units applies them to later claims."""
    community = await repository.get_community(tx.db, command.community_id, tx)
    if community is None:
        raise not_found("community", command.community_id)
    given = command.model_dump(exclude={"community_id"}, exclude_none=True)
    changed = community.model_copy(update={**given, "version": community.version + 1})
    await repository.replace_community(tx, community, changed)
    data = CommunityUpdated(
        community_id=changed.id,
        version=changed.version,
        max_hours_per_day=changed.max_hours_per_day,
        min_rest_hours=changed.min_rest_hours,
        max_consecutive_days=changed.max_consecutive_days,
    )
    tx.emit(data, subject=changed.id)
    return changed


async def publish_demand(
    tx: Tx,
    command: PublishDemand,
    actor: Principal,
    *,
    roster_id: str | None = None,
    committed_unit_id: str | None = None,
) -> Demand:
    """The whistle: a secretary of the community (or an admin) posts a demand. A relay
    roster's turn names its roster and the unit it is committed to (units claims for it)."""
    if not access.may_manage(actor, command.community_id):
        raise refusals.NotYours(
            f"only the secretary of community '{command.community_id}' posts its demands"
        )
    now = utcnow()
    if command.ends_at <= now:
        raise refusals.InThePast("ends_at")
    # A deadline already passed would escalate at once; a minute of leeway for clocks.
    if (command.fill_by or command.starts_at) < now - PAST_LEEWAY:
        raise refusals.InThePast("fill_by" if command.fill_by is not None else "starts_at")
    community = await repository.get_community(tx.db, command.community_id, tx)
    if community is None:
        raise refusals.UnknownCommunity(command.community_id)
    await zones.check_demand_grid(tx, community.id, command.location.grid)
    return await create_demand(
        tx,
        community,
        command,
        actor.sub,
        roster_id=roster_id,
        committed_unit_id=committed_unit_id,
    )


async def create_demand(
    tx: Tx,
    community: Community,
    command: PublishDemand,
    created_by: str,
    *,
    series_id: str | None = None,
    roster_id: str | None = None,
    committed_unit_id: str | None = None,
) -> Demand:
    """Store the demand, start its ladder and publish it (the rules were checked: by the
    whistle above, or by the series whose occurrence it is). A relay roster's turn names its
    roster and the unit it is committed to (units claims for it)."""
    now = utcnow()
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
        starts_at=repository.stored(command.starts_at),
        ends_at=repository.stored(command.ends_at),
        fill_by=repository.stored(command.fill_by or command.starts_at),
        priority=command.priority,
        exposure=command.exposure,
        status="open",
        filled=0,
        level="community",
        created_at=now,
        created_by=created_by,
        version=1,
        escalation_timer=timers.escalation_key(demand_id, "street"),
        details_salt=new_salt(),
        series_id=series_id,
    )
    await repository.insert_demand(tx, demand)
    await timers.start_ladder(tx, demand)
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
    published = DemandPublished(
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
        exposure=demand.exposure,
        roster_id=roster_id,
        committed_unit_id=committed_unit_id,
        series_id=demand.series_id,
    )
    # The exact place and the description go to the private exchange only (audit never
    # records them); the audited publication proves them by a salted digest.
    tx.emit(details, subject=demand.id)
    tx.emit(published, subject=demand.id)
    return demand


async def demand_to_change(
    tx: Tx, demand_id: str, actor: Principal, expected: Expected, action: str
) -> Demand:
    """The demand a secretary's command changes: theirs, and at a version If-Match admits."""
    demand = await repository.get_demand(tx.db, demand_id, tx)
    if demand is None:
        raise not_found("demand", demand_id)
    if not access.may_manage(actor, demand.community_id):
        raise refusals.NotYours(
            f"only the secretary of community '{demand.community_id}' {action} its demands"
        )
    if expected is not None and demand.version not in expected:
        raise refusals.VersionMismatch(expected, demand.version)
    return demand


async def cancel_demand(tx: Tx, command: CancelDemand, actor: Principal) -> Demand:
    """The secretary calls the whistle off; units releases every claim when it hears of it."""
    demand = await demand_to_change(tx, command.demand_id, actor, command.expected, "closes")
    said = DemandCancelled(
        demand_id=demand.id, community_id=demand.community_id, reason=command.reason
    )
    return await _close(tx, demand, lifecycle.cancel, said, cancel_reason=command.reason)


async def complete_demand(tx: Tx, command: CompleteDemand, actor: Principal) -> Demand:
    """The secretary confirms the work done."""
    demand = await demand_to_change(tx, command.demand_id, actor, command.expected, "closes")
    said = DemandCompleted(
        demand_id=demand.id, community_id=demand.community_id, summary=command.summary
    )
    return await _close(tx, demand, lifecycle.complete, said, summary=command.summary)


async def _close(
    tx: Tx,
    demand: Demand,
    transition: Callable[[lifecycle.Lifecycle], lifecycle.Lifecycle],
    said: DemandCancelled | DemandCompleted,
    **details: str | None,
) -> Demand:
    """End the demand (the transition refuses a closed one), stop its timers, say so."""
    state = transition(demand.lifecycle)
    await timers.stop_all(tx, demand)
    update = {"status": state.status, "closed_at": utcnow(), "escalation_timer": None, **details}
    saved = await repository.save_demand(tx, demand.model_copy(update=update))
    tx.emit(said, subject=saved.id)
    return saved


async def update_demand(
    tx: Tx, command: UpdateDemand, actor: Principal, default_step_s: float
) -> Demand:
    """The secretary edits a live demand's title, slots, priority, skills or `fill_by`.
    An edit that changes nothing is answered with the demand as it is (no new version)."""
    demand = await demand_to_change(tx, command.demand_id, actor, command.expected, "edits")
    changes = command.changes
    slots = changes.slots if changes.slots is not None else demand.slots
    state = lifecycle.resize(demand.lifecycle, slots)
    update: dict[str, object] = {"status": state.status, "filled": state.filled}
    update |= changes.model_dump(include={"title", "slots", "priority"}, exclude_none=True)
    if changes.skills is not None:
        update["skills"] = tuple(changes.skills)
    if changes.fill_by is not None:
        update["fill_by"] = _moved_fill_by(demand, repository.stored(changes.fill_by))
    changed = demand.model_copy(update=update)
    fields = [name for name in EDITABLE if getattr(demand, name) != getattr(changed, name)]
    if not fields:
        return demand
    if "fill_by" in fields:
        await timers.move_first_step(tx, changed)
    if demand.status == "filled" and changed.status == "open":
        changed = await timers.resume_ladder(tx, changed, default_step_s)
    saved = await repository.save_demand(tx, changed)
    data = DemandUpdated(
        demand_id=saved.id,
        community_id=saved.community_id,
        version=saved.version,
        changed=tuple(fields),
        title=saved.title,
        slots=saved.slots,
        priority=saved.priority,
        skills=saved.skills,
        fill_by=saved.fill_by,
    )
    tx.emit(data, subject=saved.id)
    return saved


def _moved_fill_by(demand: Demand, fill_by: datetime) -> datetime:
    """`fill_by` moves only while it lies ahead (once passed, the ladder went on from it),
    never after `starts_at`, and not into the past (a minute of leeway for clocks)."""
    if fill_by == demand.fill_by:
        return fill_by
    now = utcnow()
    if demand.fill_by <= now:
        raise refusals.FillByPassed()
    if fill_by > demand.starts_at:
        raise refusals.FillByAfterStart()
    if fill_by < now - PAST_LEEWAY:
        raise refusals.InThePast("fill_by")
    return fill_by
