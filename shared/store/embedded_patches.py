"""Narrow, version-pinned fixes to the embedded MongoDB stand-in (mongoeco), applied on import.

Each fix keeps MongoDB's semantics (tests/shared/test_embedded_patches.py checks them) and
touches only what Whistle's workload runs into. Found with py-spy on the stores under the
load run (bench/load.py), and by counting: every statement each store ran under a load run,
by shape, with SQLite's EXPLAIN QUERY PLAN of it (a scan of `documents` narrowed only by
db_name and coll_name reads the whole collection). Each removes a cost that grew with the
collection:

- commitTransaction aborts a transaction whose commit failed, as MongoDB does.
- An insert's `_id` uniqueness check is answered from the primary key instead of decoding
  every stored document. mongoeco's SQLite engine passes `scan_payload_id=True` on every
  insert, so each insert cost O(collection) (measured: 250 documents decoded per insert at
  500 stored, 2,750 at 3,000). A non-numeric `_id` has one storage key, so the primary-key
  lookup mongoeco already does is complete. A numeric `_id` equals every other number of the
  same value (1 == 1.0 == Int64(1) == Decimal128("1") for MongoDB): those few storage keys are
  looked up directly, and only Decimal128 ids, whose spellings vary, are compared by value.
- Equality on, or `$in` of, strings or ObjectIds at `_id` reads those rows by the primary key,
  and equality on, or `$in` of, strings at a top-level field that leads an index reads the
  candidates from that index; mongoeco's SQL scanned the collection for every find, update
  and delete by `_id` or by an indexed field (audit's "which of these event ids are stored?",
  notify's inbox by owner, the outbox's pending rows, units' claims by demand...).
- A sorted find's check "does a matching document hold an array at the sort key?" is asked
  with the same index-served terms as the find itself, not a scan of the collection.
- The planner's questions about a collection (does any document hold an array, a Decimal128,
  bytes, a double, non-ASCII text, another type at this field?) are kept up to date from the
  rows that changed, instead of being asked of the whole collection after every write.
- A document's TTL index entries are found by an index when it is updated or deleted, not by
  reading every TTL entry of its collection (the outbox, the idempotency keys).
- A finished reader's SQLite connection is kept for the next find instead of a connect, WAL
  pragma and close per find.
- The change capture for in-process change streams, which the wire server cannot serve, is
  off (embedded_changes.py): every write recorded a copy of itself, every commit leased and
  dispatched them.
- The document encoder checks a document once, not once per level of it (embedded_codec.py).
- An `insert` command of several documents is written as one batch (embedded_inserts.py).
- Engine calls run on the server's loop, not handed to a thread pool and back, since the gate
  runs one command at a time anyway (embedded_inline.py).

The fixes reach into mongoeco's internals, so they are written for one version. Another
version gets none of them (the stand-in then stays correct but slow) and says so loudly.

What they cannot fix: mongoeco's SQLite engine serves a range, a sort, or an equality on
anything but a string (a number, a boolean, a date) from no index: such a query reads every
document its other, indexed terms leave (all of them when it has none).
"""

import sqlite3
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import suppress
from decimal import Decimal
from fractions import Fraction
from typing import Any

import mongoeco
from mongoeco.core.bson_ordering import bson_equality_key
from mongoeco.core.bson_scalars import (
    BsonDecimal128,
    BsonDouble,
    BsonInt32,
    BsonInt64,
    wrap_bson_numeric,
)
from mongoeco.core.codec import DocumentCodec
from mongoeco.core.identity import id_contains_numeric_value
from mongoeco.core.query_plan import EqualsCondition, InCondition
from mongoeco.engines import SQLiteEngine
from mongoeco.engines._sqlite_connection import SQLiteConnection
from mongoeco.engines._sqlite_plan_heuristics import sort_requires_python
from mongoeco.engines._sqlite_reader import SQLiteScanReader
from mongoeco.engines._sqlite_session_runtime import SQLiteSessionRuntime
from mongoeco.engines.sqlite_query import (
    index_expressions_sql,
    json_path_for_field,
    path_array_prefixes,
    translate_query_plan,
    type_expression_sql,
)
from mongoeco.types import Decimal128, ObjectId  # type: ignore[attr-defined]
from mongoeco.wire.sessions import WireSessionStore

