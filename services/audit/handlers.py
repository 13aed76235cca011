"""Audit's handlers: record every event once, in arrival order; pin the head hash in the logs.

Group commit: the consumer works on up to `prefetch` messages at once; while one append
transaction runs, the events that arrive queue up and go into the next transaction together.
Each message is acked only after the transaction holding its event has committed, so a crash
loses nothing (the broker redelivers, and the event id makes the second append a no-op).

The event is stored as the producer sent it (the message body's JSON, not a re-serialised
model), so the hash covers exactly what went over the wire.

Arrival order is the broker's delivery order (the delivery tag). Concurrent handlers can
reach the recorder in a slightly different order, so the recorder appends deliveries by tag
and waits briefly for a missing one; a delivery that never comes (a poison message rejected
before it got here) is given up on after `gap_wait_s`.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from services.audit import metrics
from services.audit.adapters import log_store
from services.audit.checkpoints import CheckpointWriter
from services.audit.domain.demand_state import event_time
from shared.events.envelope import CloudEvent
from shared.store.unit_of_work import TransactionConflict, Tx, UnitOfWork

_log = structlog.get_logger("whistle.audit")

MAX_BATCH = 100
# Rounds of the unit of work's own retries before the batch's messages go back to the broker
# (which would cost their place in the order).
CONFLICT_ROUNDS = 5


@dataclass(frozen=True)
class Delivery:
    """The message being handled, as the broker delivered it."""

    tag: int | None = None
    body: bytes | None = None


CurrentDelivery = Callable[[], Delivery]
Append = Callable[[list[dict[str, Any]]], Awaitable[log_store.Appended]]


def appender(uow: UnitOfWork) -> Append:
    """Append wire events to the log in one transaction, riding out a run of conflicts."""

    async def append(events: list[dict[str, Any]]) -> log_store.Appended:
        async def work(tx: Tx) -> log_store.Appended:
            return await log_store.append(tx, events)

        for round_ in range(1, CONFLICT_ROUNDS + 1):
            try:
                return await uow.run(work)
            except TransactionConflict:
                if round_ == CONFLICT_ROUNDS:
                    raise
                _log.info("append_conflicts_persist", round=round_)
                await asyncio.sleep(0.05 * round_)
        raise AssertionError("unreachable")

    return append


@dataclass
class HeadPinning:
    """Pin the head (seq, hash) every `every` events or `interval_s` seconds, whichever first.

    The head is logged, and signed and appended to the checkpoint file when a writer is given
    (see `checkpoints`): rewriting history would change a pinned hash. Pinned after commit,
    so a pinned head is always a committed one.
    """

    every: int = 1000
    interval_s: float = 60.0
    checkpoints: CheckpointWriter | None = None
    _last_seq: int = 0
    _last_at: float = field(default_factory=time.monotonic)

    def after_append(self, head_seq: int, head_hash: str) -> None:
        crossed = head_seq // self.every > self._last_seq // self.every
        overdue = time.monotonic() - self._last_at >= self.interval_s
        if head_seq > self._last_seq and (crossed or overdue):
            _log.info("log_head", seq=head_seq, hash=head_hash)
            if self.checkpoints is not None:
                try:
                    self.checkpoints.write(head_seq, head_hash)
                except OSError as error:
                    # The events are committed; only this pin is missing (the next one covers
                    # them). Loud, so an operator sees the file is not being written.
                    _log.error("checkpoint_not_written", seq=head_seq, error=str(error))
            self._last_seq = head_seq
            self._last_at = time.monotonic()


def verbatim(event: CloudEvent, body: bytes | None) -> dict[str, Any]:
    """The event as its producer wrote it; the parsed model's JSON when the body is not at hand."""
    if body is not None:
        try:
            sent = json.loads(body)
        except ValueError:
            sent = None
        if isinstance(sent, dict) and sent.get("id") == event.id and _iso_time(sent):
            return sent
    return event.wire()


def _iso_time(sent: dict[str, Any]) -> bool:
    # The model also takes e.g. epoch seconds; the log's readers parse RFC 3339 only.
    try:
        event_time(sent)
    except (TypeError, ValueError):
        return False
    return True


