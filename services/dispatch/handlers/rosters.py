"""Relay rosters (issue 14): propose a rotation, read it, confirm it into demands.

A proposal is a draft for the secretary to review: stored, but no event (nothing has
happened in the world yet). Confirming publishes one ordinary demand per turn, each naming
the unit it is committed to (units records that unit's claim on its behalf), and then
`roster.confirmed`, in one transaction: all the turns or none.
"""

from datetime import timedelta

from services.dispatch.adapters import reach, repository, rosters
from services.dispatch.domain import access, refusals
from services.dispatch.domain.commands import PublishDemand, normalise_skills
from services.dispatch.domain.roster import Candidate, days_between, propose
from services.dispatch.domain.roster_model import (
    KnownUnit,
    ProposeRoster,
    Roster,
    RosterExclusion,
    RosterGap,
    RosterTurn,
)
from services.dispatch.handlers import commands, events
from shared.auth import Principal, Role
from shared.broker.consumer import Incoming
from shared.clock import utcnow
from shared.events.catalogue import RosterConfirmed, UnitRegistered, UnitUpdated
from shared.events.catalogue import RosterTurn as ConfirmedTurn
from shared.http.problems import not_found
from shared.ids import new_id
from shared.store.mongo import Database
from shared.store.unit_of_work import Tx

# A turn's `fill_by` this close to now would escalate before the unit's claim is recorded:
# such a turn is due at its start instead.
FILL_BY_MARGIN = timedelta(hours=1)


def _may_manage(actor: Principal, community_id: str, action: str) -> None:
    if not access.may_manage(actor, community_id):
        raise refusals.NotYours(
            f"only the secretary of community '{community_id}' {action} its rosters"
        )


async def propose_roster(tx: Tx, command: ProposeRoster, actor: Principal) -> Roster:
    """Draw up the rotation over the units dispatch knows; stored as `proposed`."""
    _may_manage(actor, command.community_id, "proposes")
    community = await repository.get_community(tx.db, command.community_id, tx)
    if community is None:
        raise refusals.UnknownCommunity(command.community_id)
    known = await rosters.units_by_id(tx.db, command.units, tx)
    for unit_id in command.units:
        if unit_id not in known:
            raise refusals.UnknownUnit(unit_id)
    if command.window(command.first_day)[0] <= utcnow():
        raise refusals.InThePast("first_day")
    candidates = [
        Candidate(
            unit_id,
            frozenset(known[unit_id].communities),
            frozenset(normalise_skills(list(known[unit_id].skills))),
            command.blocked_of(unit_id),
        )
        for unit_id in dict.fromkeys(command.units)
    ]
    rotation = propose(
        candidates, days_between(command.first_day, command.last_day), community.id, command.skills
    )
    turns = []
    for turn in rotation.turns:
        starts_at, ends_at = command.window(turn.day)
        turns.append(
            RosterTurn(day=turn.day, unit_id=turn.unit_id, starts_at=starts_at, ends_at=ends_at)
        )
    roster = Roster(
        id=new_id("ros"),
        community_id=community.id,
        request=command,
        status="proposed",
        turns=tuple(turns),
        unassigned=tuple(RosterGap(day=gap.day, reason=gap.reason) for gap in rotation.unassigned),
        excluded=tuple(
            RosterExclusion(unit_id=out.unit_id, reason=out.reason, missing=out.missing)
            for out in rotation.excluded
        ),
        load=dict(rotation.load),
        created_at=utcnow(),
        created_by=actor.sub,
    )
    await rosters.insert_roster(tx, roster)
    return roster


async def roster_for(db: Database, roster_id: str, actor: Principal) -> Roster:
    """The roster, to its community's secretary, an auditor or an admin (404 to others)."""
    roster = await rosters.get_roster(db, roster_id)
    if roster is None or not (
        access.may_manage(actor, roster.community_id) or actor.role is Role.AUDITOR
    ):
        raise not_found("roster", roster_id)
    return roster


