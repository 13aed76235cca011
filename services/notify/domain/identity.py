"""Deterministic identities, so that a redelivered or repeated cause never notifies twice."""

import hashlib

from services.notify.domain.model import Channel
from shared.events.catalogue import Recipient


def notification_id(dedupe_key: str, recipient: Recipient) -> str:
    digest = hashlib.sha256(f"{dedupe_key}\x1f{recipient.type}\x1f{recipient.id}".encode())
    return f"ntf_{digest.hexdigest()[:32]}"


def delivery_id(notification: str, channel: Channel) -> str:
    return f"{notification}:{channel}"
