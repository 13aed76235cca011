"""The events notify emits about a notification (`notification.sent`, `notification.failed`).

Each is caused by what caused the notification, whichever unit of work emits it (the
consumer's, a fan-out batch's, the delivery worker's): `causationid` is the cause event (or
timer), the flow is the notification's.
"""

from collections.abc import Mapping
from typing import Any

from services.notify.domain.model import Channel
from shared.events.catalogue import NotificationFailed, NotificationSent, Recipient
from shared.store.unit_of_work import Cause, Tx, source_of

SERVICE = "notify"

_REFERENCE_FIELDS = (
    "recipient",
    "cause_event_id",
    "cause_type",
    "correlationid",
    "demand_id",
    "community_id",
)


def reference(notification: Mapping[str, Any]) -> dict[str, Any]:
    """What a delivery keeps of its notification to report on it."""
    notification_id = notification.get("notification_id", notification.get("_id"))
    return {"notification_id": notification_id} | {
        key: notification.get(key) for key in _REFERENCE_FIELDS
    }


def _cause(ref: Mapping[str, Any]) -> Cause:
    return Cause(source_of(SERVICE), SERVICE, ref["cause_event_id"], ref["correlationid"])


def _about(ref: Mapping[str, Any], channel: Channel, attempts: int) -> dict[str, Any]:
    return {
        "notification_id": ref["notification_id"],
        "recipient": Recipient.model_validate(ref["recipient"]),
        "channel": channel,
        "cause_event_id": ref["cause_event_id"],
        "cause_type": ref["cause_type"],
        "demand_id": ref["demand_id"],
        "community_id": ref["community_id"],
        "attempts": attempts,
    }


def emit_sent(tx: Tx, notification: Mapping[str, Any], channel: Channel, *, attempts: int) -> None:
    ref = reference(notification)
    data = NotificationSent(**_about(ref, channel, attempts))
    tx.emit(data, subject=ref["notification_id"], cause=_cause(ref))


def emit_failed(
    tx: Tx, notification: Mapping[str, Any], channel: Channel, *, attempts: int, error: str
) -> None:
    ref = reference(notification)
    data = NotificationFailed(**_about(ref, channel, attempts), error=error[:500])
    tx.emit(data, subject=ref["notification_id"], cause=_cause(ref))
