"""Audit's one event handler: record every event once, in its partition, in arrival order.

Group commit: the consumer works on up to `prefetch` messages at once; while one round of
appends runs, the events that arrive queue up and go into the next round together. A round
places each event in its partition (`domain/partitions.py`) and appends each partition's
events in one transaction of its own, the partitions in parallel. Each message is acked only
after the transaction holding its event has committed, so a crash loses nothing (the broker
redelivers, and the event id makes the second append a no-op).

The event is stored as the producer sent it (the message body's JSON, not a re-serialised
model), so the hash covers exactly what went over the wire.

Arrival order is the broker's delivery order (the delivery tag). Concurrent handlers can
reach the recorder in a slightly different order, so the recorder takes deliveries by tag
and waits briefly for a missing one; a delivery that never comes (a poison message rejected
before it got here) is given up on after `gap_wait_s`. Other replicas append to the same
partitions concurrently; a partition's head serialises them (see `adapters/log_store.py`).

Retries: a conflict on a partition's head is retried by the unit of work (`RETRY`, the one
retry policy); when conflicts outlast it the message fails and goes back to its queue (the
consumer's message-level retry). The recorder retries nothing itself, except placing a batch
again when a route it would fix was fixed otherwise meanwhile (`Misrouted`, not a conflict).
"""

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from services.audit.adapters import log_store, metrics
from services.audit.adapters.log_store import Appended, Misrouted
from services.audit.domain.partitions import PartitionBy, Routed, place, route_keys
from services.audit.domain.wire import event_time
from services.audit.handlers.timers import Checkpointing
from shared.broker.consumer import Incoming
from shared.events.envelope import CloudEvent
from shared.store.unit_of_work import Tx, UnitOfWork

_log = structlog.get_logger("whistle.audit")

MAX_BATCH = 100
# Placing a batch again after a route it would fix was fixed otherwise meanwhile.
MAX_PLACINGS = 3


class Log(Protocol):
    """Where the recorder puts events: routes to read, partitions to append to."""

    async def routes(self, keys: Sequence[str]) -> Mapping[str, str]: ...

    async def append(
        self, partition: str, events: list[dict[str, Any]], fixes: Mapping[str, str]
    ) -> Appended: ...