@dataclass
class _Waiting:
    tag: int | None
    event: dict[str, Any]
    done: asyncio.Future[int | None]


class EventRecorder:
    def __init__(
        self,
        append: Append,
        pinning: HeadPinning | None = None,
        *,
        delivery: CurrentDelivery = Delivery,
        gap_wait_s: float = 0.25,
    ) -> None:
        self._append_events = append
        self._pinning = pinning or HeadPinning()
        self._delivery = delivery
        self._gap_wait_s = gap_wait_s
        self._waiting: list[_Waiting] = []
        self._arrived = asyncio.Event()
        # Tags start at 1 on every new channel.
        self._next_tag = 1
        # One append transaction at a time in this process; replicas are serialised by the
        # conditional head update.
        self._lock = asyncio.Lock()

    async def record(self, event: CloudEvent) -> None:
        """Store the event (once); returns when its transaction has committed."""
        delivery = self._delivery()
        item = _Waiting(
            delivery.tag, verbatim(event, delivery.body), asyncio.get_running_loop().create_future()
        )
        self._waiting.append(item)
        self._arrived.set()
        while not item.done.done():
            async with self._lock:
                if not item.done.done():
                    await self._append(await self._next_batch())
        if item.done.result() is None:
            _log.info("duplicate_event_ignored")

    async def _next_batch(self) -> list[_Waiting]:
        deadline = time.monotonic() + self._gap_wait_s
        while not (batch := self._in_delivery_order()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                # The delivery we wait for never reached us: carry on from the next one.
                self._next_tag = min(w.tag for w in self._waiting if w.tag is not None)
                return self._in_delivery_order()
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                continue
        return batch

    def _in_delivery_order(self) -> list[_Waiting]:
        """The waiting events that continue the delivery order without a hole, in order."""
        untagged = [w for w in self._waiting if w.tag is None]
        if untagged:
            return untagged[:MAX_BATCH]
        tagged = sorted(self._waiting, key=lambda w: w.tag or 0)
        if tagged and (tagged[0].tag or 0) < self._next_tag:
            # A new channel after a reconnect numbers its deliveries from 1 again (or this is
            # one we gave up waiting for: then the wait below for tag 1 is short and once).
            self._next_tag = 1
        run: list[_Waiting] = []
        for item in tagged[:MAX_BATCH]:
            if item.tag != self._next_tag + len(run):
                break
            run.append(item)
        return run

    async def _append(self, batch: list[_Waiting]) -> None:
        taken = {id(w) for w in batch}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        tags = [w.tag for w in batch if w.tag is not None]
        if tags:
            self._next_tag = max(tags) + 1
        try:
            appended = await self._append_events([w.event for w in batch])
        except Exception as error:
            if len(batch) == 1:
                if not batch[0].done.done():
                    batch[0].done.set_exception(error)
                return
            # One event that cannot be stored must not take its neighbours with it: try
            # them one by one, in order; only the ones that fail alone go back to the broker.
            _log.warning("batch_append_failed_retrying_singly", size=len(batch), error=str(error))
            for index, item in enumerate(batch):
                try:
                    await self._append([item])
                except BaseException:
                    self._waiting[:0] = [w for w in batch[index + 1 :] if not w.done.done()]
                    raise
            return
        except BaseException:
            # Cancelled mid-transaction (shutdown): the rest wait for the next appender.
            self._waiting[:0] = [w for w in batch if not w.done.done()]
            raise
        for item, seq in zip(batch, appended.seqs, strict=True):
            if not item.done.done():
                item.done.set_result(seq)
        stored = sum(seq is not None for seq in appended.seqs)
        metrics.BATCH_SIZE.observe(len(batch))
        metrics.EVENTS_APPENDED.inc(stored)
        metrics.DUPLICATES_IGNORED.inc(len(batch) - stored)
        metrics.HEAD_SEQ.set(appended.head_seq)
        self._pinning.after_append(appended.head_seq, appended.head_hash)