from shared.store import embedded_changes, embedded_codec, embedded_inline, embedded_inserts

PATCHED_FOR = "4.11.0"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class EmbeddedVersionWarning(RuntimeWarning):
    pass


def _commit_or_abort(self: WireSessionStore, body: dict[str, Any]) -> dict[str, Any]:
    """commitTransaction that aborts a transaction whose commit failed, as MongoDB does.

    mongoeco leaves such a transaction open on its wire session; PyMongo reuses the session
    id for the next transaction, which then silently continues the stale snapshot (its writes
    reappear, later commits lose documents). Aborting on failure restores MongoDB's behaviour.
    """
    session = self._require_session(body)
    if session.transaction_active:
        try:
            session.commit_transaction()
        except BaseException:
            with suppress(Exception):
                session.abort_transaction()
            raise
    return {"ok": 1.0}


def _exact_value(value: Any) -> Fraction | float | None:
    """The number an `_id` stands for: exact when finite, the float itself for nan/inf."""
    wrapped = wrap_bson_numeric(value)
    if wrapped is None:
        return None
    raw = wrapped.value
    if isinstance(raw, Decimal128):
        raw = raw.to_decimal()
    if isinstance(raw, Decimal):
        return Fraction(raw) if raw.is_finite() else float(raw)
    if isinstance(raw, float):
        return Fraction(raw) if raw == raw and abs(raw) != float("inf") else raw
    return Fraction(int(raw))


def _equal_numbers(value: Fraction | float) -> Iterator[Any]:
    """Every int, Int64 and double (plain or wrapped) equal to `value`; Decimal128 aside."""
    if isinstance(value, float):  # nan or an infinity: only a double can hold it
        yield value
        yield BsonDouble(value)
        return
    if value.denominator == 1 and INT64_MIN <= value.numerator <= INT64_MAX:
        integer = value.numerator
        yield integer
        yield BsonInt64(integer)
        if -(2**31) <= integer < 2**31:
            yield BsonInt32(integer)
    with suppress(OverflowError):
        double = float(value)
        if Fraction(double) == value:
            yield double
            yield BsonDouble(double)


def _decimal_prefixes(engine: SQLiteEngine) -> list[str]:
    """How the storage keys of Decimal128 ids begin (their spellings vary: 1, 1.0, 1E0)."""
    prefixes = []
    for sample in (Decimal128("0"), BsonDecimal128(Decimal128("0"))):
        with suppress(Exception):
            key = engine._storage_key(sample)
            prefixes.append(key[: key.index(",") + 1])
    return sorted(set(prefixes))


def _numeric_id_taken(
    engine: SQLiteEngine,
    db_name: str,
    coll_name: str,
    document_id: Any,
    exclude_storage_key: str | None,
) -> bool:
    value = _exact_value(document_id)
    assert value is not None
    conn = engine._require_connection()
    keys = {engine._storage_key(candidate) for candidate in _equal_numbers(value)}
    if exclude_storage_key is not None:
        keys.discard(exclude_storage_key)
    if keys:
        marks = ", ".join("?" * len(keys))
        row = conn.execute(
            f"SELECT 1 FROM documents WHERE db_name = ? AND coll_name = ? "  # noqa: S608
            f"AND storage_key IN ({marks}) LIMIT 1",
            (db_name, coll_name, *sorted(keys)),
        ).fetchone()
        if row is not None:
            return True
    wanted = bson_equality_key(document_id)
    for prefix in _decimal_prefixes(engine):
        # A range on the primary key: only Decimal128 ids are read (none in Whistle).
        rows = conn.execute(
            "SELECT storage_key, document FROM documents WHERE db_name = ? AND coll_name = ? "
            "AND storage_key >= ? AND storage_key < ?",
            (db_name, coll_name, prefix, prefix + "\U0010ffff"),
        )
        for storage_key, payload in rows:
            if storage_key == exclude_storage_key:
                continue
            existing = engine._deserialize_document(payload)
            if "_id" in existing and bson_equality_key(existing["_id"]) == wanted:
                return True
    return False


