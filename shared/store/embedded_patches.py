"""Narrow, version-pinned fixes to the embedded MongoDB stand-in (mongoeco), applied on import.

Each fix keeps MongoDB's semantics (tests/shared/test_embedded_patches.py checks them) and
touches only what Whistle's workload runs into:

- commitTransaction aborts a transaction whose commit failed, as MongoDB does.
- An insert's `_id` uniqueness check is answered from the primary key instead of decoding
  every stored document. mongoeco's SQLite engine passes `scan_payload_id=True` on every
  insert, so each insert cost O(collection) (measured: 250 documents decoded per insert at
  500 stored, 2,750 at 3,000). A non-numeric `_id` has one storage key, so the primary-key
  lookup mongoeco already does is complete. A numeric `_id` equals every other number of the
  same value (1 == 1.0 == Int64(1) == Decimal128("1") for MongoDB): those few storage keys are
  looked up directly, and only Decimal128 ids, whose spellings vary, are compared by value.

The fixes reach into mongoeco's internals, so they are written for one version. Another
version gets none of them (the stand-in then stays correct but slow) and says so loudly.
"""

import warnings
from collections.abc import Iterator
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
from mongoeco.core.identity import id_contains_numeric_value
from mongoeco.engines import SQLiteEngine
from mongoeco.types import Decimal128  # type: ignore[attr-defined]
from mongoeco.wire.sessions import WireSessionStore

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
    SQLiteEngine._whistle_patched = True  # type: ignore[attr-defined]
    return True
