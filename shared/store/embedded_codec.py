"""The stand-in's document encoder validates each document once, not once per level (part of
embedded_patches.py's fixes, pinned to the same mongoeco version).

mongoeco's `DocumentCodec.encode` checks a value with `validate_bson_value` (every key a
string, no sets, integers within int64, Decimal128s that normalise) and then encodes it,
recursing into each member, whose own encode checks that member's whole subtree again. A
document is encoded several times on its way in (the insert's boundary copy, its stored JSON)
and a CloudEvent in audit's log nests four levels deep: the checks were most of the encoding,
and encoding about half of the store's time under audit's ingest (12 million `isinstance`
calls for 2,000 records).

Here the outermost encode checks the whole value once, as mongoeco's first check already did,
and the encodes nested in it skip the check of what was just checked. The same values are
refused with the same errors, before anything is encoded. The check itself takes the common
plain values (text, None, booleans, floats, int32/int64 integers) without building a BSON
wrapper for each, and the encoding takes plain values, dicts and lists as mongoeco's own
branches for them do; anything else goes through mongoeco's own check and encode.
"""

import datetime
import threading
from typing import Any

from mongoeco.core import codec as mongoeco_codec
from mongoeco.core.bson_scalars import INT64_MAX, INT64_MIN, BsonScalarOverflowError
from mongoeco.core.codec import DocumentCodec

_original_encode = DocumentCodec.encode
_original_validate = mongoeco_codec.validate_bson_value  # type: ignore[attr-defined]
# Values mongoeco's check lets through untouched, and values its encode returns as they are.
_VALID_AS_THEY_ARE = (str, type(None), bool, float, datetime.datetime)
_ENCODED_AS_THEY_ARE = (str, type(None), bool, float, int)


class _Encoding(threading.local):
    inside = False


_encoding = _Encoding()


def _validate(value: Any) -> None:
    """mongoeco's `validate_bson_value`, with the plain values decided without a wrapper."""
    pending = [value]
    while pending:
        current = pending.pop()
        kind = type(current)
        if kind is dict:
            for key in current:
                if type(key) is not str and not isinstance(key, str):
                    raise TypeError("BSON document keys must be strings")
            pending.extend(current.values())
        elif kind is list:
            pending.extend(current)
        elif kind in _VALID_AS_THEY_ARE:
            continue
        elif kind is int:
            if current < INT64_MIN or current > INT64_MAX:
                raise BsonScalarOverflowError("integer exceeds BSON int64 range")
        else:
            _original_validate(current)  # subclasses, tuples, sets, numbers of BSON's own


def _checked_by_the_outermost(value: Any) -> None:
    if not _encoding.inside:
        _validate(value)


def _encode_checked(data: Any) -> Any:
    """mongoeco's encode of an already checked value, with the plain shapes taken first: a
    plain value is its own encoding, and a dict or list is its members' (mongoeco's encode
    asks some thirty `isinstance` questions of each value before it reaches those)."""
    kind = type(data)
    if kind in _ENCODED_AS_THEY_ARE:
        return data
    if kind is dict:
        encoded = {key: _encode_checked(value) for key, value in data.items()}
        if DocumentCodec._is_tagged_value(encoded):  # a stored dict that looks like a tag
            return DocumentCodec._tagged_value("dict", encoded)
        return encoded
    if kind is list:
        return [_encode_checked(value) for value in data]
    return _original_encode(data)


def _encode(data: Any) -> Any:
    if _encoding.inside:
        return _encode_checked(data)
    _validate(data)
    _encoding.inside = True
    try:
        return _encode_checked(data)
    finally:
        _encoding.inside = False


def apply() -> None:
    mongoeco_codec.validate_bson_value = _checked_by_the_outermost  # type: ignore[attr-defined]
    DocumentCodec.encode = staticmethod(_encode)  # type: ignore[method-assign]