_original_validate = SQLiteEngine._validate_document_against_unique_indexes


def _validate_unique_by_index(
    self: SQLiteEngine,
    db_name: str,
    coll_name: str,
    document: dict[str, Any],
    *,
    exclude_storage_key: str | None = None,
    skip_id_check: bool = False,
    scan_payload_id: bool = False,
) -> None:
    if "_id" in document and not skip_id_check:
        document_id = document["_id"]
        if not id_contains_numeric_value(document_id):
            # One storage key per non-numeric value: mongoeco's own primary-key lookup is
            # the whole check, the payload scan adds nothing.
            scan_payload_id = False
        elif _exact_value(document_id) is not None:
            if self._storage_key(document_id) != exclude_storage_key and _numeric_id_taken(
                self, db_name, coll_name, document_id, exclude_storage_key
            ):
                raise self._unique_key_error(  # type: ignore[no-untyped-call]
                    f"Duplicate key: _id={document_id}", f"{db_name}.{coll_name}", document
                )
            skip_id_check = True
        # Documents and arrays holding numbers as `_id` keep mongoeco's own scan.
    _original_validate(
        self,
        db_name,
        coll_name,
        document,
        exclude_storage_key=exclude_storage_key,
        skip_id_check=skip_id_check,
        scan_payload_id=scan_payload_id,
    )


def apply() -> bool:
    """Apply the fixes once; False (with a warning) on a mongoeco they were not written for."""
    if getattr(SQLiteEngine, "_whistle_patched", False):
        return True
    if mongoeco.__version__ != PATCHED_FOR:
        warnings.warn(
            f"mongoeco {mongoeco.__version__} is installed, but Whistle's fixes to the embedded "
            f"stand-in are written for {PATCHED_FOR}: none is applied. Inserts will scan whole "
            f"collections and a failed commit may leak into the next transaction; install "
            f"mongoeco=={PATCHED_FOR} (uv sync --locked) or point MONGODB_URL at MongoDB.",
            EmbeddedVersionWarning,
            stacklevel=2,
        )
        return False
    WireSessionStore.commit_transaction = _commit_or_abort  # type: ignore[method-assign]
    SQLiteEngine._validate_document_against_unique_indexes = _validate_unique_by_index  # type: ignore[method-assign]
    _apply_features()
    _apply_reader_pool()
    SQLiteEngine._translate_query_plan_with_multikey = _translate_by_index  # type: ignore[method-assign]
    SQLiteEngine._sort_requires_python = _sort_requires_python  # type: ignore[method-assign]
    embedded_changes.apply()
    embedded_codec.apply()
    embedded_inline.apply()
    embedded_inserts.apply()
    SQLiteEngine._whistle_patched = True  # type: ignore[attr-defined]
    return True


# --- Collection features, kept up to date by the rows that changed --------------------------
#
# mongoeco's SQLite planner asks, before most reads, whether a collection holds anything its
# SQL fast paths cannot handle: a Decimal128, bytes or undefined in the queried field, an array
# at it, a double, non-ASCII text, a value of another type. Each question is a query over the
# whole collection (`... WHERE json_extract(document, path) = ? LIMIT 1`, which finds nothing
# and so reads every row), its answer cached until the next write to the collection: under
# Whistle's load, where every read follows a write, every read paid O(collection) several
# times over.
#
# Each answer is "some document has it", so a write can only turn a "no" into a "yes" by the
# row it wrote. SQLite triggers (temporary, on the engine's own connection) note every row
# inserted or updated; a cached "no" is brought up to date by asking the same question of
# those rows only. A "yes" stays "yes" even when the document that had it is deleted: the
# planner then takes its general path, as it did before, which is slower, never wrong. A
# rollback drops the answers brought up to date by the rows it undid; a reconnect or a very
# long change log drops every answer (the next read asks the whole collection again, as
# mongoeco did).

_CHANGE_LOG_LIMIT = 100_000
_FeatureKey = tuple[str, str, str, tuple[Any, ...]]


