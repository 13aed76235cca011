"""Signed checkpoints without I/O beyond a temporary file: signing, verifying, the key rules."""

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from services.audit.checkpoints import (
    CheckpointWriter,
    development_key,
    encode_private_key,
    parse_line,
    public_key_from,
    signature_ok,
    signed_bytes,
)
from services.audit.config import AuditSettings

pytestmark = pytest.mark.unit

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def test_the_signed_bytes_are_a_plain_string_another_language_can_rebuild() -> None:
    assert signed_bytes(42, "ab" * 32, "2030-05-01T08:00:00Z") == (
        b"whistle-audit-checkpoint/1:42:" + b"ab" * 32 + b":2030-05-01T08:00:00Z"
    )


def test_a_written_line_verifies_and_any_change_to_it_does_not(tmp_path: Path) -> None:
    writer = CheckpointWriter(KEY, tmp_path / "c.jsonl")
    writer.write(1, "a" * 64)
    writer.write(2, "b" * 64)
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert len(lines) == 2  # appended, not overwritten
    first = parse_line(lines[0])
    assert signature_ok(first)
    assert signature_ok(first, KEY.public_key())
    assert not signature_ok(first, Ed25519PrivateKey.generate().public_key())
    for field, value in (("seq", 3), ("hash", "c" * 64), ("at", "2031-01-01T00:00:00Z")):
        assert not signature_ok(parse_line(json.dumps({**json.loads(lines[0]), field: value})))


def test_production_needs_a_signing_key_and_development_makes_and_keeps_one(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationError, match="WHISTLE_AUDIT_SIGNING_KEY"):
        AuditSettings(env="production", jwt_secret="x" * 40)
    given = AuditSettings(
        env="production", jwt_secret="x" * 40, signing_key=encode_private_key(KEY)
    )
    assert given.signing_key is not None
    path = tmp_path / "var" / "key"
    made = development_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again = development_key(path)
    assert encode_private_key(made) == encode_private_key(again)
    assert public_key_from(base64.b64encode(bytes(32)).decode()) is not None
