"""The stand-in's change capture, which no client of its wire server can read, switched off
(part of embedded_patches.py's fixes, pinned to the same mongoeco version).

mongoeco records every write for its in-process change streams: a serialised copy of the
document, a fingerprint and two rows in a change outbox, in the writing transaction; and on
every commit (and after every write outside one) it starts a thread, takes a lease on that
outbox in a transaction of its own, dispatches the new rows and releases the lease. Over the
wire `$changeStream` is refused ("Unsupported aggregation stage", mongoeco 4.11.0), so nothing
can ever read what it records: under audit's ingest that bookkeeping was about a third of the
store's time, and the commit's dispatch about 40 ms of every transaction's wall time.

Every operation is given mongoeco's own "publishes nothing" policy (`DISABLED`, what its
internal operations use), which records no change and asks no commit sequence of the write;
the commit and write hooks that dispatch changes are not registered; and no collection
registers itself as a consumer of changes. That registration started a thread that, every
60 s, renewed it with a write of its own on its own SQLite connection: a transaction of the
store's that had read before that write could then not write at all (SQLite: "database is
locked", its snapshot was stale), so the gate retried it for its whole wait and every command
behind it waited too. That was the 5 s stall the load run saw about once a minute.

Writes, transactions and their rollbacks are untouched (tests/shared/test_embedded_patches.py,
tests/shared/test_embedded_encoding.py). Were a change stream
ever served over the wire, it would get no events: the test that `$changeStream` is still
refused fails first, on the version that adds it.
"""

from typing import Any

from mongoeco.api._async._collection_runtime import CollectionRuntimeCoordinator
from mongoeco.core.operation_context import ChangePublicationPolicy, OperationContext
from mongoeco.engines.adapter import EngineSpiAdapter

_original_create = OperationContext.create.__func__  # type: ignore[attr-defined]


def _create_unpublished(cls: type[OperationContext], /, **kwargs: Any) -> OperationContext:
    kwargs["publication"] = ChangePublicationPolicy.DISABLED
    context: OperationContext = _original_create(cls, **kwargs)
    return context


def _no_delivery(self: CollectionRuntimeCoordinator, *args: Any, **kwargs: Any) -> None:
    return None


def _no_registration(self: EngineSpiAdapter, sink: object | None) -> None:
    return None


def apply() -> None:
    EngineSpiAdapter.prepare_change_delivery = _no_registration  # type: ignore[method-assign]
    OperationContext.create = classmethod(_create_unpublished)  # type: ignore[method-assign,assignment]
    CollectionRuntimeCoordinator._prepare_engine_change_delivery = _no_delivery  # type: ignore[method-assign]
    CollectionRuntimeCoordinator._dispatch_engine_changes = _no_delivery  # type: ignore[method-assign]
