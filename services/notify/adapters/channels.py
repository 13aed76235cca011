"""Sending one delivery on its channel: the webhook (signed with the receiver's current
secret) or the email."""

import json
from typing import Any

from services.notify.adapters import contacts
from services.notify.adapters.email import EmailSender
from services.notify.adapters.webhook import DELIVERY_HEADER, WebhookSender
from services.notify.domain.refusals import RefusedTarget
from services.notify.domain.rules import owner_key
from shared.events.catalogue import Recipient
from shared.store.mongo import Database, Document


def webhook_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are signed and sent (the same on every attempt)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class Channels:
    def __init__(self, db: Database, webhook: WebhookSender, email: EmailSender | None) -> None:
        self._db = db
        self._webhook = webhook
        self._email = email

    async def send(self, delivery: Document) -> int | None:
        """Send it; the receiver's HTTP status (None for email). Raises RefusedTarget
        (permanent) or DeliveryFailed (to be tried again)."""
        channel = delivery["channel"]
        payload = delivery["payload"]
        if channel == "webhook":
            # The secret is looked up now, not when the delivery was scheduled: a rotation
            # signs the very next attempt, and an erased recipient gets nothing more.
            reach = await contacts.get(
                self._db, owner_key(Recipient.model_validate(delivery["recipient"]))
            )
            if reach is None:
                raise RefusedTarget("the recipient is no longer registered")
            if not reach.contact.webhook_url or not reach.webhook_secret:
                raise RefusedTarget("the recipient has no webhook (or no secret) any more")
            # A corrected URL takes over pending deliveries: the old one is no longer theirs.
            return await self._webhook.send(
                reach.contact.webhook_url,
                webhook_body(payload),
                {
                    DELIVERY_HEADER: delivery["_id"],
                    "X-Whistle-Notification": payload["id"],
                    "X-Whistle-Kind": payload["kind"],
                },
                reach.webhook_secret,
            )
        if channel == "email":
            if self._email is None:
                raise RefusedTarget("email is not configured (WHISTLE_SMTP_URL is unset)")
            text = f"{payload['body']}\n\n-- Whistle notification {payload['id']}"
            await self._email.send(delivery["target"], payload["title"], text, payload["id"])
            return None
        raise RefusedTarget(f"unknown channel '{channel}'")
