"""Audit's handlers: record every event once, in order."""

import asyncio

import structlog

from services.audit.adapters import log_store
from shared.events.envelope import CloudEvent
from shared.store.unit_of_work import Tx, UnitOfWork

_log = structlog.get_logger("whistle.audit")


class EventRecorder:
    def __init__(self, uow: UnitOfWork) -> None:
        self._uow = uow
        # One append at a time in this process; replicas are serialised by the head update.
        self._lock = asyncio.Lock()

    async def record(self, event: CloudEvent) -> None:
        async def append(tx: Tx) -> None:
            await log_store.append(tx, event.wire())

        async with self._lock:
            try:
                await self._uow.run(append)
            except log_store.Duplicate:
                _log.info("duplicate_event_ignored")
