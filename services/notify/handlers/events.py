"""Notify's event handlers, one function per consumed event: keep the copy, decide who hears.

Every handler runs inside the consumer's transaction (`run_once`), so the copy update, the
inbox writes, the deliveries to make, the timers and the `notification.sent` events commit
together, once per event. `data` comes parsed (and upcast) by the consumer.
"""

from collections.abc import Callable, Iterable
from datetime import datetime

from services.notify.adapters import contacts, deliveries, directory, inbox
from services.notify.domain import messages, rules
from services.notify.domain.model import (
    AWAITING_SHIFT,
    CLAIM_STATUS,
    TIMER_REALERT,
    TIMER_REMINDER,
    Claim,
    Community,
    Demand,
    DemandStatus,
    NotificationCause,
    Policy,
    Unit,
    Volunteer,
    notices,
)
from services.notify.handlers.notices import deliver_waiting, fan_out, notify
from shared.broker.consumer import Incoming
from shared.clock import as_utc, utcnow
from shared.events.catalogue import (
    ClaimData,
    CommunityRegistered,
    Contact,
    DemandCancelled,
    DemandCompleted,
    DemandEscalated,
    DemandExpired,
    DemandFilled,
    DemandPublished,
    DemandReopened,
    EventData,
    Recipient,
    UnitDetails,
    UnitRegistered,
    UnitUpdated,
    VolunteerDetails,
    VolunteerErased,
    VolunteerRegistered,
    VolunteerUpdated,
)
from shared.store import timers
from shared.store.unit_of_work import Tx


def _about[T: EventData](event: Incoming[T]) -> NotificationCause:
    return NotificationCause.of(event.envelope)


# --- registry --------------------------------------------------------------------------------


async def on_community_registered(
    tx: Tx, event: Incoming[CommunityRegistered], policy: Policy
) -> None:
    data = event.data
    await directory.save_community(
        tx,
        Community(id=data.community_id, name=data.name, street=data.street, district=data.district),
    )


async def on_unit_registered(tx: Tx, event: Incoming[UnitRegistered], policy: Policy) -> None:
    data = event.data
    unit = Unit(id=data.unit_id, name=data.name, communities=data.communities, skills=data.skills)
    await directory.save_unit(tx, unit)
    await _whistles_handled_first(
        tx,
        event.envelope.time,
        policy,
        unit.communities,
        lambda demand: [rules.unit(u.id) for u in rules.matching_units(demand, [unit])],
    )


async def on_volunteer_registered(
    tx: Tx, event: Incoming[VolunteerRegistered], policy: Policy
) -> None:
    data = event.data
    if await contacts.is_erased(tx, rules.owner_key(rules.volunteer(data.volunteer_id))):
        return  # erased before this registration was handled: nobody to tell
    volunteer = Volunteer(id=data.volunteer_id, community_id=data.community_id, skills=data.skills)
    await directory.save_volunteer(tx, volunteer)
    await _whistles_handled_first(
        tx,
        event.envelope.time,
        policy,
        (volunteer.community_id,),
        lambda demand: [
            rules.volunteer(v.id) for v in rules.matching_volunteers(demand, [volunteer])
        ],
    )


async def on_unit_updated(tx: Tx, event: Incoming[UnitUpdated], policy: Policy) -> None:
    data = event.data
    if not await directory.newer_registry_version(tx, "unit", data.unit_id, data.version):
        return
    unit = Unit(id=data.unit_id, name=data.name, communities=data.communities, skills=data.skills)
    await directory.save_unit(tx, unit, version=data.version)


async def on_volunteer_updated(tx: Tx, event: Incoming[VolunteerUpdated], policy: Policy) -> None:
    data = event.data
    owner = rules.owner_key(rules.volunteer(data.volunteer_id))
    if await contacts.is_erased(tx, owner):
        return
    if not await directory.newer_registry_version(tx, "volunteer", data.volunteer_id, data.version):
        return
    volunteer = Volunteer(id=data.volunteer_id, community_id=data.community_id, skills=data.skills)
    await directory.save_volunteer(tx, volunteer, version=data.version)


async def on_volunteer_erased(tx: Tx, event: Incoming[VolunteerErased], policy: Policy) -> None:
    """Forget the person: directory entry, contact and secret, inbox, deliveries owed."""
    recipient = rules.volunteer(event.data.volunteer_id)
    owner = rules.owner_key(recipient)
    await contacts.erase(tx, owner)
    await directory.forget_volunteer(tx, event.data.volunteer_id)
    await inbox.forget_owner(tx, owner)
    await deliveries.forget_recipient(tx, recipient)


# --- the private exchange: how to reach people (never audited) -------------------------------


