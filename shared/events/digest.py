"""Salted digests of private fields, for audited events that must prove what was said.

`details_digest` is HMAC-SHA256 keyed with a random per-record salt over the canonical JSON
(sorted keys, no spaces, UTF-8) of the private fields. Whoever holds the record and its salt
can show that the log's digest matches what was said; nobody holding only the log can test
guesses against it (a phone number has few enough possibilities to brute-force an unsalted
hash). The salt lives only with the record in the owning service's database and is deleted
when the person is erased, which is what makes erasure real: the digest left in the log no
longer links to anyone.
"""

import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Any

PREFIX = "hmac-sha256:"


def new_salt() -> str:
    return secrets.token_hex(32)


def canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def details_digest(salt: str, fields: Mapping[str, Any]) -> str:
    return PREFIX + hmac.new(bytes.fromhex(salt), canonical(fields), hashlib.sha256).hexdigest()


def matches(salt: str, fields: Mapping[str, Any], digest: str) -> bool:
    return hmac.compare_digest(details_digest(salt, fields), digest)
