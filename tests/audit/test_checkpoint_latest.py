"""The last signed checkpoint as `GET /v1/checkpoints/latest` reads it: the file's last line,
read from its end, and its checks (signature, key, root) without I/O beyond the file."""

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.adapters.checkpoint_file import CheckpointWriter
from services.audit.adapters.checkpoint_reader import CHUNK, last_line
from services.audit.domain.checkpoints import parse_line, signature_ok

pytestmark = pytest.mark.unit


def test_the_last_line_is_read_from_the_end(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints.jsonl"
    assert last_line(path) is None
    path.write_text("")
    assert last_line(path) is None
    path.write_text("one\n")
    assert last_line(path) == "one"
    long = "x" * (3 * CHUNK)  # a line longer than one read
    path.write_text(f"one\n{long}\n\n")
    assert last_line(path) == long
    path.write_text("one\ntwo")  # a last line without its newline yet
    assert last_line(path) == "two"


def test_the_newest_checkpoint_verifies_and_a_changed_one_does_not(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    writer = CheckpointWriter(key, tmp_path / "checkpoints.jsonl")
    writer.write({"d-1": (3, "a" * 64)})
    writer.write({"d-1": (5, "b" * 64), "d-2": (1, "c" * 64)})
    line = last_line(writer.path)
    assert line is not None
    newest = parse_line(line)
    assert newest.heads == {"d-1": (5, "b" * 64), "d-2": (1, "c" * 64)}
    assert signature_ok(newest)
    forged = parse_line(line.replace("b" * 64, "e" * 64))
    assert not signature_ok(forged)  # the root no longer matches the heads
    other = Ed25519PrivateKey.generate()
    assert not signature_ok(newest, other.public_key())
