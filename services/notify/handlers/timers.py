"""Notify's timer handlers, one per kind: the shift reminder, the half-time re-alert, and the
later batches of a large fan-out. Each runs in the timer's own transaction."""

from services.notify.adapters import directory
from services.notify.domain import messages, rules
from services.notify.domain.model import (
    AWAITING_SHIFT,
    CLOSED,
    REALERT_KIND,
    REMINDER_KIND,
    Demand,
    NotificationCause,
    Policy,
    notices,
)
from services.notify.handlers.notices import notify, notify_later_batch
from shared.store.mongo import Document
from shared.store.unit_of_work import Tx


def _timer_cause(timer: Document, kind: str, demand: Demand) -> NotificationCause:
    return NotificationCause.about(demand, f"timer:{timer['_id']}", kind)


async def on_reminder_due(tx: Tx, timer: Document, policy: Policy) -> None:
    """Each accepted claimant hears, ahead of the shift, that it is coming."""
    claim = await directory.get_claim(tx, timer["payload"]["claim_id"])
    demand = await directory.get_demand(tx, timer["payload"]["demand_id"])
    if claim is None or demand is None:
        return
    if claim.status not in AWAITING_SHIFT or demand.status in CLOSED:
        return
    to = [rules.claimant(claim.claimant)]
    told = notices(to, REMINDER_KIND, messages.reminder(demand), timer["_id"])
    await notify(tx, _timer_cause(timer, REMINDER_KIND, demand), told, policy)


async def on_realert_due(tx: Tx, timer: Document, policy: Policy) -> None:
    """Half way to `fill_by` and still unfilled: call matching volunteers once more."""
    # A fill or a claim committed meanwhile conflicts with this write (which also reads the
    # demand), so the re-alert is decided on what is current, not on a snapshot a moment old.
    demand = directory.demand_in(await directory.touch_demand(tx, timer["payload"]["demand_id"]))
    if demand is None or not demand.unfilled:
        return
    volunteers = await directory.volunteers_of(tx, demand.community_id)
    alerts = await directory.alert_counts(tx, demand.id)
    claims = await directory.claims_of(tx, demand.id)
    to = rules.for_realert(demand, volunteers, alerts, [c.claimant.id for c in claims])
    told = notices(to, REALERT_KIND, messages.realert(demand), timer["_id"])
    await notify(tx, _timer_cause(timer, REALERT_KIND, demand), told, policy)
    await directory.count_alerts(tx, demand.id, [r.id for r in to])


async def on_fanout_due(tx: Tx, timer: Document, policy: Policy) -> None:
    await notify_later_batch(tx, timer["payload"], policy)
