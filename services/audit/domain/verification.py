"""Walking the hash chain: one record at a time, so memory stays constant however long the log.

A record is bad when its seq is not the next one (a gap or a reordering), its `prev_hash` is
not the previous record's hash, or its `hash` is not `sha256(prev_hash || canonical event)`.
The walk stops at the first bad seq: everything after it is unproven.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.audit.domain.chain import GENESIS_HASH, chain_hash


@dataclass
class ChainWalk:
    events: int = 0
    head_hash: str = GENESIS_HASH
    first_bad_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_seq is None

    def check(self, record: Mapping[str, Any]) -> bool:
        """Take the next record; False (and the walk is over) when it breaks the chain."""
        if not self.ok:
            return False
        expected_seq = self.events + 1
        if record.get("seq") != expected_seq:
            return self._bad(
                expected_seq, f"expected seq {expected_seq}, found {record.get('seq')}"
            )
        if record.get("prev_hash") != self.head_hash:
            return self._bad(expected_seq, "prev_hash is not the previous record's hash")
        event = record.get("event")
        if not isinstance(event, dict) or record.get("hash") != chain_hash(self.head_hash, event):
            return self._bad(expected_seq, "hash does not match the stored event")
        self.events = expected_seq
        self.head_hash = str(record["hash"])
        return True

    def finish(self, head: Mapping[str, Any] | None) -> None:
        """Compare with the stored head: records cut off the end show up here."""
        if not self.ok or head is None:
            return
        if head.get("seq") != self.events or head.get("hash") != self.head_hash:
            self._bad(
                self.events + 1, f"the head says seq {head.get('seq')}; the chain ends sooner"
            )

    def _bad(self, seq: int, reason: str) -> bool:
        self.first_bad_seq = seq
        self.reason = reason
        return False

    def verdict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "events": self.events, "head_hash": self.head_hash}
        return {
            "ok": False,
            "first_bad_seq": self.first_bad_seq,
            "reason": self.reason,
            "events_verified": self.events,
        }
