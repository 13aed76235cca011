"""Notify's event and timer handlers, one function each: keep the copy, decide who hears it.

Every handler runs inside the consumer's transaction (`run_once`), so the copy update, the
inbox writes, the deliveries to make, the timers and the `notification.sent` events commit
together, once per event.
"""

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from services.notify.adapters import contacts, deliveries, directory, inbox
from services.notify.domain import messages, recipients
from services.notify.domain.model import (
    AWAITING_SHIFT,
    CLOSED,
    Claim,
    ClaimStatus,
    Community,
    Demand,
    DemandStatus,
    Notice,
    Unit,
    Volunteer,
)
from services.notify.notifying import Cause, Policy, deliver_waiting, fan_out, notify
from shared.clock import as_utc, utcnow
from shared.events.catalogue import (
    ClaimAccepted,
    ClaimCheckedIn,
    ClaimCompleted,
    ClaimData,
    ClaimNoShow,
    ClaimPromoted,
    ClaimReleased,
    ClaimWaitlisted,
    ClaimWithdrawn,
    CommunityRegistered,
    Contact,
    DemandCancelled,
    DemandCompleted,
    DemandEscalated,
    DemandExpired,
    DemandFilled,
    DemandPublished,
    DemandReopened,
    Recipient,
    UnitDetails,
    UnitRegistered,
    UnitUpdated,
    VolunteerDetails,
    VolunteerErased,
    VolunteerRegistered,
    VolunteerUpdated,
    parse_data,
)
from shared.events.envelope import CloudEvent
from shared.store import timers
from shared.store.mongo import Document
from shared.store.unit_of_work import Tx

REMINDER = "notify.reminder"
REALERT = "notify.realert"
REMINDER_KIND = "claim.reminder"
REALERT_KIND = "demand.realert"

EventHandler = Callable[[Tx, CloudEvent, Policy], Awaitable[None]]
TimerRule = Callable[[Tx, Document, Policy], Awaitable[None]]


def reminder_key(claim_id: str) -> str:
    return f"reminder:{claim_id}"


def realert_key(demand_id: str) -> str:
    return f"realert:{demand_id}"


def cancellation_key(demand_id: str) -> str:
    # `demand.cancelled` and each `claim.released` announce one fact: tell each holder once.
    return f"cancelled:{demand_id}"


def _notices(
    to: list[Recipient], kind: str, text: tuple[str, str], dedupe_key: str
) -> list[Notice]:
    title, body = text
    return [
        Notice(recipient=r, kind=kind, title=title, body=body, dedupe_key=dedupe_key) for r in to
    ]


# --- registry --------------------------------------------------------------------------------


