"""Audit's handlers: record every event once, in order; pin the head hash in the logs.

Group commit: the consumer hands over up to `prefetch` messages at once; while one append
transaction runs, the events that arrive queue up and go into the next transaction together.
Each message is acked only after the transaction holding its event has committed, so a crash
loses nothing (the broker redelivers, and the event id makes the second append a no-op).
"""

import asyncio
import time
from dataclasses import dataclass, field

import structlog

from services.audit.adapters import log_store
from shared.events.envelope import CloudEvent
from shared.store.unit_of_work import Tx, UnitOfWork

_log = structlog.get_logger("whistle.audit")

MAX_BATCH = 100


@dataclass
class HeadPinning:
    """Log the head (seq, hash) every `every` events or `interval_s` seconds, whichever first.

    An outside copy of these lines pins the chain: rewriting history would change a pinned
    hash. Logged after commit, so a pinned head is always a committed one.
    """

    every: int = 1000
    interval_s: float = 60.0
    _last_seq: int = 0
    _last_at: float = field(default_factory=time.monotonic)

    def after_append(self, head_seq: int, head_hash: str) -> None:
        crossed = head_seq // self.every > self._last_seq // self.every
        overdue = time.monotonic() - self._last_at >= self.interval_s
        if head_seq > self._last_seq and (crossed or overdue):
            _log.info("log_head", seq=head_seq, hash=head_hash)
            self._last_seq = head_seq
            self._last_at = time.monotonic()


class EventRecorder:
    def __init__(self, uow: UnitOfWork, pinning: HeadPinning | None = None) -> None:
        self._uow = uow
        self._pinning = pinning or HeadPinning()
        self._waiting: list[tuple[CloudEvent, asyncio.Future[int | None]]] = []
        # One append transaction at a time in this process; replicas are serialised by the
        # conditional head update.
        self._lock = asyncio.Lock()

    async def record(self, event: CloudEvent) -> None:
        """Store the event (once); returns when its transaction has committed."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, done))
        while not done.done():
            async with self._lock:
                if not done.done():
                    await self._append_waiting()
        seq = done.result()
        if seq is None:
            _log.info("duplicate_event_ignored")

    async def _append_waiting(self) -> None:
        batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
        wire = [event.wire() for event, _ in batch]

        async def append(tx: Tx) -> log_store.Appended:
            return await log_store.append(tx, wire)

        try:
            appended = await self._uow.run(append)
        except Exception as error:
            # Every message of the batch fails alike and goes back to the broker.
            for _, done in batch:
                if not done.done():
                    done.set_exception(error)
            return
        except BaseException:
            # Cancelled mid-transaction (shutdown): the rest wait for the next appender.
            self._waiting[:0] = [item for item in batch if not item[1].done()]
            raise
        for (_, done), seq in zip(batch, appended.seqs, strict=True):
            if not done.done():
                done.set_result(seq)
        self._pinning.after_append(appended.head_seq, appended.head_hash)