async def on_unit_details(tx: Tx, event: Incoming[UnitDetails], policy: Policy) -> None:
    data = event.data
    recipient = rules.unit(data.unit_id)
    await _reach(tx, recipient, data.version, data.contact, data.webhook_secret, policy)


async def on_volunteer_details(tx: Tx, event: Incoming[VolunteerDetails], policy: Policy) -> None:
    data = event.data
    recipient = rules.volunteer(data.volunteer_id)
    await _reach(tx, recipient, data.version, data.contact, data.webhook_secret, policy)


async def _reach(
    tx: Tx,
    recipient: Recipient,
    version: int,
    contact: Contact,
    secret: str | None,
    policy: Policy,
) -> None:
    """Store how to reach them. The details travel apart from the registration, so whistles
    may already sit in the newcomer's inbox with no delivery: the first details deliver those
    (the delivery id is derived from the notification, so never twice)."""
    owner = rules.owner_key(recipient)
    outcome = await contacts.save(tx, owner, version, contact, secret)
    if outcome == "first":
        reach = contacts.Reach(owner=owner, version=version, contact=contact, webhook_secret=secret)
        await deliver_waiting(tx, recipient, reach, policy)


async def _whistles_handled_first(
    tx: Tx,
    registered_at: datetime,
    policy: Policy,
    communities: Iterable[str],
    matching: Callable[[Demand], list[Recipient]],
) -> None:
    """Events are consumed concurrently, so a whistle published after this registration may
    have been handled before it: the newcomer hears it now, as the whistle itself would
    have told them (same notification, so never twice).

    Both handlers write the community's guard document: handled side by side, their
    transactions conflict and one is retried, so one of them always sees the other.
    """
    for community_id in communities:
        await directory.touch_community(tx, community_id)
        for demand in await directory.open_demands_since(tx, community_id, registered_at):
            to = matching(demand)
            if not to or not demand.publication_id:
                continue
            cause = NotificationCause.about(demand, demand.publication_id, DemandPublished.TYPE)
            told = notices(
                to, DemandPublished.TYPE, messages.published(demand), demand.publication_id
            )
            if await notify(tx, cause, told, policy):
                await directory.count_alerts(
                    tx, demand.id, [r.id for r in to if r.type == "volunteer"]
                )


# --- demands ---------------------------------------------------------------------------------


async def on_demand_published(tx: Tx, event: Incoming[DemandPublished], policy: Policy) -> None:
    """The whistle reaches the units serving the community and its matching volunteers."""
    data, envelope = event.data, event.envelope
    demand = Demand(
        id=data.demand_id,
        community_id=data.community_id,
        street=data.street,
        district=data.district,
        title=data.title,
        skills=data.skills,
        slots=data.slots,
        priority=data.priority,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        fill_by=data.fill_by,
        published_at=as_utc(envelope.time),
        publication_id=envelope.id,
    )
    await directory.save_demand(tx, demand, envelope.time)
    await directory.touch_community(tx, demand.community_id)
    units = await directory.units_serving(tx, demand.community_id)
    volunteers = await directory.volunteers_of(tx, demand.community_id)
    to = rules.for_published(demand, units, volunteers)
    if data.committed_unit_id is not None:
        # A relay roster's turn, committed to one unit: only it hears of it (a month of
        # turns would otherwise whistle every volunteer thirty times for places not open).
        to = [each for each in to if each.type == "unit" and each.id == data.committed_unit_id]
    await fan_out(
        tx,
        _about(event),
        notices(to, DemandPublished.TYPE, messages.published(demand), envelope.id),
        policy,
        alerts_for=demand.id,
    )
    for claim in await directory.claims_of(tx, demand.id):
        if claim.status in AWAITING_SHIFT:  # claimed while this publication was on its way
            await _schedule_reminder(tx, claim, demand, policy)
    halfway = rules.realert_at(demand)
    if halfway is not None:
        await timers.schedule(
            tx, rules.realert_key(demand.id), TIMER_REALERT, halfway, {"demand_id": demand.id}
        )


async def on_demand_escalated(tx: Tx, event: Incoming[DemandEscalated], policy: Policy) -> None:
    """The secretary, and the street or district the whistle now reaches."""
    data = event.data
    demand = await directory.update_demand(
        tx, data.demand_id, event.envelope.time, filled=data.filled, slots=data.slots
    )
    to = rules.for_escalation(data.community_id, data.to_level, data.target)
    text = messages.escalated(demand, data.demand_id, to[-1])
    told = notices(to, DemandEscalated.TYPE, text, event.envelope.id)
    await notify(tx, _about(event), told, policy)


async def on_demand_filled(tx: Tx, event: Incoming[DemandFilled], policy: Policy) -> None:
    data = event.data
    demand = await directory.update_demand(
        tx,
        data.demand_id,
        event.envelope.time,
        filled=data.filled,
        slots=data.slots,
        status="filled",
    )
    await _tell_secretary(tx, event, demand, data.community_id, data.demand_id, None, policy)


