"""Signed checkpoints without I/O beyond a temporary file: signing, verifying, the key rules."""

import base64
import concurrent.futures
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from services.audit.adapters.checkpoint_file import CheckpointWriter, development_key
from services.audit.config import AuditSettings
from services.audit.domain import merkle
from services.audit.domain.checkpoints import (
    encode_private_key,
    parse_line,
    public_key_from,
    public_key_text,
    signature_ok,
    signed_bytes,
    signed_bytes_v1,
)

pytestmark = pytest.mark.unit

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
HEADS = {"d-1": (3, "a" * 64), "d-2": (1, "b" * 64), "default": (7, "c" * 64)}


def test_the_signed_bytes_are_a_plain_string_another_language_can_rebuild() -> None:
    assert signed_bytes("ab" * 32, "2030-05-01T08:00:00Z") == (
        b"whistle-audit-checkpoint/2:" + b"ab" * 32 + b":2030-05-01T08:00:00Z"
    )
    assert signed_bytes_v1(42, "ab" * 32, "2030-05-01T08:00:00Z") == (
        b"whistle-audit-checkpoint/1:42:" + b"ab" * 32 + b":2030-05-01T08:00:00Z"
    )


def test_the_root_covers_every_head_and_tells_a_leaf_from_a_node() -> None:
    root = merkle.root(HEADS)
    assert root == merkle.root(dict(reversed(list(HEADS.items()))))  # order given is irrelevant
    for name in HEADS:
        assert merkle.root({**HEADS, name: (HEADS[name][0] + 1, HEADS[name][1])}) != root
        assert merkle.root({k: v for k, v in HEADS.items() if k != name}) != root
    assert merkle.root({**HEADS, "d-3": (1, "d" * 64)}) != root
    assert merkle.root({"only": (1, "a" * 64)}) == merkle.leaf("only", 1, "a" * 64).hex()
    assert len({merkle.root({}), merkle.root({"x": (0, "0" * 64)})}) == 2


def test_a_written_line_verifies_and_any_change_to_it_does_not(tmp_path: Path) -> None:
    writer = CheckpointWriter(KEY, tmp_path / "c.jsonl")
    writer.write(HEADS)
    writer.write({**HEADS, "d-2": (2, "e" * 64)})
    lines = (tmp_path / "c.jsonl").read_text().splitlines()
    assert len(lines) == 2  # appended, not overwritten
    first = parse_line(lines[0])
    assert first.heads == HEADS
    assert first.root == merkle.root(HEADS)
    assert signature_ok(first)
    assert signature_ok(first, KEY.public_key())
    assert not signature_ok(first, Ed25519PrivateKey.generate().public_key())
    body = json.loads(lines[0])
    changed = [
        {**body, "at": "2031-01-01T00:00:00Z"},
        {**body, "root": "f" * 64},
        {**body, "heads": {**body["heads"], "d-1": [4, "a" * 64]}},
        {**body, "heads": {**body["heads"], "d-9": [1, "a" * 64]}},
    ]
    for line in changed:
        assert not signature_ok(parse_line(json.dumps(line)))
    # A line that re-roots forged heads fails the signature (the key is not the forger's).
    forged_heads = {**body["heads"], "d-1": [3, "f" * 64]}
    forged = {**body, "heads": forged_heads}
    forged["root"] = merkle.root({k: (v[0], v[1]) for k, v in forged_heads.items()})
    assert not signature_ok(parse_line(json.dumps(forged)))


def test_a_line_of_the_single_chain_version_is_partition_default_and_still_verifies() -> None:
    at = "2030-05-01T08:00:00Z"
    sig = KEY.sign(signed_bytes_v1(42, "ab" * 32, at)).hex()
    line = json.dumps(
        {
            "seq": 42,
            "hash": "ab" * 32,
            "at": at,
            "key": public_key_text(KEY.public_key()),
            "sig": sig,
        }
    )
    old = parse_line(line)
    assert old.version == 1
    assert old.heads == {"default": (42, "ab" * 32)}
    assert signature_ok(old, KEY.public_key())
    assert not signature_ok(parse_line(line.replace('"seq": 42', '"seq": 43')))


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


def test_replicas_starting_together_on_a_fresh_directory_share_one_key(tmp_path: Path) -> None:
    """Two audit processes made the key at once: one won, the other failed to start."""
    path = tmp_path / "var" / "audit-signing-key"
    with concurrent.futures.ProcessPoolExecutor(4) as pool:
        keys = list(pool.map(_public_key_made_at, [path] * 8))
    assert len(set(keys)) == 1
    assert keys[0] == _public_key_made_at(path)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no draft left behind


def _public_key_made_at(path: Path) -> str:
    return public_key_text(development_key(path).public_key())