class _Features:
    def __init__(self) -> None:
        self.connection: sqlite3.Connection | None = None
        self.answers: dict[_FeatureKey, tuple[bool, int]] = {}
        self.sort_types: dict[_FeatureKey, tuple[str | None, int]] = {}

    def ready(self, engine: SQLiteEngine) -> sqlite3.Connection | None:
        """The engine's connection with the change triggers on it, or None (not now)."""
        conn: sqlite3.Connection | None = getattr(engine, "_connection", None)
        if conn is None:
            return None
        if conn is self.connection:
            return conn
        if conn.in_transaction:
            return None  # a trigger created now would vanish with a rollback
        conn.executescript(
            """
            CREATE TEMP TABLE IF NOT EXISTS whistle_changed_rows (
                seq INTEGER PRIMARY KEY, db_name TEXT, coll_name TEXT, row INTEGER);
            CREATE INDEX IF NOT EXISTS temp.whistle_changed_rows_ns
                ON whistle_changed_rows (db_name, coll_name, seq);
            CREATE TEMP TRIGGER IF NOT EXISTS whistle_changed_rows_insert
                AFTER INSERT ON main.documents
            BEGIN INSERT INTO whistle_changed_rows (db_name, coll_name, row)
                  VALUES (new.db_name, new.coll_name, new.rowid); END;
            CREATE TEMP TRIGGER IF NOT EXISTS whistle_changed_rows_update
                AFTER UPDATE ON main.documents
            BEGIN INSERT INTO whistle_changed_rows (db_name, coll_name, row)
                  VALUES (new.db_name, new.coll_name, new.rowid); END;
            """
        )
        self.connection = conn
        self.forget()
        return conn

    def forget(self) -> None:
        self.answers.clear()
        self.sort_types.clear()

    def keep_upto(self, head: int) -> None:
        """Keep only the answers brought up to date at or before change `head`."""
        self.answers = {k: v for k, v in self.answers.items() if v[1] <= head}
        self.sort_types = {k: v for k, v in self.sort_types.items() if v[1] <= head}


def _features(engine: SQLiteEngine) -> _Features:
    features: _Features | None = getattr(engine, "_whistle_features", None)
    if features is None:
        features = _Features()
        engine._whistle_features = features  # type: ignore[attr-defined]
    return features


def _head(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) FROM temp.whistle_changed_rows").fetchone()
    return int(row[0])


_CHANGED = (
    "FROM temp.whistle_changed_rows AS changed CROSS JOIN main.documents AS d "
    "ON d.rowid = changed.row "
    "WHERE changed.db_name = ? AND changed.coll_name = ? AND changed.seq > ?"
)  # CROSS JOIN: SQLite walks the changed rows and looks each document up, never the reverse


def _changed_rows_match(
    conn: sqlite3.Connection,
    db_name: str,
    coll_name: str,
    since: int,
    predicate: str,
    params: tuple[Any, ...] = (),
) -> bool:
    row = conn.execute(
        f"SELECT 1 {_CHANGED} AND ({predicate}) LIMIT 1",
        (db_name, coll_name, since, *params),
    ).fetchone()
    return row is not None


def _path_literal(field: str) -> str:
    return "'" + json_path_for_field(field).replace("'", "''") + "'"


def _tagged_type_path(field: str) -> str:
    return json_path_for_field(field) + f'."{DocumentCodec._MARKER}".{DocumentCodec._TYPE}'


# Each question as mongoeco 4.11.0 asks it of the whole collection, asked of the changed rows:
# (db_name, coll_name, *arguments) -> "does one of them have it?"
_Question = Callable[[sqlite3.Connection, str, str, int, tuple[Any, ...]], bool]


def _ask_tagged_type(
    conn: sqlite3.Connection, db: str, coll: str, since: int, args: tuple[Any, ...]
) -> bool:
    field, value_type = args
    return _changed_rows_match(
        conn,
        db,
        coll,
        since,
        "json_extract(document, ?) = ?",
        (_tagged_type_path(field), value_type),
    )


