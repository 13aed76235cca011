"""Units' handlers for dispatch's events, one per event type.

Units keeps its own copy of each demand (and of the communities, to know streets and
districts) from dispatch's events; each handler runs once per event (`run_once`) inside the
transaction that records it, caused by the event (what it emits says so).
"""

from zoneinfo import ZoneInfo

from services.units.adapters import outgoing, repository
from services.units.domain import codes
from services.units.domain.model import RELEASABLE_STATUSES, Community, Demand, DemandStatus
from services.units.handlers import commitments
from services.units.handlers.commands import promote_waitlisted
from services.units.handlers.timers import NO_SHOW_TIMER, no_show_key
from shared.broker.consumer import Incoming
from shared.clock import utcnow
from shared.events.catalogue import (
    ClaimReleased,
    CommunityRegistered,
    CommunityUpdated,
    DemandCancelled,
    DemandCompleted,
    DemandDetails,
    DemandEscalated,
    DemandExpired,
    DemandPublished,
    DemandUpdated,
)
from shared.store import timers
from shared.store.unit_of_work import Tx


async def on_community_registered(tx: Tx, event: Incoming[CommunityRegistered]) -> None:
    data = event.data
    known = await repository.get_communities(tx.db, (data.community_id,), tx)
    if known and known[0].version > 1:
        return  # a registration redelivered after a change of limits: keep the change
    await repository.save_community(
        tx,
        Community(
            id=data.community_id,
            name=data.name,
            street=data.street,
            district=data.district,
            max_hours_per_day=data.max_hours_per_day,
            min_rest_hours=data.min_rest_hours,
            max_consecutive_days=data.max_consecutive_days,
        ),
    )


class CommunityNotYetKnown(Exception):
    """A change of limits arrived before the registration: failed, so the message goes back
    to its queue and comes again once `community.registered` has been applied."""


async def on_community_updated(tx: Tx, event: Incoming[CommunityUpdated]) -> None:
    data = event.data
    known = await repository.get_communities(tx.db, (data.community_id,), tx)
    if not known:
        raise CommunityNotYetKnown(data.community_id)
    if known[0].version >= data.version:
        return  # an older change, late: the newer one already holds
    changed = known[0].model_copy(
        update={
            "max_hours_per_day": data.max_hours_per_day,
            "min_rest_hours": data.min_rest_hours,
            "max_consecutive_days": data.max_consecutive_days,
            "version": data.version,
        }
    )
    await repository.save_community(tx, changed)


async def on_demand_published(tx: Tx, event: Incoming[DemandPublished]) -> None:
    data = event.data
    demand = Demand.model_validate(
        {
            **data.model_dump(),
            "id": data.demand_id,
            "status": await repository.early_closure(tx, data.demand_id) or "open",
        }
    )
    if not await repository.insert_demand(tx, demand, codes.new_code()):
        return
    if (edit := await repository.take_early_edit(tx, demand.id)) is not None:
        await repository.apply_edit(tx, edit)  # nobody has claimed yet: nothing to promote
    if demand.status == "open":
        # Accepted claims not checked in by the end become no-shows: stored, so it survives.
        await timers.schedule(
            tx, no_show_key(demand.id), NO_SHOW_TIMER, demand.ends_at, {"demand_id": demand.id}
        )
        if data.committed_unit_id is not None:  # a relay roster's turn (issue 14)
            await commitments.commit_turn(tx, demand, data.committed_unit_id, data.roster_id)


async def on_demand_updated(tx: Tx, event: Incoming[DemandUpdated], zone: ZoneInfo) -> None:
    """A secretary's edit: the newest version wins; more slots move the waitlist up into
    them (dispatch refuses fewer slots than are accepted). An edit that overtook the
    demand's publication waits for it."""
    edit = event.data
    before = await repository.get_demand(tx.db, edit.demand_id, tx)
    if before is None:
        await repository.remember_early_edit(tx, edit)
        return
    after = await repository.apply_edit(tx, edit)
    if after is None or after.status != "open":
        return  # a newer edit is already applied, or the demand closed meanwhile
    if after.slots > before.slots:
        after = await promote_waitlisted(tx, after, zone)
    outgoing.emit_fill_change(tx, before, after)


async def on_demand_details(tx: Tx, event: Incoming[DemandDetails]) -> None:
    """The exact place and description, from the private exchange (never audited). Kept
    apart from the demand, so it may arrive before or after the publication."""
    data = event.data
    await repository.save_demand_details(
        tx,
        data.demand_id,
        {
            "description": data.description,
            "location": data.location.model_dump(mode="json"),
        },
    )


async def _close(tx: Tx, demand_id: str, status: DemandStatus) -> bool:
    """Close an open demand; True if it was open. A closure that overtook the demand's
    publication is remembered, so the demand arrives closed."""
    if await repository.close_demand(tx, demand_id, status) is not None:
        return True
    if await repository.get_demand(tx.db, demand_id, tx) is None:
        await repository.remember_early_closure(tx, demand_id, status)
    return False


async def on_demand_escalated(tx: Tx, event: Incoming[DemandEscalated]) -> None:
    await repository.set_level(tx, event.data.demand_id, event.data.to_level)


async def on_demand_cancelled(tx: Tx, event: Incoming[DemandCancelled]) -> None:
    """Cancellation releases every claim still holding or awaiting a place."""
    data = event.data
    if not await _close(tx, data.demand_id, "cancelled"):
        return
    await timers.cancel(tx, no_show_key(data.demand_id))
    for held in await repository.claims_on(tx, data.demand_id, RELEASABLE_STATUSES):
        released = await repository.move_claim(
            tx,
            held,
            RELEASABLE_STATUSES,
            {"status": "released", "reason": data.reason, "released_at": utcnow()},
        )
        outgoing.emit_claim(tx, ClaimReleased, released, reason=data.reason)


async def on_demand_completed(tx: Tx, event: Incoming[DemandCompleted]) -> None:
    await _close(tx, event.data.demand_id, "completed")


async def on_demand_expired(tx: Tx, event: Incoming[DemandExpired]) -> None:
    await _close(tx, event.data.demand_id, "expired")
