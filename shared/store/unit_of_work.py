"""A MongoDB transaction that carries its events: state change and outbox in one atomic write.

    cause = Cause.of_request("dispatch", principal.sub)
    demand = await uow.run(lambda tx: publish_demand(tx, command), cause=cause)

Inside the work function, `tx.session` goes on every read and write, and

    tx.emit(DemandPublished(...), subject=demand.id)

builds the event's envelope (the one place envelopes are built: source, actor, causation and
correlation come from the `Cause` the unit of work runs under) and queues it; the events are
inserted into the outbox in the same transaction, so a state change is never stored without
its events, nor an event without its state change. A consumer runs `uow.run_once(consumer,
event, work)`: its cause is the consumed event, and the record of the event id commits with
the effect, so a duplicate delivery raises `AlreadyProcessed` inside and changes nothing.

Where retries live (one policy, `RETRY`, and it is here):
- this unit of work is the ONLY place work is run again: a transient conflict (a concurrent
  transaction wrote the same document, `RetryTransaction`, a dropped connection) is retried
  from the start with jittered exponential backoff, within `RETRY`'s bound, then answered
  `TransactionConflict` (HTTP: 503 `busy` with Retry-After). The bound is sized for the
  embedded stand-in, which fails any writing transaction that overlaps another commit
  anywhere in the server; the work function must be safe to run again from the start;
- the commit of an attempt whose outcome is unknown is retried as a commit only (never the
  work: re-running work whose commit landed would apply it twice), `MAX_COMMIT_ATTEMPTS`;
- a consumed message whose handler failed after all that goes back to its queue
  (`shared.broker.consumer`, message level, `max_attempts`), and a failed timer is retried
  later (`shared.store.timers`); neither retries a conflict itself.
Nothing else retries a transaction: `shared.http.commands.execute` adds no rounds of its own.
"""

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import ConnectionFailure, DuplicateKeyError, OperationFailure

from shared.clock import utcnow
from shared.events.catalogue import EventData
from shared.events.envelope import CloudEvent, make_event
from shared.ids import new_id
from shared.store import embedded_errors
from shared.store.mongo import Database, Document, store_busy
from shared.store.outbox import OUTBOX_COLLECTION, outbox_document

PROCESSED_COLLECTION = "processed_events"
MAX_COMMIT_ATTEMPTS = 4


@dataclass(frozen=True)
class RetryPolicy:
    """How often, and how spaced, a conflicting transaction is run again (full jitter)."""

    attempts: int = 20
    first_backoff_s: float = 0.005
    max_backoff_s: float = 0.5

    def backoff_s(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff_s, self.first_backoff_s * 2**attempt))


# The one retry policy (see the module docstring). At most about 7 s of waiting in all: a
# hot demand on the stand-in gets its turn, a client hears `busy` within a bounded time.
RETRY = RetryPolicy()
MAX_ATTEMPTS = RETRY.attempts


def source_of(service: str) -> str:
    return f"/whistle/{service}"


@dataclass(frozen=True)
class Cause:
    """What a unit of work runs on behalf of: every event it emits carries this.

    `correlationid` is the default correlation of its events (a consumed event's); without
    it, an event is correlated with its own subject (registry events, a new demand)."""

    source: str
    actor: str
    causationid: str
    correlationid: str | None = None

    @classmethod
    def of_request(
        cls,
        service: str,
        actor: str,
        request_id: str | None = None,
        *,
        correlation: str | None = None,
    ) -> "Cause":
        """An HTTP command: the actor is the token's `sub`, the cause the request."""
        return cls(source_of(service), actor, request_id or new_id("req"), correlation)

    @classmethod
    def of_event(cls, service: str, event: CloudEvent, *, actor: str | None = None) -> "Cause":
        """A consumed event: the service acts, caused by the event, in the event's flow."""
        return cls(source_of(service), actor or service, event.id, event.correlationid)

    @classmethod
    def of_timer(cls, service: str, timer_id: str, *, correlation: str | None = None) -> "Cause":
        """A stored timer fired: the service acts, caused by the timer."""
        return cls(source_of(service), service, f"timer:{timer_id}", correlation)


