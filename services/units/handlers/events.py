"""Units' handlers for dispatch's events, one per event type.

Units keeps its own copy of each demand (and of the communities, to know streets and
districts) from dispatch's events; each handler runs once per event (`run_once`) inside the
transaction that records it.
"""

from services.units.adapters import outgoing, repository
from services.units.domain import codes
from services.units.domain.model import RELEASABLE_STATUSES, Community, Demand, DemandStatus
from services.units.handlers.timers import NO_SHOW_TIMER, no_show_key
from shared.clock import utcnow
from shared.events.catalogue import (
    ClaimReleased,
    CommunityRegistered,
    DemandCancelled,
    DemandCompleted,
    DemandDetails,
    DemandEscalated,
    DemandExpired,
    DemandPublished,
    Location,
    parse_data,
)
from shared.events.envelope import CloudEvent
from shared.store import timers
from shared.store.unit_of_work import RetryTransaction, Tx


async def on_community_registered(tx: Tx, event: CloudEvent) -> None:
    data = parse_data(CommunityRegistered, event.data)
    await repository.save_community(
        tx,
        Community(id=data.community_id, name=data.name, street=data.street, district=data.district),
    )


async def on_demand_published(tx: Tx, event: CloudEvent) -> None:
    data = parse_data(DemandPublished, event.data)
    demand = Demand(
        id=data.demand_id,
        community_id=data.community_id,
        street=data.street,
        district=data.district,
        kind=data.kind,
        title=data.title,
        location=Location(grid=data.location.grid),
        skills=data.skills,
        slots=data.slots,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        fill_by=data.fill_by,
        priority=data.priority,
        level=data.level,
        status=await repository.early_closure(tx, data.demand_id) or "open",
    )
    if await repository.insert_demand(tx, demand, codes.new_code()) and demand.status == "open":
        # Accepted claims not checked in by the end become no-shows: stored, so it survives.
        await timers.schedule(
            tx, no_show_key(demand.id), NO_SHOW_TIMER, demand.ends_at, {"demand_id": demand.id}
        )


async def on_demand_details(tx: Tx, event: CloudEvent) -> None:
    """The exact place and description, from the private exchange (never audited). Kept
    apart from the demand, so it may arrive before or after the publication."""
    data = parse_data(DemandDetails, event.data)
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


async def on_demand_escalated(tx: Tx, event: CloudEvent) -> None:
    data = parse_data(DemandEscalated, event.data)
    await repository.set_level(tx, data.demand_id, data.to_level)


async def on_demand_cancelled(tx: Tx, event: CloudEvent) -> None:
    """Cancellation releases every claim still holding or awaiting a place."""
    data = parse_data(DemandCancelled, event.data)
    if not await _close(tx, data.demand_id, "cancelled"):
        return
    await timers.cancel(tx, no_show_key(data.demand_id))
    for held in await repository.claims_on(tx, data.demand_id, RELEASABLE_STATUSES):
        released = await repository.move_claim(
            tx,
            held.id,
            RELEASABLE_STATUSES,
            {"status": "released", "reason": data.reason, "released_at": utcnow()},
        )
        if released is None:
            raise RetryTransaction(f"claim {held.id} changed while releasing")
        tx.emit(
            outgoing.claim_event(
                ClaimReleased,
                released,
                actor=outgoing.SERVICE_ACTOR,
                causationid=event.id,
                reason=data.reason,
            )
        )


async def on_demand_completed(tx: Tx, event: CloudEvent) -> None:
    data = parse_data(DemandCompleted, event.data)
    await _close(tx, data.demand_id, "completed")


async def on_demand_expired(tx: Tx, event: CloudEvent) -> None:
    data = parse_data(DemandExpired, event.data)
    await _close(tx, data.demand_id, "expired")
