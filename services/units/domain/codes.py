"""The secrets units hands out: the on-site check-in code and the webhook signing key."""

import hmac
import secrets

from shared.events.catalogue import Contact

# No 0/O, 1/I/L: the code is read off a phone and typed by someone standing in the street.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def matches(expected: str, given: str) -> bool:
    """Case- and space-insensitive, compared in constant time."""
    cleaned = "".join(given.split()).upper()
    return hmac.compare_digest(expected.encode(), cleaned.encode())


def new_webhook_secret() -> str:
    # 32 random bytes, URL-safe: the receiver keys HMAC-SHA256 with the string's UTF-8 bytes.
    return "whsec_" + secrets.token_urlsafe(32)


def secret_for(contact: Contact, current: str | None) -> str | None:
    """A receiver has its own secret from the moment it has a webhook URL."""
    if not contact.webhook_url:
        return None
    return current or new_webhook_secret()
