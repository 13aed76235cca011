"""Notices become stored notifications, the step every event and timer handler ends with:
the inbox write, the deliveries to make, and `notification.sent` for the inbox, all in the
caller's transaction.

The notification's id is derived from (dedupe key, recipient), so however often a cause is
redelivered or repeated, each recipient gets it once on each channel.
"""

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from services.notify.adapters import contacts, deliveries, directory, inbox, outgoing
from services.notify.adapters.contacts import Reach
from services.notify.domain.model import (
    TIMER_FANOUT,
    Channel,
    Notice,
    NotificationCause,
    Policy,
)
from services.notify.domain.rules import delivery_id, notification_id, owner_key
from shared.clock import utcnow
from shared.events.catalogue import Recipient
from shared.store import timers
from shared.store.mongo import Document
from shared.store.unit_of_work import Tx


async def notify(
    tx: Tx, cause: NotificationCause, notices: Iterable[Notice], policy: Policy
) -> int:
    """Store each notice that is new; returns how many were.

    The whole batch costs a few commands, not a few per person: one read of the recipients'
    contacts (erased, and how to reach them), the inbox's batch write, one insert of the
    deliveries."""
    notices = list(notices)
    known = await contacts.known(
        tx, (owner_key(n.recipient) for n in notices if n.recipient.type in _REACHABLE)
    )
    documents = [
        _notification_document(cause, notice)
        for notice in notices
        # erased: nobody to tell, and nothing of theirs is kept
        if owner_key(notice.recipient) not in known.erased
    ]
    stored = await inbox.add_many(tx, documents)
    to_deliver: list[Document] = []
    for notification in stored:
        outgoing.emit_sent(tx, notification, "inbox", attempts=1)
        reach = known.reach.get(notification["owner"])
        to_deliver += _deliveries(notification, _channels(reach, policy))
    # The notifications are new, so none of their deliveries can exist yet: no read first.
    await deliveries.schedule_new(tx, to_deliver)
    return len(stored)


def _deliveries(stored: Document, channels: list[tuple[Channel, str]]) -> list[Document]:
    payload = inbox.public_view(stored)
    return [
        {
            "_id": delivery_id(stored["_id"], channel),
            **outgoing.reference(stored),
            "channel": channel,
            "target": target,
            "payload": payload,
        }
        for channel, target in channels
    ]


# A newcomer's inbox holds what reached it since registration: this bounds the catch-up.
WAITING_LIMIT = 200


async def deliver_waiting(tx: Tx, recipient: Recipient, reach: Reach, policy: Policy) -> None:
    """Deliver on the channels just learned (`reach`) what is already in the inbox."""
    channels = _channels(reach, policy)
    if not channels:
        return
    for stored in await inbox.latest(tx, owner_key(recipient), WAITING_LIMIT):
        for delivery in _deliveries(stored, channels):
            await deliveries.schedule(tx, delivery)


def _notification_document(cause: NotificationCause, notice: Notice) -> dict[str, Any]:
    return {
        "_id": notification_id(notice.dedupe_key, notice.recipient),
        "owner": owner_key(notice.recipient),
        "recipient": notice.recipient.model_dump(),
        "kind": notice.kind,
        "title": notice.title,
        "body": notice.body,
        "cause_event_id": cause.event_id,
        "cause_type": cause.type,
        "correlationid": cause.correlationid,
        "demand_id": cause.demand_id,
        "community_id": cause.community_id,
        "created_at": utcnow(),
    }


# Who has channels beyond the inbox: offices read their inbox (the registry has no contact).
_REACHABLE = frozenset({"unit", "volunteer"})


def _channels(reach: Reach | None, policy: Policy) -> list[tuple[Channel, str]]:
    """The recipient's registered channels beyond the inbox (from the private details)."""
    if reach is None:
        return []
    channels: list[tuple[Channel, str]] = []
    if reach.contact.webhook_url:
        channels.append(("webhook", reach.contact.webhook_url))
    if reach.contact.email and policy.email_enabled:
        channels.append(("email", reach.contact.email))
    return channels


# --- fan-out in bounded transactions --------------------------------------------------------

# A critical demand can reach thousands of people; one transaction for all of them could
# pass MongoDB's 60 s transaction limit (and holds every write in memory until commit). So
# recipients are notified `Policy.fanout_batch` per transaction: the first batch commits with
# the cause, the rest as stored timers, each a transaction of its own, fired at once and
# exactly once (a notification's id is derived from its cause and recipient).


async def fan_out(
    tx: Tx,
    cause: NotificationCause,
    notices: list[Notice],
    policy: Policy,
    *,
    alerts_for: str | None = None,
) -> int:
    """`notify` for the first batch of notices now; the rest in later batches.

    `alerts_for` (a demand id): count an alert for each volunteer, batch by batch.
    """
    batch = policy.fanout_batch
    first, rest = notices[:batch], notices[batch:]
    created = await _notify_batch(tx, cause, first, policy, alerts_for)
    for index, start in enumerate(range(0, len(rest), batch), start=1):
        chunk = rest[start : start + batch]
        await timers.schedule(
            tx,
            f"fanout:{cause.event_id}:{chunk[0].dedupe_key}:{index}",
            TIMER_FANOUT,
            utcnow(),
            {
                "cause": asdict(cause),
                "notices": [notice.model_dump(mode="json") for notice in chunk],
                "alerts_for": alerts_for,
            },
        )
    return created


async def notify_later_batch(tx: Tx, payload: Document, policy: Policy) -> None:
    """One of the later batches `fan_out` stored (its timer fired)."""
    notices = [Notice.model_validate(notice) for notice in payload["notices"]]
    cause = NotificationCause(**payload["cause"])
    await _notify_batch(tx, cause, notices, policy, payload["alerts_for"])


async def _notify_batch(
    tx: Tx,
    cause: NotificationCause,
    notices: list[Notice],
    policy: Policy,
    alerts_for: str | None,
) -> int:
    created = await notify(tx, cause, notices, policy)
    if alerts_for is not None:
        volunteers = [n.recipient.id for n in notices if n.recipient.type == "volunteer"]
        await directory.count_alerts(tx, alerts_for, volunteers)
    return created
