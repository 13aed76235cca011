"""Server-chosen identifiers: a readable prefix, then a time-ordered, random tail.

Ids that sort by creation time give cursors a stable order without a second key.
"""

import secrets
import time
import uuid


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    return f"{prefix}_{millis:012x}{secrets.token_hex(5)}"


def new_event_id() -> str:
    return str(uuid.uuid4())