class AlreadyProcessed(Exception):
    """This consumer has already applied this event: a redelivery, to be acked and ignored."""


class RetryTransaction(Exception):
    """Raise inside a work function when a conditional write found the state moved under it."""


class CommitOutcomeUnknown(Exception):
    """The commit may or may not have landed; the work must not be run again blindly."""


class TransactionConflict(Exception):
    """Concurrent transactions kept conflicting; the caller may retry later."""


class Tx:
    def __init__(
        self, db: Database, session: AsyncClientSession, cause: Cause | None = None
    ) -> None:
        self.db = db
        self.session = session
        self.cause = cause
        self.events: list[CloudEvent] = []

    def emit(
        self,
        data: EventData,
        /,
        *,
        subject: str,
        correlation: str | None = None,
        cause: Cause | None = None,
    ) -> CloudEvent:
        """Queue an event for the outbox, its envelope built here from the unit of work's
        `Cause`. `cause` overrides it for this one event (a batch of deliveries, each caused
        by its own notification)."""
        under = cause or self.cause
        if under is None:
            raise RuntimeError(
                f"{data.TYPE} emitted outside a Cause: run the unit of work with cause=..."
            )
        event = make_event(
            data,
            source=under.source,
            subject=subject,
            correlationid=correlation or under.correlationid or subject,
            causationid=under.causationid,
            actor=under.actor,
        )
        self.events.append(event)
        return event

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
        return embedded_errors.reports_write_conflict(error)
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


class UnitOfWork:
    def __init__(
        self,
        client: AsyncMongoClient[Document],
        db: Database,
        *,
        service: str = "whistle",
        on_commit: Callable[[], None] | None = None,
        retry: RetryPolicy = RETRY,
    ) -> None:
        self.client = client
        self.db = db
        self.service = service
        self._on_commit = on_commit
        self._retry = retry

    async def run[T](self, work: Callable[[Tx], Awaitable[T]], *, cause: Cause | None = None) -> T:
        """Run `work` in a transaction, again on a transient conflict (`RETRY`)."""
        attempts = self._retry.attempts
        for attempt in range(attempts):
            try:
                result, emitted = await self._attempt(work, cause)
            except AlreadyProcessed:
                raise
            except Exception as error:
                if store_busy(error):
                    # The store already made this command wait its bounded time: say busy
                    # now rather than queue up again behind the same transaction.
                    raise TransactionConflict(str(error)) from error
                if not _is_transient(error) or attempt == attempts - 1:
                    if _is_transient(error):
                        raise TransactionConflict(str(error)) from error
                    raise
                await asyncio.sleep(self._retry.backoff_s(attempt))
                continue
            if emitted and self._on_commit is not None:
                self._on_commit()
            return result
        raise AssertionError("unreachable")

    async def _attempt[T](
        self, work: Callable[[Tx], Awaitable[T]], cause: Cause | None
    ) -> tuple[T, bool]:
        async with self.client.start_session() as session:
            try:
                await session.start_transaction()
                tx = Tx(self.db, session, cause)
                result = await work(tx)
                if tx.events:
                    await self.db[OUTBOX_COLLECTION].insert_many(
                        [outbox_document(event) for event in tx.events], session=session
                    )
            except BaseException:
                embedded_errors.discard_server_session(session)
                if session.in_transaction:
                    with contextlib.suppress(Exception):
                        await session.abort_transaction()
                raise
            try:
                await _commit(session)
            except BaseException:
                embedded_errors.discard_server_session(session)
                raise
            return result, bool(tx.events)

    def cause_of(self, event: CloudEvent) -> Cause:
        return Cause.of_event(self.service, event)

    async def run_once(
        self,
        consumer: str,
        event: CloudEvent,
        work: Callable[[Tx], Awaitable[Any]],
        *,
        cause: Cause | None = None,
    ) -> bool:
        """Apply an event's effect exactly once per consumer; False when it was a duplicate.

        The work runs under the event as its cause unless told otherwise."""

        async def guarded(tx: Tx) -> None:
            await tx.claim_event(consumer, event.id)
            await work(tx)

        try:
            await self.run(guarded, cause=cause or self.cause_of(event))
        except AlreadyProcessed:
            return False
        return True
