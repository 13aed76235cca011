"""Audit's periodic work: checkpoints of every partition's head under one signed root.

Every `every` events this process appended, or after `interval_s` seconds at the next append,
whichever first, the committed heads of all partitions are read, their Merkle root is logged
(`log_head`) and, when a writer is given, signed and appended to the checkpoint file (see
`domain/checkpoints.py`): rewriting history would change a pinned hash. The heads are read
from the store after the commits, so a pinned head is always a committed one. Any number of
replicas may write checkpoints; each line stands on its own.
"""

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

import structlog

from services.audit.adapters.checkpoint_file import CheckpointWriter
from services.audit.domain import merkle
from services.audit.domain.merkle import Head

_log = structlog.get_logger("whistle.audit")

Heads = Callable[[], Awaitable[Mapping[str, Head]]]


@dataclass
class Checkpointing:
    heads: Heads
    every: int = 1000
    interval_s: float = 60.0
    checkpoints: CheckpointWriter | None = None
    _since: int = 0
    _last_at: float = field(default_factory=time.monotonic)

    async def after_append(self, stored: int) -> None:
        self._since += stored
        overdue = time.monotonic() - self._last_at >= self.interval_s
        if self._since == 0 or (self._since < self.every and not overdue):
            return
        self._since = 0
        self._last_at = time.monotonic()
        await self.pin()

    async def pin(self) -> None:
        heads = dict(await self.heads())
        _log.info(
            "log_head",
            root=merkle.root(heads),
            heads={name: {"seq": seq, "hash": h} for name, (seq, h) in sorted(heads.items())},
        )
        if self.checkpoints is None:
            return
        try:
            self.checkpoints.write(heads)
        except OSError as error:
            # The events are committed; only this pin is missing (the next one covers them).
            # Loud, so an operator sees the file is not being written.
            _log.error("checkpoint_not_written", error=str(error))