class MongoLog:
    """The log in MongoDB, each append in a unit of work (which retries its conflicts)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow

    async def routes(self, keys: Sequence[str]) -> Mapping[str, str]:
        return await log_store.routes(self._uow.db, keys)

    async def append(
        self, partition: str, events: list[dict[str, Any]], fixes: Mapping[str, str]
    ) -> Appended:
        async def work(tx: Tx) -> Appended:
            return await log_store.append(tx, partition, events, fixes)

        return await self._uow.run(work)


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


_UNSETTLED: Any = object()


@dataclass
class _Waiting:
    """An event waiting for its round. A round settles each event (its seq, None for a
    duplicate, or the error) and tells their handlers only once the round is over: the next
    round then starts before any of them runs on to ack its message."""

    tag: int | None
    event: dict[str, Any]
    done: asyncio.Future[int | None]
    outcome: Any = _UNSETTLED

    @property
    def settled(self) -> bool:
        return self.outcome is not _UNSETTLED or self.done.done()

    def settle(self, outcome: int | BaseException | None) -> None:
        if not self.settled:
            self.outcome = outcome

    def tell(self) -> None:
        if self.outcome is _UNSETTLED or self.done.done():
            return
        if isinstance(self.outcome, BaseException):
            self.done.set_exception(self.outcome)
        else:
            self.done.set_result(self.outcome)


class EventRecorder:
    def __init__(
        self,
        log: Log,
        checkpointing: Checkpointing | None = None,
        *,
        partition_by: PartitionBy = PartitionBy.DISTRICT,
        gap_wait_s: float = 0.25,
    ) -> None:
        self._log = log
        self._checkpointing = checkpointing
        self._by = partition_by
        self._gap_wait_s = gap_wait_s
        self._waiting: list[_Waiting] = []
        self._arrived = asyncio.Event()
        # Routes never move once fixed, so this process keeps the ones it has seen.
        self._routes: dict[str, str] = {}
        # Tags start at 1 on every new channel.
        self._next_tag = 1
        # One round of appends at a time in this process (its partitions in parallel), run
        # by one task while events wait; replicas are serialised per partition by the
        # conditional head update.
        self._appender: asyncio.Task[None] | None = None

    async def record(self, event: Incoming[Any]) -> None:
        """Store the event (once), as its producer sent it; returns when its transaction has
        committed."""
        item = _Waiting(
            event.delivery_tag,
            verbatim(event.envelope, event.body),
            asyncio.get_running_loop().create_future(),
        )
        self._waiting.append(item)
        self._arrived.set()
        if self._appender is None or self._appender.done():
            self._appender = asyncio.create_task(self._append_while_waiting(), name="audit-append")
        if await item.done is None:
            _log.info("duplicate_event_ignored")

    async def _append_while_waiting(self) -> None:
        """Rounds back to back while events wait. The next round's first command reaches the
        store as soon as the last round commits, while the last round's handlers ack their
        messages (when the round was run by one of those handlers, the store sat idle behind
        all of them: a third of the ingest's time)."""
        while self._waiting:
            batch = await self._next_batch()
            try:
                await self._append(batch)
            except Exception as error:
                # Placing failed (the store unreachable, say): each event's message fails, and
                # the consumer retries it as it retries any failure.
                failed = {id(item) for item in batch}
                self._waiting = [w for w in self._waiting if id(w) not in failed]
                for item in batch:
                    item.settle(error)
                    item.tell()

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

    async def _place(self, batch: list[_Waiting]) -> list[Routed]:
        """Each event's partition, in order: an event's routes count for the ones after it."""
        keys = [key for item in batch for key in route_keys(item.event)]
        unknown = [key for key in keys if key not in self._routes]
        if unknown:
            self._routes.update(await self._log.routes(unknown))
        known = dict(self._routes)
        placed = []
        for item in batch:
            routed = place(item.event, self._by, known)
            known.update(routed.fixes)
            placed.append(routed)
        return placed

    async def _append(self, batch: list[_Waiting]) -> None:
        taken = {id(w) for w in batch}
        self._waiting = [w for w in self._waiting if id(w) not in taken]
        tags = [w.tag for w in batch if w.tag is not None]
        if tags:
            self._next_tag = max(tags) + 1
        whole = list(batch)
        try:
            for placing in range(1, MAX_PLACINGS + 1):
                placed = await self._place(batch)
                by_partition: dict[str, list[tuple[_Waiting, Routed]]] = defaultdict(list)
                for item, routed in zip(batch, placed, strict=True):
                    by_partition[routed.partition].append((item, routed))
                # Started eagerly: each sends its first command now, not after every task
                # already waiting on the loop (the last round's handlers, acking) has run.
                loop = asyncio.get_running_loop()
                appends = [
                    asyncio.Task(self._append_partition(p, items), loop=loop, eager_start=True)
                    for p, items in by_partition.items()
                ]
                results = await asyncio.gather(*appends, return_exceptions=True)
                misrouted = [r for r in results if isinstance(r, Misrouted)]
                if not misrouted or placing == MAX_PLACINGS:
                    break
                for error in misrouted:
                    for key in error.keys:
                        self._routes.pop(key, None)
                batch = [w for w in batch if not w.settled]
                _log.info("events_placed_again", keys=[k for e in misrouted for k in e.keys])
        except BaseException:
            # Cancelled mid-transaction (shutdown): the rest wait for the next appender.
            for item in whole:
                item.tell()
            self._waiting[:0] = [w for w in batch if not w.settled]
            raise
        for item in batch:  # still misrouted after every placing: back to the broker
            item.settle(Misrouted(k for e in misrouted for k in e.keys))
        for item in whole:
            item.tell()
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result
        if self._checkpointing is not None:
            stored = sum(r for r in results if isinstance(r, int))
            await self._checkpointing.after_append(stored)

    async def _append_partition(self, partition: str, items: list[tuple[_Waiting, Routed]]) -> int:
        """Append one partition's events; returns how many were new. A failure fails the
        events (their messages go back to the broker); a batch that fails is tried again
        event by event, so one event that cannot be stored does not take its neighbours."""
        fixes: dict[str, str] = {}
        for _, routed in items:
            for key, value in routed.fixes.items():
                fixes.setdefault(key, value)
        events = [item.event for item, _ in items]
        try:
            appended = await self._log.append(partition, events, fixes)
        except Misrouted:
            raise
        except Exception as error:
            if len(items) == 1:
                items[0][0].settle(error)
                return 0
            _log.warning(
                "batch_append_failed_retrying_singly",
                partition=partition,
                size=len(items),
                error=str(error),
            )
            stored = 0
            for pair in items:
                stored += await self._append_partition(partition, [pair])
            return stored
        for (item, _), seq in zip(items, appended.seqs, strict=True):
            item.settle(seq)
        for key, value in fixes.items():
            self._routes.setdefault(key, value)
        stored = sum(seq is not None for seq in appended.seqs)
        metrics.BATCH_SIZE.observe(len(items))
        metrics.EVENTS_APPENDED.inc(stored)
        metrics.DUPLICATES_IGNORED.inc(len(items) - stored)
        metrics.HEAD_SEQ.labels(partition).set(appended.head_seq)
        return stored