def _ask_json_type(json_type: str) -> _Question:
    def ask(
        conn: sqlite3.Connection, db: str, coll: str, since: int, args: tuple[Any, ...]
    ) -> bool:
        (field,) = args
        predicate = f"json_type(document, {_path_literal(field)}) = '{json_type}'"
        return _changed_rows_match(conn, db, coll, since, predicate)

    return ask


def _ask_non_ascii_text(
    conn: sqlite3.Connection, db: str, coll: str, since: int, args: tuple[Any, ...]
) -> bool:
    (field,) = args
    path = _path_literal(field)
    rows = conn.execute(
        f"SELECT json_extract(document, {path}) {_CHANGED} "
        f"AND json_type(document, {path}) = 'text'",
        (db, coll, since),
    )
    return any(isinstance(value, str) and not value.isascii() for (value,) in rows)


_MISMATCH = {
    "number": "json_type(document, {path}) IS NOT NULL "
    "AND json_type(document, {path}) NOT IN ('integer', 'real')",
    "string": "json_type(document, {path}) IS NOT NULL AND json_type(document, {path}) != 'text'",
    "bool": "json_type(document, {path}) IS NOT NULL "
    "AND json_type(document, {path}) NOT IN ('true', 'false')",
}


def _ask_comparison_mismatch(
    conn: sqlite3.Connection, db: str, coll: str, since: int, args: tuple[Any, ...]
) -> bool:
    field, expected_type = args
    template = _MISMATCH.get(expected_type)
    if template is None:
        return True  # mongoeco answers "yes" without looking, for every other type
    return _changed_rows_match(conn, db, coll, since, template.format(path=_path_literal(field)))


def _ask_traverses_array(
    conn: sqlite3.Connection, db: str, coll: str, since: int, args: tuple[Any, ...]
) -> bool:
    (field,) = args
    return any(
        _changed_rows_match(
            conn, db, coll, since, f"json_type(document, {_path_literal(prefix)}) = 'array'"
        )
        for prefix in path_array_prefixes(field)
    )


def _kept_up_to_date(name: str, ask: _Question) -> Callable[..., bool]:
    original: Callable[..., bool] = getattr(SQLiteEngine, name)

    def answer(self: SQLiteEngine, db_name: str, coll_name: str, *args: Any) -> bool:
        features = _features(self)
        with self._lock:
            conn = features.ready(self)
            if conn is None:
                return original(self, db_name, coll_name, *args)
            key = (db_name, coll_name, name, args)
            head = _head(conn)
            known = features.answers.get(key)
            if known is None:
                result = bool(original(self, db_name, coll_name, *args))
            else:
                result, since = known
                if not result and since != head:
                    result = ask(conn, db_name, coll_name, since, args)
            features.answers[key] = (result, head)
            if head > _CHANGE_LOG_LIMIT and not conn.in_transaction:
                conn.execute("DELETE FROM temp.whistle_changed_rows")
                features.forget()
            return result

    answer.__name__ = name
    answer.__doc__ = original.__doc__
    return answer


_KEPT_UP_TO_DATE: dict[str, _Question] = {
    "_field_contains_tagged_value_type_in_collection": _ask_tagged_type,
    "_field_is_top_level_array_in_collection": _ask_json_type("array"),
    "_field_contains_real_numeric_in_collection": _ask_json_type("real"),
    "_field_contains_non_ascii_text_in_collection": _ask_non_ascii_text,
    "_field_has_comparison_type_mismatch_in_collection": _ask_comparison_mismatch,
    "_field_traverses_array_in_collection": _ask_traverses_array,
}


_UNIFORM_SORT_TYPES = {
    # What breaks "every document holds a <type> at this field": a document without one too.
    "number": "('integer', 'real')",
    "string": "('text')",
    "bool": "('true', 'false')",
}
_original_uniform_sort_type = SQLiteEngine._field_has_uniform_scalar_sort_type_in_collection


