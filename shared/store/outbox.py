"""The transactional outbox: pending events stored with the state change, then relayed.

Each outbox document moves pending -> sent. The relay holds a lease so that two replicas
never both publish; it publishes a batch in order with publisher confirms (persistent,
mandatory, `on_return_raises`), marks the confirmed ones sent, and while the broker is away
it keeps retrying with backoff: an outage delays events, it never drops them. A crash between
confirm and mark republishes; consumers are idempotent by event id, so that is harmless.

A document whose event no longer validates (written by an older version, or edited by hand)
cannot be published: it is set aside (`status: invalid`, with the reason), logged and counted
in `whistle_outbox_set_aside_total`, and the events behind it go on.
"""

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import structlog
from pydantic import ValidationError

from shared.clock import utcnow
from shared.events.envelope import CloudEvent
from shared.metrics import MESSAGES_PUBLISHED, OUTBOX_BACKLOG, OUTBOX_SET_ASIDE
from shared.store.lease import Lease
from shared.store.mongo import Database, Document

OUTBOX_COLLECTION = "outbox"
SENT_RETENTION = timedelta(days=7)

_log = structlog.get_logger("whistle.outbox")
_sequence = itertools.count()

Publish = Callable[[CloudEvent], Awaitable[Any]]


def outbox_document(event: CloudEvent) -> Document:
    # `order` keeps the emit order within a process, and creation order across processes.
    return {
        "_id": event.id,
        "order": (time.time_ns() // 1000) * 1000 + next(_sequence) % 1000,
        "status": "pending",
        "type": event.type,
        "event": event.wire(),
        "created_at": utcnow(),
        "attempts": 0,
    }


async def ensure_outbox_indexes(db: Database) -> None:
    await db[OUTBOX_COLLECTION].create_index([("status", 1), ("order", 1)])
    await db[OUTBOX_COLLECTION].create_index(
        "sent_at", expireAfterSeconds=int(SENT_RETENTION.total_seconds())
    )


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publish: Publish,
        *,
        service: str,
        owner: str,
        lease_ttl_s: float,
        poll_s: float,
        batch_size: int = 100,
    ) -> None:
        self._db = db
        self._collection = db[OUTBOX_COLLECTION]
        self._publish = publish
        self._service = service
        self._lease = Lease(db, f"outbox-relay:{service}", owner, lease_ttl_s)
        self._lease_ttl_s = lease_ttl_s
        self._poll_s = poll_s
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._failures = 0
        self.last_error: str | None = None

    def wake(self) -> None:
        """Called after a commit that emitted events, so they go out without waiting a poll."""
        self._wake.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not await self._lease.acquire():
                    await self._sleep(self._lease_ttl_s / 3)
                    continue
                published = await self.relay_batch()
                self._failures = 0
                self.last_error = None
                if published < self._batch_size:
                    await self._sleep(self._poll_s)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self._failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                backoff = min(5.0, 0.2 * 2 ** min(self._failures, 5)) * random.uniform(0.5, 1.0)
                _log.warning(
                    "outbox_relay_retry", error=self.last_error, backoff_s=round(backoff, 2)
                )
                await self._sleep(backoff)
        try:
            await self._lease.release()
        except Exception as error:  # shutting down: the lease lapses by itself
            _log.info("outbox_lease_not_released", error=str(error))

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def relay_batch(self) -> int:
        pending = (
            await self._collection.find({"status": "pending"})
            .sort("order", 1)
            .to_list(self._batch_size)
        )
        OUTBOX_BACKLOG.labels(self._service).set(len(pending))
        if not pending:
            return 0
        events = await self._publishable(pending)
        if not events:
            return 0
        # Publishes are pipelined (aio-pika sends frames in call order) and confirmed together.
        # A batch is bounded well inside the lease: a publish whose confirm never comes (a
        # half-dead connection) must not hold the relay while the lease lapses to a replica.
        publishes = [asyncio.ensure_future(self._publish(event)) for event in events]
        _, unfinished = await asyncio.wait(publishes, timeout=self._lease_ttl_s / 2)
        for publish in unfinished:
            publish.cancel()
        await asyncio.gather(*unfinished, return_exceptions=True)
        confirmed: list[str] = []
        first_error: BaseException | None = None
        for event, publish in zip(events, publishes, strict=True):
            error = (
                TimeoutError(f"no confirm for {event.id} in {self._lease_ttl_s / 2:.1f}s")
                if publish in unfinished
                else publish.exception()
            )
            if error is not None:
                first_error = first_error or error
                continue
            confirmed.append(event.id)
            MESSAGES_PUBLISHED.labels(self._service, event.type).inc()
        if confirmed:
            await self._collection.update_many(
                {"_id": {"$in": confirmed}},
                {"$set": {"status": "sent", "sent_at": utcnow()}, "$inc": {"attempts": 1}},
            )
        if first_error is not None:
            raise first_error
        return len(confirmed)

    async def _publishable(self, pending: list[Document]) -> list[CloudEvent]:
        """The batch's events; a document that does not validate is set aside, not retried."""
        events: list[CloudEvent] = []
        for doc in pending:
            try:
                events.append(CloudEvent.model_validate(doc.get("event")))
            except ValidationError as error:
                reason = str(error)[:1000]
                await self._collection.update_one(
                    {"_id": doc["_id"], "status": "pending"},
                    {"$set": {"status": "invalid", "set_aside_at": utcnow(), "error": reason}},
                )
                OUTBOX_SET_ASIDE.labels(self._service).inc()
                _log.error("outbox_document_set_aside", outbox_id=str(doc["_id"]), error=reason)
        return events

    async def backlog(self) -> int:
        return await self._collection.count_documents({"status": "pending"})