async def on_demand_reopened(tx: Tx, event: Incoming[DemandReopened], policy: Policy) -> None:
    data = event.data
    await directory.update_demand(
        tx, data.demand_id, event.envelope.time, filled=data.filled, slots=data.slots, status="open"
    )


async def _end_demand(
    tx: Tx, demand_id: str, at: datetime, status: DemandStatus
) -> tuple[Demand | None, list[Claim]]:
    """A demand that ends owes nobody a reminder or a re-alert any more."""
    demand = await directory.update_demand(tx, demand_id, at, status=status)
    claims = await directory.claims_of(tx, demand_id)
    keys = (rules.reminder_key(c.id) for c in claims)
    await timers.cancel(tx, rules.realert_key(demand_id), *keys)
    return demand, claims


async def on_demand_cancelled(tx: Tx, event: Incoming[DemandCancelled], policy: Policy) -> None:
    """Everyone who held a place hears it is off (people cross a city for a shift)."""
    data = event.data
    demand, claims = await _end_demand(tx, data.demand_id, event.envelope.time, "cancelled")
    text = messages.about_demand(DemandCancelled, demand, data.demand_id, f"Reason: {data.reason}")
    told = notices(
        rules.holders(claims), DemandCancelled.TYPE, text, rules.cancellation_key(data.demand_id)
    )
    await notify(tx, _about(event), told, policy)


async def on_demand_completed(tx: Tx, event: Incoming[DemandCompleted], policy: Policy) -> None:
    data = event.data
    demand, _ = await _end_demand(tx, data.demand_id, event.envelope.time, "completed")
    await _tell_secretary(
        tx, event, demand, data.community_id, data.demand_id, data.summary, policy
    )


async def _tell_secretary[T: DemandFilled | DemandCompleted](
    tx: Tx,
    event: Incoming[T],
    demand: Demand | None,
    community_id: str,
    demand_id: str,
    detail: str | None,
    policy: Policy,
) -> None:
    model = type(event.data)
    text = messages.about_demand(model, demand, demand_id, detail)
    told = notices([rules.secretary(community_id)], model.TYPE, text, event.envelope.id)
    await notify(tx, _about(event), told, policy)


async def on_demand_expired(tx: Tx, event: Incoming[DemandExpired], policy: Policy) -> None:
    await _end_demand(tx, event.data.demand_id, event.envelope.time, "expired")


# --- claims ----------------------------------------------------------------------------------


async def on_claim(tx: Tx, event: Incoming[ClaimData], policy: Policy) -> None:
    """The claimant hears of its claim; a no-show also reaches the secretary."""
    data, at = event.data, event.envelope.time
    model = type(data)
    status = CLAIM_STATUS[model]
    claim = Claim(
        id=data.claim_id,
        demand_id=data.demand_id,
        claimant=data.claimant,
        headcount=data.headcount,
        status=status,
    )
    # The guard write reads the demand's copy in the same command (see `touch_demand`).
    stored = await directory.touch_demand(tx, data.demand_id)
    await directory.save_claim(tx, claim, at)
    filled: int | None = getattr(data, "filled", None)
    if filled is not None:
        slots: int | None = getattr(data, "slots", None)
        demand = await directory.update_demand(
            tx, data.demand_id, at, filled=filled, slots=slots, current=stored
        )
    else:
        demand = directory.demand_in(stored)

    if status in AWAITING_SHIFT:
        await _schedule_reminder(tx, claim, demand, policy)
    else:
        await timers.cancel(tx, rules.reminder_key(claim.id))

    text = messages.about_claim(model, demand, data.demand_id)
    dedupe = rules.cancellation_key(data.demand_id) if status == "released" else event.envelope.id
    told = notices([rules.claimant(data.claimant)], model.TYPE, text, dedupe)
    if status == "no_show":
        who = f"{data.claimant.type} {data.claimant.id}"
        told += notices(
            [rules.secretary(data.community_id)],
            model.TYPE,
            messages.no_show_for_secretary(demand, data.demand_id, who),
            event.envelope.id,
        )
    await notify(tx, _about(event), told, policy)


async def _schedule_reminder(tx: Tx, claim: Claim, demand: Demand | None, policy: Policy) -> None:
    if demand is None:
        return  # the demand's publication has not reached notify: no start time to go by
    due = rules.reminder_due(demand, policy.reminder_lead, utcnow())
    if due is None:
        return  # accepted within the lead time: the acceptance itself was the reminder
    payload = {"claim_id": claim.id, "demand_id": demand.id}
    await timers.schedule(tx, rules.reminder_key(claim.id), TIMER_REMINDER, due, payload)
