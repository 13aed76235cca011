"""Units' events, applied to dispatch's demands: `filled` and `status` follow units' claims,
and the reach projection follows units' registry (who serves which community)."""

from datetime import datetime

import structlog

from services.dispatch.adapters import reach, repository
from services.dispatch.domain import lifecycle
from services.dispatch.domain.claims import ClaimLedger
from services.dispatch.handlers import timers
from shared.broker.consumer import Incoming
from shared.events.catalogue import (
    ClaimAccepted,
    ClaimCheckedIn,
    ClaimData,
    ClaimPromoted,
    ClaimReleased,
    ClaimWithdrawn,
    DemandFilled,
    DemandReopened,
    UnitRegistered,
    VolunteerRegistered,
)
from shared.events.envelope import CloudEvent
from shared.store.unit_of_work import Tx

_log = structlog.get_logger("whistle.dispatch")

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
    return repository.stored(event.time)


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


def claimant_state(data: ClaimData) -> reach.ClaimantState:
    return "ended" if isinstance(data, ClaimWithdrawn | ClaimReleased) else "accepted"


async def on_units_fact(tx: Tx, event: Incoming[UnitsFact], default_step_s: float) -> None:
    """One of units' facts about a demand's claims: the demand's count and status follow, and
    a claimant's reach to the exact place follows their claim."""
    data = event.data
    await _apply_to_demand(tx, event.envelope, data, default_step_s)
    if isinstance(data, ClaimData):
        await reach.record_claim(tx, data, claimant_state(data))


async def _apply_to_demand(
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
        changed = await timers.stop_ladder(tx, changed)
    elif demand.status == "filled" and state.status == "open":
        changed = await timers.resume_ladder(tx, changed, default_step_s)
    await repository.save_demand(tx, changed)


async def on_unit_registered(tx: Tx, event: Incoming[UnitRegistered]) -> None:
    """A unit registered: the communities it serves bound its reads."""
    await reach.record_reach(tx, "unit", event.data.unit_id, event.data.communities)


async def on_volunteer_registered(tx: Tx, event: Incoming[VolunteerRegistered]) -> None:
    """A volunteer registered: their community bounds their reads."""
    data = event.data
    await reach.record_reach(tx, "volunteer", data.volunteer_id, [data.community_id])
