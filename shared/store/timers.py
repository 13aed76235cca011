"""Stored timers: escalation at `fill_by`, no-show at `ends_at`, shift reminders.

A timer is a document with a key chosen by the caller (so scheduling twice is harmless), a
kind, a due time and a payload. Schedule and cancel inside the transaction of the state
change that implies them. The `TimerWheel` polls for due timers, takes each with a short lease
(so two replicas don't both try it) and fires it inside a transaction that also marks it
fired: the effect happens once, a timer due while the service was down fires when it comes
back, and a firing that crashed is retried when its lease lapses.

A handler that keeps failing is not retried forever: each failure is counted on the timer and
retried after a backoff; after `max_attempts` the timer is set to `failed` (with its last
error), logged and counted in `whistle_timers_failed_total`, for an operator to look at. A
database outage is not the timer's fault and is not counted.
"""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from pymongo import ReturnDocument

from shared.clock import utcnow
from shared.metrics import TIMERS_FAILED, TIMERS_FIRED
from shared.store.mongo import Database, Document, store_unreachable
from shared.store.unit_of_work import Cause, Tx, UnitOfWork

TIMERS_COLLECTION = "timers"

_log = structlog.get_logger("whistle.timers")

TimerHandler = Callable[[Tx, Document], Awaitable[None]]


async def ensure_timer_indexes(db: Database) -> None:
    await db[TIMERS_COLLECTION].create_index([("state", 1), ("due_at", 1)])


async def schedule(
    tx: Tx, key: str, kind: str, due_at: datetime, payload: Mapping[str, Any]
) -> None:
    """Schedule (or move) a pending timer; a fired or cancelled one is left as it is."""
    await tx.db[TIMERS_COLLECTION].update_one(
        {"_id": key},
        {
            "$set": {"kind": kind, "due_at": due_at, "payload": dict(payload)},
            "$setOnInsert": {"state": "pending", "lease_until": None, "created_at": utcnow()},
        },
        upsert=True,
        session=tx.session,
    )


async def cancel(tx: Tx, *keys: str) -> None:
    await tx.db[TIMERS_COLLECTION].update_many(
        {"_id": {"$in": list(keys)}, "state": "pending"},
        {"$set": {"state": "cancelled", "cancelled_at": utcnow()}},
        session=tx.session,
    )


class TimerWheel:
    def __init__(
        self,
        uow: UnitOfWork,
        handlers: Mapping[str, TimerHandler],
        *,
        service: str,
        owner: str,
        poll_s: float,
        lease_s: float = 30.0,
        batch_size: int = 50,
        max_attempts: int = 5,
        retry_base_s: float = 1.0,
    ) -> None:
        self._uow = uow
        self._collection = uow.db[TIMERS_COLLECTION]
        self._handlers = dict(handlers)
        self._service = service
        self._owner = owner
        self._poll_s = poll_s
        self._lease = timedelta(seconds=lease_s)
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._retry_base_s = retry_base_s
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                fired = await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                _log.warning("timer_poll_failed", error=f"{type(error).__name__}: {error}")
                fired = 0
            if fired == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=self._poll_s)

    async def fire_due(self) -> int:
        now = utcnow()
        due = (
            await self._collection.find(
                {
                    "state": "pending",
                    "due_at": {"$lte": now},
                    "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
                },
                {"_id": 1},
            )
            .sort("due_at", 1)
            .to_list(self._batch_size)
        )
        fired = 0
        for candidate in due:
            if self._stopping.is_set():
                break
            if await self._fire(candidate["_id"]):
                fired += 1
        return fired

    async def _fire(self, key: str) -> bool:
        now = utcnow()
        timer = await self._collection.find_one_and_update(
            {
                "_id": key,
                "state": "pending",
                "$or": [{"lease_until": None}, {"lease_until": {"$lt": now}}],
            },
            {"$set": {"lease_until": now + self._lease, "lease_owner": self._owner}},
            return_document=ReturnDocument.AFTER,
        )
        if timer is None:
            return False  # another replica took it
        handler = self._handlers.get(timer["kind"])
        if handler is None:
            _log.error("timer_kind_unknown", timer=key, kind=timer["kind"])
            return False

        async def fire(tx: Tx) -> bool:
            marked = await tx.db[TIMERS_COLLECTION].update_one(
                {"_id": key, "state": "pending", "lease_owner": self._owner},
                {"$set": {"state": "fired", "fired_at": utcnow()}},
                session=tx.session,
            )
            if marked.modified_count != 1:
                return False
            await handler(tx, timer)
            return True

        try:
            # Its events say the timer caused them (`timer:<id>`), the service acting.
            done = await self._uow.run(fire, cause=Cause.of_timer(self._service, str(key)))
        except Exception as error:
            if not store_unreachable(error):
                await self._failed(timer, error)
            else:
                _log.warning("timer_fire_deferred", timer=key, error=str(error)[:200])
            return False
        if done:
            TIMERS_FIRED.labels(self._service, timer["kind"]).inc()
            _log.info("timer_fired", timer=key, kind=timer["kind"])
        return done

    async def _failed(self, timer: Document, error: Exception) -> None:
        """Count a failed firing; retry it after a backoff, or give up after the last try."""
        key, kind = timer["_id"], timer["kind"]
        attempts = int(timer.get("attempts") or 0) + 1
        reason = f"{type(error).__name__}: {error}"[:500]
        if attempts >= self._max_attempts:
            await self._collection.update_one(
                {"_id": key, "state": "pending", "lease_owner": self._owner},
                {
                    "$set": {
                        "state": "failed",
                        "failed_at": utcnow(),
                        "attempts": attempts,
                        "last_error": reason,
                        "lease_until": None,
                    }
                },
            )
            TIMERS_FAILED.labels(self._service, kind).inc()
            _log.error("timer_given_up", timer=key, kind=kind, attempts=attempts, error=reason)
            return
        retry_in = self._retry_base_s * 2 ** (attempts - 1)
        await self._collection.update_one(
            {"_id": key, "state": "pending", "lease_owner": self._owner},
            {
                "$set": {
                    "attempts": attempts,
                    "last_error": reason,
                    "lease_until": utcnow() + timedelta(seconds=retry_in),
                }
            },
        )
        _log.warning(
            "timer_fire_failed",
            timer=key,
            kind=kind,
            attempts=attempts,
            retry_in_s=retry_in,
            error=reason,
        )