def _uniform_sort_type(self: SQLiteEngine, db_name: str, coll_name: str, field: str) -> str | None:
    """mongoeco's "do all documents hold one scalar type at `field`?" (it then sorts in SQL),
    kept up to date like the questions above: a "no" stays "no" (mongoeco sorts the general
    way, slower, never wrong); a type is checked against the changed rows only. Deleting
    documents cannot mix the types of those that are left."""
    features = _features(self)
    with self._lock:
        conn = features.ready(self)
        if conn is None:
            return _original_uniform_sort_type(self, db_name, coll_name, field)
        key = (db_name, coll_name, "uniform_sort_type", (field,))
        head = _head(conn)
        known = features.sort_types.get(key)
        if known is None:
            result = _original_uniform_sort_type(self, db_name, coll_name, field)
        else:
            result, since = known
            if result is not None and since != head:
                allowed = _UNIFORM_SORT_TYPES[result]
                path = _path_literal(field)
                predicate = f"coalesce(json_type(document, {path}), 'missing') NOT IN {allowed}"
                if _changed_rows_match(conn, db_name, coll_name, since, predicate):
                    result = None
        features.sort_types[key] = (result, head)
        return result


# mongoeco keys a TTL index's entries by (collection, index, document) and finds them for
# expiry by (collection, expiry), but drops a document's entries by (collection, document):
# neither key serves that, so every update or delete of a document in a collection with a
# TTL index read all of the collection's TTL entries (SQLite's plan: SEARCH ... USING
# COVERING INDEX idx_ttl_index_entries_expiration (collection_id=?)). Every service's outbox
# (a row marked sent) and idempotency keys (a stored answer) paid it on every request, more
# with each request: the load run's drift. An index by (collection, document) serves it.
_TTL_ENTRIES_BY_DOCUMENT = (
    "CREATE INDEX IF NOT EXISTS main.whistle_ttl_entries_by_document "
    "ON ttl_index_entries (collection_id, storage_key)"
)


def _install_on_connect(original: Callable[[SQLiteEngine], None]) -> Callable[[SQLiteEngine], None]:
    def connect(self: SQLiteEngine) -> None:
        original(self)
        _reader_pool(self).open = True
        # Before any command: afterwards the engine's connection is mostly inside a read or
        # write scope, where a trigger created could be undone by a rollback.
        with self._lock:
            conn: sqlite3.Connection | None = getattr(self, "_connection", None)
            if conn is not None and not conn.in_transaction:
                conn.executescript(_TTL_ENTRIES_BY_DOCUMENT)
            _features(self).ready(self)

    return connect


# --- Equality and `$in` served by an index ---------------------------------------------------
#
# mongoeco's SQL for `{"f": "x"}` is `json_type(document, '$.f') = 'text' AND
# json_extract(document, '$.f') = 'x'`, and for `{"f": {"$in": [...]}}` an OR of such terms
# (plus "or an array holding it"): SQLite can use none of mongoeco's indexes for it, so every
# find, update or delete by a field scanned the collection (measured: 180 x 100 SQLite steps
# per lookup at 2,000 documents). Where the question can be answered from an index, a term
# that the index serves is ANDed with mongoeco's own SQL: SQLite reads the few candidate rows
# and still checks mongoeco's predicate on each, so the answer is mongoeco's. The added term
# must hold for every row mongoeco's predicate accepts (else a row would be lost):
#
# - `_id` equal to, or `$in` of, strings or ObjectIds: such an `_id` has exactly one storage
#   key, the primary key's third column (`documents.storage_key IN (...)`). Numbers (1 == 1.0),
#   documents and arrays have more than one candidate and keep mongoeco's SQL.
# - Any other top-level field equal to, or `$in` of, strings, when the collection has an index
#   led by that field and no document holds an array there (the planner's own question, kept
#   up to date below): a string at that field is untagged, so mongoeco's physical index over
#   (db_name, coll_name, <tag type or ''>, <tag value or the value>, ...) holds it under
#   ('', the string). Dotted paths (which may cross an array) keep mongoeco's SQL.

_original_translate = SQLiteEngine._translate_query_plan_with_multikey


def _ids_by_storage_key(self: SQLiteEngine, values: tuple[Any, ...]) -> list[str] | None:
    if values and all(type(value) in (str, ObjectId) for value in values):
        return sorted({self._storage_key(value) for value in values})
    return None