async def confirm_roster(tx: Tx, roster_id: str, actor: Principal) -> Roster:
    """Publish each turn as a demand committed to its unit, then `roster.confirmed`."""
    roster = await rosters.get_roster(tx.db, roster_id, tx)
    if roster is None:
        raise not_found("roster", roster_id)
    _may_manage(actor, roster.community_id, "confirms")
    if roster.status != "proposed":
        raise refusals.RosterNotProposed(roster.id, roster.status)
    if not roster.turns:
        raise refusals.RosterEmpty(roster.id)
    now = utcnow()
    if roster.turns[0].starts_at <= now:
        raise refusals.InThePast("first_day")
    request = roster.request
    published: list[RosterTurn] = []
    for turn in roster.turns:
        due = turn.starts_at - timedelta(hours=request.fill_lead_hours)
        demand = await commands.publish_demand(
            tx,
            PublishDemand(
                community_id=roster.community_id,
                kind="staffing",
                title=request.title,
                description=request.description,
                location=request.location,
                skills=request.skills,
                slots=request.people_per_turn,
                starts_at=turn.starts_at,
                ends_at=turn.ends_at,
                fill_by=due if due > now + FILL_BY_MARGIN else None,
                priority=request.priority,
                exposure=request.exposure,
            ),
            actor,
            roster_id=roster.id,
            committed_unit_id=turn.unit_id,
        )
        published.append(turn.model_copy(update={"demand_id": demand.id}))
    confirmed = roster.model_copy(
        update={
            "status": "confirmed",
            "turns": tuple(published),
            "confirmed_at": now,
            "confirmed_by": actor.sub,
        }
    )
    saved = await rosters.save_roster(tx, roster, confirmed)
    said = RosterConfirmed(
        roster_id=saved.id,
        community_id=saved.community_id,
        first_day=request.first_day,
        last_day=request.last_day,
        people_per_turn=request.people_per_turn,
        turns=tuple(
            ConfirmedTurn(day=turn.day, unit_id=turn.unit_id, demand_id=turn.demand_id or "")
            for turn in saved.turns
        ),
        unassigned=tuple(gap.day for gap in saved.unassigned),
    )
    tx.emit(said, subject=saved.id)
    return saved


async def on_unit_registered(tx: Tx, event: Incoming[UnitRegistered]) -> None:
    """The reach of the unit's reads, and what a roster needs of it; a registration that
    arrives after a correction gives only the kind (the correction's communities hold)."""
    if await _unit_known(tx, event.data):
        await events.on_unit_registered(tx, event)
    else:
        await rosters.set_kind(tx, event.data.unit_id, event.data.kind)


async def on_unit_updated(tx: Tx, event: Incoming[UnitUpdated]) -> None:
    """A correction: its communities bound the unit's reads from now on (unless an even
    newer correction already arrived), and a roster chooses by what it says."""
    if await _unit_known(tx, event.data):
        await reach.record_reach(tx, "unit", event.data.unit_id, event.data.communities)


async def _unit_known(tx: Tx, data: UnitRegistered | UnitUpdated) -> bool:
    """A unit registered or corrected: what a roster needs of it (version 1 is the
    registration; a correction carries its own)."""
    version = data.version if isinstance(data, UnitUpdated) else 1
    kind = data.kind if isinstance(data, UnitRegistered) else None
    if kind is None:
        existing = await rosters.units_by_id(tx.db, [data.unit_id], tx)
        # A correction that overtook the registration: the kind is not corrected, so "other"
        # holds until the registration arrives and sets it (`set_kind`).
        kind = existing[data.unit_id].kind if data.unit_id in existing else "other"
    return await rosters.record_unit(
        tx,
        KnownUnit(
            id=data.unit_id,
            name=data.name,
            kind=kind,
            communities=data.communities,
            skills=data.skills,
            version=version,
        ),
    )
