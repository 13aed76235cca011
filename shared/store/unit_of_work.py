"""A MongoDB transaction that carries its events: state change and outbox in one atomic write.

    result = await uow.run(lambda tx: create_demand(tx, command))

Inside the work function, `tx.session` goes on every read and write, and `tx.emit(event)`
queues an event; the events are inserted into the outbox in the same transaction, so a state
change is never stored without its events, nor an event without its state change. A
consumer starts with `await tx.claim_event(consumer, event_id)`: the unique record commits
with the effect, and a duplicate delivery raises `AlreadyProcessed` and changes nothing.

Transient conflicts (a concurrent transaction wrote the same document) are retried with
jittered backoff; the work function must therefore be safe to run again from the start.
"""

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from shared.clock import utcnow
from shared.events.envelope import CloudEvent
from shared.store.mongo import Database, Document, store_busy
from shared.store.outbox import OUTBOX_COLLECTION, outbox_document

PROCESSED_COLLECTION = "processed_events"
MAX_ATTEMPTS = 12
MAX_COMMIT_ATTEMPTS = 4


class AlreadyProcessed(Exception):
    """This consumer has already applied this event: a redelivery, to be acked and ignored."""


class RetryTransaction(Exception):
    """Raise inside a work function when a conditional write found the state moved under it."""


class CommitOutcomeUnknown(Exception):
    """The commit may or may not have landed; the work must not be run again blindly."""


class TransactionConflict(Exception):
    """Concurrent transactions kept conflicting; the caller may retry later."""


class Tx:
    def __init__(self, db: Database, session: AsyncClientSession) -> None:
        self.db = db
        self.session = session
        self.events: list[CloudEvent] = []

    def emit(self, *events: CloudEvent) -> None:
        self.events.extend(events)

    async def claim_event(self, consumer: str, event_id: str) -> None:
        """Record that `consumer` applies `event_id`; raises AlreadyProcessed on a duplicate."""
        try:
            await self.db[PROCESSED_COLLECTION].insert_one(
                {
                    "_id": f"{consumer}:{event_id}",
                    "consumer": consumer,
                    "event_id": event_id,
                    "at": utcnow(),
                },
                session=self.session,
            )
        except DuplicateKeyError:
            raise AlreadyProcessed(f"{consumer} already applied {event_id}") from None


def _is_transient(error: Exception) -> bool:
    if isinstance(error, RetryTransaction | ConnectionFailure):
        return True
    if isinstance(error, OperationFailure):
        if error.has_error_label("TransientTransactionError"):
            return True
        if error.code == 112:  # WriteConflict
            return True
        # The embedded stand-in reports commit conflicts without a code or label.
        return "write conflict" in str(error).lower()
    return False


async def _commit(session: AsyncClientSession) -> None:
    """Commit; when the outcome is unknown (a network error during commit), retry the commit
    itself, never the work: re-running the work after a commit that did land would apply it
    twice (a client would be told its own create was a conflict)."""
    for attempt in range(MAX_COMMIT_ATTEMPTS):
        try:
            await session.commit_transaction()
            return
        except (ConnectionFailure, OperationFailure) as error:
            if not error.has_error_label("UnknownTransactionCommitResult"):
                raise
            if attempt == MAX_COMMIT_ATTEMPTS - 1:
                raise CommitOutcomeUnknown(str(error)) from error
            await asyncio.sleep(0.05 * 2**attempt)


def _discard_server_session(session: AsyncClientSession) -> None:
    """Never return a failed transaction's server session to the pool. After a failed commit
    the driver may not abort, and the embedded stand-in then keeps the transaction open under
    that session id: the next transaction to reuse the id would carry its writes along."""
    server_session = getattr(session, "_server_session", None)
    if server_session is not None:
        server_session.mark_dirty()


class UnitOfWork:
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        *,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.db = db
        self._on_commit = on_commit

    async def run[T](self, work: Callable[[Tx], Awaitable[T]]) -> T:
        for attempt in range(MAX_ATTEMPTS):
            try:
                result, emitted = await self._attempt(work)
            except AlreadyProcessed:
                raise
            except Exception as error:
                if store_busy(error):
                    # The store already made this command wait its bounded time: say busy
                    # now rather than queue up again behind the same transaction.
                    raise TransactionConflict(str(error)) from error
                if not _is_transient(error) or attempt == MAX_ATTEMPTS - 1:
                    if _is_transient(error):
                        raise TransactionConflict(str(error)) from error
                    raise
                await asyncio.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 7)))
                continue
            if emitted and self._on_commit is not None:
                self._on_commit()
            return result
        raise AssertionError("unreachable")

    async def _attempt[T](self, work: Callable[[Tx], Awaitable[T]]) -> tuple[T, bool]:
        async with self.client.start_session() as session:
            try:
                await session.start_transaction()
                tx = Tx(self.db, session)
                result = await work(tx)
                if tx.events:
                    await self.db[OUTBOX_COLLECTION].insert_many(
                        [outbox_document(event) for event in tx.events], session=session
                    )
            except BaseException:
                _discard_server_session(session)
                if session.in_transaction:
                    with contextlib.suppress(Exception):
                        await session.abort_transaction()
                raise
            try:
                await _commit(session)
            except BaseException:
                _discard_server_session(session)
                raise
            return result, bool(tx.events)

    async def run_once(
        self, consumer: str, event: CloudEvent, work: Callable[[Tx], Awaitable[Any]]
    ) -> bool:
        """Apply an event's effect exactly once per consumer; False when it was a duplicate."""

        async def guarded(tx: Tx) -> None:
            await tx.claim_event(consumer, event.id)
            await work(tx)

        try:
            await self.run(guarded)
        except AlreadyProcessed:
            return False
        return True
