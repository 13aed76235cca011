"""The hash chain: each record's hash covers the previous hash and the event's canonical JSON."""

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64


def canonical_json(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(prev_hash: str, event: dict[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_json(event)).hexdigest()
