"""An `insert` command of several documents is written as one batch, not one by one.

PyMongo sends `insert_many` as one `insert` command; mongoeco's wire server runs it as an
`insert_one` per document, each with its own write scope, collection-options read, existing
document lookup, index load and per-index delete-then-insert of the index entries. mongoeco
has a batch path for its own `insert_many` (one write scope, one existence query for the
whole batch, the index entries by executemany) that the wire command never reaches. Audit
appends up to 100 records per transaction, notify stores a notification per recipient, and
every service's unit of work stores its outbox rows with `insert_many`: measured in-process
on audit's collection and its 8 indexes, 0.57 ms per record one by one, 0.33 ms as a batch.

The reply is the one the per-document loop gives: `n` the documents stored, and for a
refused one (a duplicate `_id` or unique key) its write error at its index; ordered stops
there, unordered goes on. mongoeco's batch path reads the whole collection to compare
numeric `_id`s by value (1 == 1.0), so a command with a numeric `_id` keeps the loop, whose
`_id` check embedded_patches.py serves from the primary key.
"""

from typing import Any

from mongoeco._types.documents import WriteCommandResult, WriteErrorEntry
from mongoeco.api._async._database_admin_write_commands import (
    DatabaseAdminWriteCommandService,
    _write_command_result,
)
from mongoeco.api._async._write_command_validation import write_command_acknowledged
from mongoeco.api._command_bson import command_boolean
from mongoeco.core.identity import id_contains_numeric_value
from mongoeco.errors import BulkWriteError

_original_command_insert = DatabaseAdminWriteCommandService.command_insert
# What a write error's reply holds besides its details (keyPattern, keyValue...).
_ENTRY_FIELDS = frozenset({"index", "errmsg", "code", "op"})


def _batchable(documents: object) -> bool:
    return (
        isinstance(documents, list)
        and len(documents) > 1
        and all(
            isinstance(document, dict)
            and "_id" in document
            and not id_contains_numeric_value(document["_id"])
            for document in documents
        )
    )


def _entry(error: dict[str, Any]) -> WriteErrorEntry:
    return WriteErrorEntry(
        index=int(error["index"]),
        errmsg=str(error["errmsg"]),
        code=error.get("code"),
        details={key: value for key, value in error.items() if key not in _ENTRY_FIELDS},
    )


async def _insert_as_one_batch(
    self: DatabaseAdminWriteCommandService, spec: dict[str, object], *, session: Any = None
) -> object:
    if not _batchable(spec.get("documents")):
        return await _original_command_insert(self, spec, session=session)
    admin = self._admin
    collection_name = admin._require_collection_name(spec.get("insert"), "insert")
    documents = admin._normalize_insert_documents(spec.get("documents"))
    ordered = admin._normalize_ordered_from_command(spec.get("ordered"))
    bypass = command_boolean(  # type: ignore[no-untyped-call]
        spec.get("bypassDocumentValidation", False), "bypassDocumentValidation", numeric=True
    )
    acknowledged = write_command_acknowledged(spec, dialect=admin._mongodb_dialect.key)
    collection = admin._database.get_collection(collection_name)
    try:
        await collection.insert_many(
            documents, ordered=ordered, bypass_document_validation=bypass, session=session
        )
    except BulkWriteError as refused:
        details: dict[str, Any] = getattr(refused, "details", None) or {}
        result = WriteCommandResult(
            count=int(details.get("nInserted", 0)),
            write_errors=[_entry(error) for error in details.get("writeErrors", [])] or None,
        )
    else:
        result = WriteCommandResult(count=len(documents))
    return _write_command_result(result, acknowledged=acknowledged)


def apply() -> None:
    DatabaseAdminWriteCommandService.command_insert = _insert_as_one_batch  # type: ignore[method-assign]