async def on_community_registered(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(CommunityRegistered, event.data)
    await directory.save_community(
        tx,
        Community(id=data.community_id, name=data.name, street=data.street, district=data.district),
    )


async def on_unit_registered(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(UnitRegistered, event.data)
    unit = Unit(id=data.unit_id, name=data.name, communities=data.communities, skills=data.skills)
    await directory.save_unit(tx, unit)
    await _whistles_handled_first(
        tx,
        event,
        policy,
        unit.communities,
        lambda demand: [recipients.unit(u.id) for u in recipients.matching_units(demand, [unit])],
    )


async def on_volunteer_registered(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(VolunteerRegistered, event.data)
    if await contacts.is_erased(tx, recipients.owner_key(recipients.volunteer(data.volunteer_id))):
        return  # erased before this registration was handled: nobody to tell
    volunteer = Volunteer(id=data.volunteer_id, community_id=data.community_id, skills=data.skills)
    await directory.save_volunteer(tx, volunteer)
    await _whistles_handled_first(
        tx,
        event,
        policy,
        (volunteer.community_id,),
        lambda demand: [
            recipients.volunteer(v.id) for v in recipients.matching_volunteers(demand, [volunteer])
        ],
    )


async def on_unit_updated(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(UnitUpdated, event.data)
    if not await directory.newer_registry_version(tx, "unit", data.unit_id, data.version):
        return
    unit = Unit(id=data.unit_id, name=data.name, communities=data.communities, skills=data.skills)
    await directory.save_unit(tx, unit, version=data.version)


async def on_volunteer_updated(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(VolunteerUpdated, event.data)
    owner = recipients.owner_key(recipients.volunteer(data.volunteer_id))
    if await contacts.is_erased(tx, owner):
        return
    if not await directory.newer_registry_version(tx, "volunteer", data.volunteer_id, data.version):
        return
    volunteer = Volunteer(id=data.volunteer_id, community_id=data.community_id, skills=data.skills)
    await directory.save_volunteer(tx, volunteer, version=data.version)


async def on_volunteer_erased(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    """Forget the person: directory entry, contact and secret, inbox, deliveries owed."""
    data = parse_data(VolunteerErased, event.data)
    recipient = recipients.volunteer(data.volunteer_id)
    owner = recipients.owner_key(recipient)
    await contacts.erase(tx, owner)
    await directory.forget_volunteer(tx, data.volunteer_id)
    await inbox.forget_owner(tx, owner)
    await deliveries.forget_recipient(tx, recipient)


# --- the private exchange: how to reach people (never audited) -------------------------------


async def on_unit_details(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(UnitDetails, event.data)
    recipient = recipients.unit(data.unit_id)
    await _reach(tx, recipient, data.version, data.contact, data.webhook_secret, policy)


async def on_volunteer_details(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(VolunteerDetails, event.data)
    recipient = recipients.volunteer(data.volunteer_id)
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
    owner = recipients.owner_key(recipient)
    outcome = await contacts.save(tx, owner, version, contact, secret)
    if outcome == "first":
        reach = contacts.Reach(owner=owner, version=version, contact=contact, webhook_secret=secret)
        await deliver_waiting(tx, recipient, reach, policy)


async def _whistles_handled_first(
    tx: Tx,
    registration: CloudEvent,
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
        for demand in await directory.open_demands_since(tx, community_id, registration.time):
            to = matching(demand)
            if not to or not demand.publication_id:
                continue
            cause = Cause(
                event_id=demand.publication_id,
                type=DemandPublished.TYPE,
                correlationid=demand.id,
                demand_id=demand.id,
                community_id=demand.community_id,
            )
            notices = _notices(
                to, DemandPublished.TYPE, messages.published(demand), demand.publication_id
            )
            if await notify(tx, cause, notices, policy):
                await directory.count_alerts(
                    tx, demand.id, [r.id for r in to if r.type == "volunteer"]
                )


# --- demands ---------------------------------------------------------------------------------


async def on_demand_published(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    """The whistle reaches the units serving the community and its matching volunteers."""
    data = parse_data(DemandPublished, event.data)
    published_at = as_utc(event.time)
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
        published_at=published_at,
        publication_id=event.id,
    )
    await directory.save_demand(tx, demand, event.time)
    await directory.touch_community(tx, demand.community_id)
    units = await directory.units_serving(tx, demand.community_id)
    volunteers = await directory.volunteers_of(tx, demand.community_id)
    to = recipients.for_published(demand, units, volunteers)
    await fan_out(
        tx,
        Cause.of(event),
        _notices(to, event.type, messages.published(demand), event.id),
        policy,
        alerts_for=demand.id,
    )
    for claim in await directory.claims_of(tx, demand.id):
        if claim.status in AWAITING_SHIFT:  # claimed while this publication was on its way
            await _schedule_reminder(tx, claim, demand, policy)
    fill_by = as_utc(demand.fill_by)
    if fill_by > published_at:
        # Half of the time to `fill_by`: late enough to see who answered, early enough to act.
        halfway = published_at + (fill_by - published_at) / 2
        await timers.schedule(
            tx, realert_key(demand.id), REALERT, halfway, {"demand_id": demand.id}
        )


async def on_demand_escalated(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    """The secretary, and the street or district the whistle now reaches."""
    data = parse_data(DemandEscalated, event.data)
    demand = await directory.update_demand(
        tx, data.demand_id, event.time, filled=data.filled, slots=data.slots
    )
    to = recipients.for_escalation(data.community_id, data.to_level, data.target)
    target = to[-1]
    text = messages.escalated(demand, data.demand_id, target)
    await notify(tx, Cause.of(event), _notices(to, event.type, text, event.id), policy)


async def on_demand_filled(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(DemandFilled, event.data)
    demand = await directory.update_demand(
        tx, data.demand_id, event.time, filled=data.filled, slots=data.slots, status="filled"
    )
    to = [recipients.secretary(data.community_id)]
    text = messages.about_demand(event.type, demand, data.demand_id)
    await notify(tx, Cause.of(event), _notices(to, event.type, text, event.id), policy)


async def on_demand_reopened(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(DemandReopened, event.data)
    await directory.update_demand(
        tx, data.demand_id, event.time, filled=data.filled, slots=data.slots, status="open"
    )


async def _end_demand(
    tx: Tx, demand_id: str, at: datetime, status: DemandStatus
) -> tuple[Demand | None, list[Claim]]:
    """A demand that ends owes nobody a reminder or a re-alert any more."""
    demand = await directory.update_demand(tx, demand_id, at, status=status)
    claims = await directory.claims_of(tx, demand_id)
    await timers.cancel(tx, realert_key(demand_id), *(reminder_key(c.id) for c in claims))
    return demand, claims


async def on_demand_cancelled(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    """Everyone who held a place hears it is off (people cross a city for a shift)."""
    data = parse_data(DemandCancelled, event.data)
    demand, claims = await _end_demand(tx, data.demand_id, event.time, "cancelled")
    to = recipients.holders(claims)
    text = messages.about_demand(event.type, demand, data.demand_id, f"Reason: {data.reason}")
    notices = _notices(to, event.type, text, cancellation_key(data.demand_id))
    await notify(tx, Cause.of(event), notices, policy)


async def on_demand_completed(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(DemandCompleted, event.data)
    demand, _ = await _end_demand(tx, data.demand_id, event.time, "completed")
    to = [recipients.secretary(data.community_id)]
    text = messages.about_demand(event.type, demand, data.demand_id, data.summary)
    await notify(tx, Cause.of(event), _notices(to, event.type, text, event.id), policy)


async def on_demand_expired(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    data = parse_data(DemandExpired, event.data)
    await _end_demand(tx, data.demand_id, event.time, "expired")


# --- claims ----------------------------------------------------------------------------------

_CLAIM_MODELS: dict[str, tuple[type[ClaimData], ClaimStatus]] = {
    ClaimAccepted.TYPE: (ClaimAccepted, "accepted"),
    ClaimPromoted.TYPE: (ClaimPromoted, "accepted"),
    ClaimWaitlisted.TYPE: (ClaimWaitlisted, "waitlisted"),
    ClaimWithdrawn.TYPE: (ClaimWithdrawn, "withdrawn"),
    ClaimReleased.TYPE: (ClaimReleased, "released"),
    ClaimCheckedIn.TYPE: (ClaimCheckedIn, "checked_in"),
    ClaimCompleted.TYPE: (ClaimCompleted, "completed"),
    ClaimNoShow.TYPE: (ClaimNoShow, "no_show"),
}


async def on_claim(tx: Tx, event: CloudEvent, policy: Policy) -> None:
    """The claimant hears of its claim; a no-show also reaches the secretary."""
    model, status = _CLAIM_MODELS[event.type]
    data = parse_data(model, event.data)
    claim = Claim(
        id=data.claim_id,
        demand_id=data.demand_id,
        claimant=data.claimant,
        headcount=data.headcount,
        status=status,
    )
    stored = await directory.touch_demand(tx, data.demand_id)
    await directory.save_claim(tx, claim, event.time)
    filled: int | None = getattr(data, "filled", None)
    if filled is not None:
        slots: int | None = getattr(data, "slots", None)
        demand = await directory.update_demand(
            tx, data.demand_id, event.time, filled=filled, slots=slots, current=stored
        )
    else:
        demand = directory.demand_in(stored)

    if status in AWAITING_SHIFT:
        await _schedule_reminder(tx, claim, demand, policy)
    else:
        await timers.cancel(tx, reminder_key(claim.id))

    cause = Cause.of(event)
    text = messages.about_claim(event.type, demand, data.demand_id)
    dedupe = cancellation_key(data.demand_id) if status == "released" else event.id
    notices = _notices([recipients.claimant(data.claimant)], event.type, text, dedupe)
    if status == "no_show":
        who = f"{data.claimant.type} {data.claimant.id}"
        notices += _notices(
            [recipients.secretary(data.community_id)],
            event.type,
            messages.no_show_for_secretary(demand, data.demand_id, who),
            event.id,
        )
    await notify(tx, cause, notices, policy)


async def _schedule_reminder(tx: Tx, claim: Claim, demand: Demand | None, policy: Policy) -> None:
    if demand is None:
        return  # the demand's publication has not reached notify: no start time to go by
    due = as_utc(demand.starts_at) - policy.reminder_lead
    if due <= utcnow():
        return  # accepted within the lead time: the acceptance itself was the reminder
    payload = {"claim_id": claim.id, "demand_id": demand.id}
    await timers.schedule(tx, reminder_key(claim.id), REMINDER, due, payload)


EVENT_HANDLERS: dict[str, EventHandler] = {
    CommunityRegistered.TYPE: on_community_registered,
    UnitRegistered.TYPE: on_unit_registered,
    VolunteerRegistered.TYPE: on_volunteer_registered,
    UnitUpdated.TYPE: on_unit_updated,
    VolunteerUpdated.TYPE: on_volunteer_updated,
    VolunteerErased.TYPE: on_volunteer_erased,
    DemandPublished.TYPE: on_demand_published,
    DemandEscalated.TYPE: on_demand_escalated,
    DemandFilled.TYPE: on_demand_filled,
    DemandReopened.TYPE: on_demand_reopened,
    DemandCancelled.TYPE: on_demand_cancelled,
    DemandCompleted.TYPE: on_demand_completed,
    DemandExpired.TYPE: on_demand_expired,
    **dict.fromkeys(_CLAIM_MODELS, on_claim),
}


# From `whistle.private` (queue `notify.private`).
PRIVATE_HANDLERS: dict[str, EventHandler] = {
    UnitDetails.TYPE: on_unit_details,
    VolunteerDetails.TYPE: on_volunteer_details,
}


# --- timers ----------------------------------------------------------------------------------


def _timer_cause(timer: Document, kind: str, demand: Demand) -> Cause:
    return Cause(
        event_id=f"timer:{timer['_id']}",
        type=kind,
        correlationid=demand.id,
        demand_id=demand.id,
        community_id=demand.community_id,
    )


async def on_reminder_due(tx: Tx, timer: Document, policy: Policy) -> None:
    """Each accepted claimant hears, ahead of the shift, that it is coming."""
    claim = await directory.get_claim(tx, timer["payload"]["claim_id"])
    demand = await directory.get_demand(tx, timer["payload"]["demand_id"])
    if claim is None or demand is None:
        return
    if claim.status not in AWAITING_SHIFT or demand.status in CLOSED:
        return
    to = [recipients.claimant(claim.claimant)]
    notices = _notices(to, REMINDER_KIND, messages.reminder(demand), timer["_id"])
    await notify(tx, _timer_cause(timer, REMINDER_KIND, demand), notices, policy)


async def on_realert_due(tx: Tx, timer: Document, policy: Policy) -> None:
    """Half way to `fill_by` and still unfilled: call matching volunteers once more."""
    demand = await directory.get_demand(tx, timer["payload"]["demand_id"])
    if demand is None or not demand.unfilled:
        return
    # A fill or a claim committed meanwhile conflicts with this write, so the re-alert is
    # decided on what is current, not on a snapshot a moment old.
    await directory.touch_demand(tx, demand.id)
    volunteers = await directory.volunteers_of(tx, demand.community_id)
    alerts = await directory.alert_counts(tx, demand.id)
    claims = await directory.claims_of(tx, demand.id)
    to = recipients.for_realert(demand, volunteers, alerts, [c.claimant.id for c in claims])
    notices = _notices(to, REALERT_KIND, messages.realert(demand), timer["_id"])
    await notify(tx, _timer_cause(timer, REALERT_KIND, demand), notices, policy)
    await directory.count_alerts(tx, demand.id, [r.id for r in to])
