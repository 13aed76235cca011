"""One Merkle root over every partition's head, so one signature pins them all.

Leaves are the partitions' heads in partition-name order, each `sha256(0x00 || canonical
JSON of [partition, seq, hash])`; an inner node is `sha256(0x01 || left || right)` (the
RFC 6962 domain separation, so a leaf can never pass for a node); an odd node at the end of
a level is carried up unchanged. No partitions: the root is sha256 of the empty string.
"""

import hashlib
import json
from collections.abc import Mapping

Head = tuple[int, str]


def leaf(partition: str, seq: int, head_hash: str) -> bytes:
    body = json.dumps([partition, seq, head_hash], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(b"\x00" + body.encode()).digest()


def root(heads: Mapping[str, Head]) -> str:
    level = [leaf(name, *heads[name]) for name in sorted(heads)]
    if not level:
        return hashlib.sha256(b"").hexdigest()
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0].hex()