def _led_by_an_index(self: SQLiteEngine, db_name: str, coll_name: str, field: str) -> bool:
    """A physical index of the collection starts with `field`, and no document holds an array
    at it: the index then holds every string value of `field` under ('', the value). (mongoeco
    marks single-field indexes multikey and answers them with "equal, or an array entry
    equal": without arrays, only the first can match.)"""
    if "." in field or "$" in field:
        return False
    led = any(
        index.get("physical_name") and list(index.get("fields") or [])[:1] == [field]
        for index in self._load_indexes(db_name, coll_name)
    )
    return led and not self._field_is_top_level_array_in_collection(db_name, coll_name, field)


def _strings(values: tuple[Any, ...]) -> list[str] | None:
    if values and all(type(value) is str for value in values):
        return sorted(set(values))
    return None


def _translate_by_index(
    self: SQLiteEngine, db_name: str, coll_name: str, plan: Any
) -> tuple[str, list[object]]:
    sql, params = _original_translate(self, db_name, coll_name, plan)
    values: tuple[Any, ...]
    if isinstance(plan, EqualsCondition):
        field, values = plan.field, (plan.value,)
    elif isinstance(plan, InCondition):
        field, values = plan.field, tuple(plan.values)
    else:
        return sql, params
    if field == "_id":
        keys = _ids_by_storage_key(self, values)
        if keys is None:
            return sql, params
        marks = ", ".join("?" * len(keys))
        return f"(documents.storage_key IN ({marks}) AND ({sql}))", [*keys, *params]
    strings = _strings(values)
    if strings is None or not _led_by_an_index(self, db_name, coll_name, field):
        return sql, params
    tag_sql, value_sql = index_expressions_sql(field)
    marks = ", ".join("?" * len(strings))
    return f"({tag_sql} = '' AND {value_sql} IN ({marks}) AND ({sql}))", [*strings, *params]


# --- A sorted find's "must Python sort this?" asked of the candidates --------------------------
#
# Before a sorted find mongoeco asks whether any document the query matches holds an array or
# a number-like object at a sort key (then it sorts in Python). It builds that question's
# WHERE from the plan with its plain translation, not the one its reads use, so the terms an
# index serves (above) were missing and every sorted find by owner, by partition, by status
# scanned its collection once more (the most frequent scan in every store under the load
# run). The same question is asked with the reads' own translation: the same rows match it
# (it is how the find itself selects them), found from the index.

_original_sort_check = SQLiteEngine._sort_requires_python


def _sort_requires_python(
    self: SQLiteEngine, db_name: str, coll_name: str, plan: Any, sort: Any
) -> bool:
    def translate(node: Any) -> tuple[str, list[object]]:
        try:
            return self._translate_query_plan_with_multikey(db_name, coll_name, node)
        except NotImplementedError:
            return translate_query_plan(node)

    return sort_requires_python(
        db_name=db_name,
        coll_name=coll_name,
        plan=plan,
        sort=sort,
        plan_has_array_traversing_paths=self._plan_has_array_traversing_paths,
        translate_query_plan=translate,
        field_traverses_array_in_collection=self._field_traverses_array_in_collection,
        field_contains_tagged_bytes_in_collection=self._field_contains_tagged_bytes_in_collection,
        field_contains_tagged_undefined_in_collection=(
            self._field_contains_tagged_undefined_in_collection
        ),
        fetchone=lambda sql, params: self._require_connection().execute(sql, params).fetchone(),
        type_expression_sql=type_expression_sql,
        json_path_for_field=json_path_for_field,
    )


# --- Read connections, kept for the next read ------------------------------------------------
#
# Every find with more than one result opened a SQLite connection of its own (connect, WAL
# pragma, BEGIN) and closed it when the cursor ended: about a quarter of notify's store's time
# under load. A finished reader's connection is rolled back (its snapshot ends; the next BEGIN
# takes a fresh one, as a new connection would) and kept for the next reader. mongoeco checks
# its index catalogue against `PRAGMA data_version` on every read, and it is cleared here too.

_READER_POOL_SIZE = 4
_opening_reader = threading.local()


