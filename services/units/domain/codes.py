"""The on-site check-in code: short enough to read out at the gate, random per demand."""

import hmac
import secrets

# No 0/O, 1/I/L: the code is read off a phone and typed by someone standing in the street.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 6


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def matches(expected: str, given: str) -> bool:
    """Case- and space-insensitive, compared in constant time."""
    cleaned = "".join(given.split()).upper()
    return hmac.compare_digest(expected.encode(), cleaned.encode())
