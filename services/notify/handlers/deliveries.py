"""Recording a delivery attempt: sent -> `notification.sent`; failed -> tried again after a
backoff; out of attempts or refused -> a dead letter and `notification.failed`."""

from dataclasses import dataclass
from typing import Any

from services.notify.adapters import deliveries, outgoing
from services.notify.domain.rules import exhausted, next_attempt_at
from shared.clock import utcnow
from shared.store.mongo import Document
from shared.store.unit_of_work import Tx


@dataclass(frozen=True)
class Retries:
    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float


async def record_attempt(
    tx: Tx,
    delivery: Document,
    attempt: dict[str, Any],
    *,
    permanent: bool,
    worker: str,
    retries: Retries,
) -> str | None:
    """Store the attempt's outcome; returns the delivery's new state (None: lease lost)."""
    attempts = delivery["attempts"] + 1
    channel = delivery["channel"]
    error = attempt["error"]
    if error is None:
        state, next_at = "sent", None
    elif permanent or exhausted(attempts, retries.max_attempts):
        state, next_at = "dead", None
    else:
        state = "pending"
        next_at = next_attempt_at(
            utcnow(), attempts, base_s=retries.backoff_base_s, max_s=retries.backoff_max_s
        )
    recorded = await deliveries.record(
        tx, delivery["_id"], worker, attempt, state=state, next_attempt_at=next_at
    )
    if not recorded:
        return None  # our lease lapsed and another worker owns it now
    if state == "sent":
        outgoing.emit_sent(tx, delivery, channel, attempts=attempts)
    elif state == "dead":
        await deliveries.dead_letter(tx, delivery, error)
        outgoing.emit_failed(tx, delivery, channel, attempts=attempts, error=error)
    return state
