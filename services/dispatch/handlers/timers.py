"""The escalation ladder and expiry: the timers a demand's commands and facts schedule, and
what each does when it fires (inside the transaction that marks it fired)."""

from datetime import datetime, timedelta

from services.dispatch.adapters import repository
from services.dispatch.domain import lifecycle
from services.dispatch.domain.model import Demand
from shared.clock import as_utc, utcnow
from shared.events.catalogue import DemandEscalated, DemandExpired, Level
from shared.store import timers
from shared.store.mongo import Document
from shared.store.unit_of_work import Tx

ESCALATE = "demand.escalate"
EXPIRE = "demand.expire"


def escalation_key(demand_id: str, level: str, version: int | None = None) -> str:
    suffix = f":v{version}" if version is not None else ""
    return f"escalate:{demand_id}:{level}{suffix}"


def _expiry_keys(demand_id: str) -> tuple[str, str]:
    return f"expire:{demand_id}", f"expire:{demand_id}:grace"


async def _schedule_escalation(
    tx: Tx, key: str, demand: Demand, to_level: Level, due: datetime
) -> None:
    await timers.schedule(tx, key, ESCALATE, due, {"demand_id": demand.id, "to_level": to_level})


async def start_ladder(tx: Tx, demand: Demand) -> None:
    """A new demand: the street hears of it at `fill_by`, and it expires at `ends_at`."""
    assert demand.escalation_timer is not None
    await _schedule_escalation(tx, demand.escalation_timer, demand, "street", demand.fill_by)
    await timers.schedule(
        tx,
        _expiry_keys(demand.id)[0],
        EXPIRE,
        demand.ends_at,
        {"demand_id": demand.id, "grace": False},
    )


async def move_first_step(tx: Tx, demand: Demand) -> None:
    """`fill_by` moved before it passed: the street hears of the demand at the new one."""
    if demand.escalation_timer is not None and demand.level == "community":
        await _schedule_escalation(tx, demand.escalation_timer, demand, "street", demand.fill_by)


async def stop_all(tx: Tx, demand: Demand) -> None:
    """The demand is closed: no escalation, no expiry."""
    keys = [*_expiry_keys(demand.id)]
    if demand.escalation_timer is not None:
        keys.append(demand.escalation_timer)
    await timers.cancel(tx, *keys)


async def stop_ladder(tx: Tx, demand: Demand) -> Demand:
    """Started: nobody needs to be called any more."""
    if demand.escalation_timer is not None:
        await timers.cancel(tx, demand.escalation_timer)
    return demand.model_copy(update={"escalation_timer": None})


async def resume_ladder(tx: Tx, demand: Demand, default_step_s: float) -> Demand:
    """A slot opened again after `fill_by`, with the ladder stopped: take it up a step later."""
    now = utcnow()
    next_level = lifecycle.should_escalate(demand.lifecycle, demand.level)
    if demand.escalation_timer is not None or next_level is None or now < demand.fill_by:
        return demand
    step = await _step_s(tx, demand, default_step_s)
    key = escalation_key(demand.id, next_level, demand.version)
    await _schedule_escalation(tx, key, demand, next_level, now + timedelta(seconds=step))
    return demand.model_copy(update={"escalation_timer": key})


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
        key = escalation_key(demand.id, after)
        step = await _step_s(tx, demand, default_step_s)
        await _schedule_escalation(tx, key, demand, after, now + timedelta(seconds=step))
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
    tx.emit(data, subject=saved.id)


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
    changed = await stop_ladder(tx, demand)
    saved = await repository.save_demand(
        tx, changed.model_copy(update={"status": state.status, "closed_at": utcnow()})
    )
    data = DemandExpired(
        demand_id=demand.id,
        community_id=demand.community_id,
        filled=demand.filled,
        slots=demand.slots,
    )
    tx.emit(data, subject=saved.id)
