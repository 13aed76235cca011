"""The delivery worker: webhooks and emails, off the consuming path, a bounded number at once.

Consumers only store pending deliveries. This worker takes due ones with a per-delivery
lease (two notify replicas never both send one), runs at most `delivery_concurrency`
attempts at a time and at most `delivery_per_target` to one receiver, and records each
attempt: sent -> `notification.sent`; failed -> tried again after an exponential, jittered
backoff stored on the delivery; out of attempts or a refused target -> a dead letter and
`notification.failed`. A receiver that hangs holds its own share of slots until its
timeout; every other delivery goes on.
"""

import asyncio
import contextlib
from collections import Counter
from datetime import timedelta

import structlog

from services.notify.adapters import deliveries
from services.notify.adapters.channels import Channels
from services.notify.adapters.metrics import DELIVERY_ATTEMPTS
from services.notify.adapters.webhook import DeliveryFailed
from services.notify.domain.refusals import RefusedTarget
from services.notify.handlers.deliveries import Retries, record_attempt
from shared.clock import utcnow
from shared.logging import message_context
from shared.store.mongo import Document
from shared.store.unit_of_work import UnitOfWork

_log = structlog.get_logger("whistle.notify.delivery")


class DeliveryWorker:
    def __init__(
        self,
        uow: UnitOfWork,
        *,
        owner: str,
        channels: Channels,
        concurrency: int,
        per_target: int,
        poll_s: float,
        lease_s: float,
        retries: Retries,
    ) -> None:
        self._uow = uow
        self._owner = owner
        self._channels = channels
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._lease = timedelta(seconds=lease_s)
        self._retries = retries
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._per_target_limit = per_target
        self._in_flight: dict[asyncio.Task[None], str] = {}
        self._per_target: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """New deliveries were committed: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="notify-deliveries")

    async def stop(self, grace_s: float = 3.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._in_flight:
            # Unfinished attempts keep their lease until it lapses, then are tried again.
            _, pending = await asyncio.wait(list(self._in_flight), timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await self._dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("delivery_poll_failed", error=f"{type(error).__name__}: {error}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._poll_s)

    async def _dispatch_due(self) -> None:
        free = self._concurrency - len(self._in_flight)
        if free <= 0:
            return
        # Look further than the free slots: some due deliveries may be to a target that
        # already has its share in flight and must wait.
        for delivery_id, target in await deliveries.due(self._uow.db, free * 4):
            if self._stopping.is_set() or len(self._in_flight) >= self._concurrency:
                return
            if self._per_target[target] >= self._per_target_limit:
                continue  # a hanging receiver holds its own share of slots, not everyone's
            await self._slots.acquire()
            try:
                taken = await deliveries.take(
                    self._uow.db, delivery_id, self._owner, utcnow() + self._lease
                )
            except BaseException:
                self._slots.release()
                raise
            if taken is None:
                self._slots.release()
                continue
            task = asyncio.create_task(self._attempt(taken), name=f"deliver-{delivery_id}")
            self._in_flight[task] = target
            self._per_target[target] += 1
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        target = self._in_flight.pop(task)
        self._per_target[target] -= 1
        if self._per_target[target] <= 0:
            del self._per_target[target]
        self._slots.release()
        self._wake.set()  # a slot is free: there may be more due

    async def _attempt(self, delivery: Document) -> None:
        with message_context(
            delivery_id=delivery["_id"],
            channel=delivery["channel"],
            correlationid=delivery.get("correlationid"),
            causationid=delivery.get("cause_event_id"),
        ):
            started = utcnow()
            error: str | None = None
            permanent = False
            status: int | None = None
            try:
                status = await self._channels.send(delivery)
            except asyncio.CancelledError:
                # Shutting down mid-attempt: hand it back at once rather than when the
                # lease lapses (the receiver may see it twice; it has the delivery id).
                with contextlib.suppress(Exception):
                    await asyncio.shield(
                        deliveries.release(self._uow.db, delivery["_id"], self._owner)
                    )
                raise
            except RefusedTarget as refused:
                error, permanent = f"refused: {refused}", True
            except DeliveryFailed as failed:
                error = str(failed)
            except Exception as unexpected:
                error = f"{type(unexpected).__name__}: {unexpected}"
                _log.warning("delivery_error", error=error, exc_info=unexpected)
            attempt = {
                "at": started,
                "by": self._owner,
                "ok": error is None,
                "status": status,
                "error": error,
                "duration_ms": int((utcnow() - started).total_seconds() * 1000),
            }
            try:
                state = await self._uow.run(
                    lambda tx: record_attempt(
                        tx,
                        delivery,
                        attempt,
                        permanent=permanent,
                        worker=self._owner,
                        retries=self._retries,
                    )
                )
            except Exception as failure:
                # The lease lapses and the delivery is tried again.
                _log.warning("delivery_record_failed", error=str(failure))
                return
            attempts = delivery["attempts"] + 1
            if state is not None:
                outcome = "retry" if state == "pending" else state
                DELIVERY_ATTEMPTS.labels(delivery["channel"], outcome).inc()
            if state == "sent":
                _log.info("delivery_sent", attempts=attempts)
            elif state == "dead":
                _log.warning("delivery_dead_lettered", attempts=attempts, error=error)
            elif state == "pending":
                _log.info("delivery_retry_scheduled", attempts=attempts, error=error)
