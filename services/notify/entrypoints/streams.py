"""What wakes the SSE streams of one process: one watcher, not a query per stream per second.

Streams register the inbox they follow. One task per process looks at the inbox counters of
every followed inbox in a single query, when a local commit rang (at once) or every
`poll_s` (another notify replica may have written), and wakes the streams of the inboxes
whose counter moved. A stream queries its inbox only when woken.

It also holds the limits: at most `per_principal` open streams per principal (the next is
429 `too-many-streams`) and `max_streams` in the process (the next is 503 `busy`); the
refusals are mapped to those problems in `entrypoints/problems.py`.
"""

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

import structlog

from services.notify.adapters import inbox, metrics
from services.notify.domain.refusals import StreamsFull, TooManyStreams
from shared.store.mongo import Database

_log = structlog.get_logger("whistle.notify.streams")


@dataclass(eq=False)
class Subscription:
    owner: str
    principal: str
    released: bool = False
    _moved: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, timeout_s: float) -> bool:
        """Until the inbox may have something new (True), or `timeout_s` passed (False)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._moved.wait(), timeout=timeout_s)
        moved = self._moved.is_set()
        self._moved.clear()
        return moved


class InboxWatch:
    def __init__(
        self, db: Database, *, poll_s: float, max_streams: int, per_principal: int
    ) -> None:
        self._db = db
        self._poll_s = poll_s
        self.max_streams = max_streams
        self.per_principal = per_principal
        self._rang = asyncio.Event()
        self._subscriptions: dict[str, set[Subscription]] = {}
        self._seen: dict[str, int] = {}
        self._by_principal: Counter[str] = Counter()
        self._open = 0
        self.polls = 0  # inbox-counter queries made (one per round, whatever the streams)

    def ring(self) -> None:
        """A local commit created notifications: look now rather than at the next poll."""
        self._rang.set()

    @property
    def open_streams(self) -> int:
        return self._open

    def subscribe(self, principal: str, owner: str) -> Subscription:
        """Take a stream slot (or refuse: over either limit); `release` gives it back."""
        self.admit(principal)
        subscription = Subscription(owner, principal)
        self._open += 1
        metrics.STREAMS_OPEN.inc()
        self._by_principal[principal] += 1
        self._subscriptions.setdefault(owner, set()).add(subscription)
        return subscription

    def release(self, subscription: Subscription) -> None:
        """Give the slot back; idempotent (the stream's end and its cleanup both call it)."""
        if subscription.released:
            return
        subscription.released = True
        self._open -= 1
        metrics.STREAMS_OPEN.dec()
        principal = subscription.principal
        self._by_principal[principal] -= 1
        if self._by_principal[principal] <= 0:
            del self._by_principal[principal]
        followers = self._subscriptions.get(subscription.owner)
        if followers is not None:
            followers.discard(subscription)
            if not followers:
                del self._subscriptions[subscription.owner]
                self._seen.pop(subscription.owner, None)

    def admit(self, principal: str) -> None:
        """Refuse a stream over either limit (checked before the response starts)."""
        if self._by_principal[principal] >= self.per_principal:
            raise TooManyStreams(self.per_principal)
        if self._open >= self.max_streams:
            raise StreamsFull(self.max_streams)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._rang.wait(), timeout=self._poll_s)
            self._rang.clear()
            if not self._subscriptions:
                continue
            try:
                await self._look()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("inbox_watch_failed", error=f"{type(error).__name__}: {error}")

    async def _look(self) -> None:
        owners = list(self._subscriptions)
        self.polls += 1
        metrics.STREAM_WATCH_ROUNDS.inc()
        counters = await inbox.counters(self._db, owners)
        for owner in owners:
            seq = counters.get(owner, 0)
            if owner in self._seen and self._seen[owner] >= seq:
                continue
            self._seen[owner] = seq
            for subscription in self._subscriptions.get(owner, ()):
                subscription._moved.set()