class _ReaderPool:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.idle: list[SQLiteConnection] = []
        self.open = True

    def drain(self) -> list[SQLiteConnection]:
        with self.lock:
            idle, self.idle = self.idle, []
        return idle


def _reader_pool(engine: SQLiteEngine) -> _ReaderPool:
    pool: _ReaderPool | None = getattr(engine, "_whistle_reader_pool", None)
    if pool is None:
        pool = _ReaderPool()
        engine._whistle_reader_pool = pool  # type: ignore[attr-defined]
    return pool


_original_reader_open = SQLiteScanReader._open
_original_create_connection = SQLiteEngine._create_sqlite_connection
_original_connection_close = SQLiteConnection.close
_original_disconnect = SQLiteEngine._disconnect_sync


def _reader_open(self: SQLiteScanReader) -> None:
    _opening_reader.engine = self.engine
    try:
        _original_reader_open(self)
    finally:
        _opening_reader.engine = None


def _create_connection(self: SQLiteEngine) -> sqlite3.Connection:
    if getattr(_opening_reader, "engine", None) is not self:
        return _original_create_connection(self)
    pool = _reader_pool(self)
    with pool.lock:
        kept = pool.idle.pop() if pool.idle else None
    connection = kept if kept is not None else _original_create_connection(self)
    connection._whistle_pool = pool  # type: ignore[attr-defined]
    return connection


def _close_or_keep(self: SQLiteConnection) -> None:
    pool: _ReaderPool | None = getattr(self, "_whistle_pool", None)
    if pool is not None and pool.open:
        try:
            if self.in_transaction:
                self.rollback()
            self.index_catalogs.clear()
            with pool.lock:
                if pool.open and len(pool.idle) < _READER_POOL_SIZE:
                    pool.idle.append(self)
                    return
        except sqlite3.Error:
            pass  # not fit to keep: closed below
    _original_connection_close(self)


def _disconnect(self: SQLiteEngine) -> None:
    _original_disconnect(self)
    pool = _reader_pool(self)
    if getattr(self, "_connection", None) is None:
        pool.open = False
        for connection in pool.drain():
            with suppress(sqlite3.Error):
                _original_connection_close(connection)


def _apply_reader_pool() -> None:
    SQLiteScanReader._open = _reader_open  # type: ignore[method-assign]
    SQLiteEngine._create_sqlite_connection = _create_connection  # type: ignore[method-assign]
    SQLiteConnection.close = _close_or_keep  # type: ignore[method-assign]
    SQLiteEngine._disconnect_sync = _disconnect  # type: ignore[method-assign]


def _forget_on_rollback(
    original: Callable[[SQLiteSessionRuntime], None],
) -> Callable[[SQLiteSessionRuntime], None]:
    def clear(self: SQLiteSessionRuntime) -> None:
        original(self)
        # The rows a rollback undid are gone from the change log too, and their seqs will be
        # given again: an answer brought up to date past the log's head now is dropped. The
        # others were brought up to date by rows that are still there (and a rollback only
        # removes rows, which can make a "yes" stale, never a "no" wrong). Dropping them all
        # made the next reads after every aborted transaction or refused insert ask their
        # questions of the whole collection again.
        features = getattr(self._engine, "_whistle_features", None)
        if features is None:
            return
        conn: sqlite3.Connection | None = features.connection
        if conn is None or features.connection is not getattr(self._engine, "_connection", None):
            features.forget()
            return
        try:
            head = _head(conn)
        except sqlite3.Error:
            features.forget()
            return
        features.keep_upto(head)

    return clear


def _apply_features() -> None:
    for name, ask in _KEPT_UP_TO_DATE.items():
        setattr(SQLiteEngine, name, _kept_up_to_date(name, ask))
    SQLiteEngine._field_has_uniform_scalar_sort_type_in_collection = _uniform_sort_type  # type: ignore[method-assign]
    SQLiteEngine._connect_sync = _install_on_connect(SQLiteEngine._connect_sync)  # type: ignore[method-assign]
    runtime = SQLiteSessionRuntime
    runtime._clear_rollback_sensitive_caches = _forget_on_rollback(  # type: ignore[method-assign,assignment]
        runtime._clear_rollback_sensitive_caches
    )
