"""Signed checkpoints of the log's head, written where the database's writers cannot reach.

Anyone who can write `whistle_audit` can rewrite an event and re-hash the rest of the chain:
the chain then verifies. A checkpoint pins the head: audit signs `(seq, hash, at)` with an
Ed25519 key and appends the line to a file (`WHISTLE_AUDIT_CHECKPOINT_FILE`, opened for
append only). Keep that file off the database's reach: another disk, a log shipper, a WORM
bucket. `whistle verify --checkpoints FILE` checks each line's signature and that the log
still holds that hash at that seq; a rewritten chain fails there.

The signed bytes are the UTF-8 of `whistle-audit-checkpoint/1:<seq>:<hash>:<at>`, `at` an
RFC 3339 UTC instant, so a verifier in another language needs no JSON canonicalisation.

The key: `WHISTLE_AUDIT_SIGNING_KEY` (the 32-byte Ed25519 private key, base64). Production
refuses to start without it. Development and tests generate one on first start and keep it in
`WHISTLE_AUDIT_SIGNING_KEY_FILE` (default `var/audit-signing-key`), and say so in the log.
"""

import base64
import binascii
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from shared.clock import utcnow

_log = structlog.get_logger("whistle.audit.checkpoints")

FORMAT = "whistle-audit-checkpoint/1"


class SigningKeyError(ValueError):
    pass


def signed_bytes(seq: int, head_hash: str, at: str) -> bytes:
    return f"{FORMAT}:{seq}:{head_hash}:{at}".encode()


def private_key_from(text: str) -> Ed25519PrivateKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise SigningKeyError("WHISTLE_AUDIT_SIGNING_KEY is not base64") from None
    if len(raw) != 32:
        raise SigningKeyError(
            f"WHISTLE_AUDIT_SIGNING_KEY must be a 32-byte Ed25519 private key, got {len(raw)}"
        )
    return Ed25519PrivateKey.from_private_bytes(raw)


def encode_private_key(key: Ed25519PrivateKey) -> str:
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def public_key_from(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise SigningKeyError("not a base64 Ed25519 public key") from None


def development_key(path: Path) -> Ed25519PrivateKey:
    """The key kept at `path`, made on first use (readable by its owner only)."""
    if path.exists():
        return private_key_from(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(encode_private_key(key) + "\n")
    _log.warning(
        "audit_development_signing_key_generated",
        path=str(path),
        public_key=public_key_text(key.public_key()),
        note="development only: production needs WHISTLE_AUDIT_SIGNING_KEY",
    )
    return key


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    hash: str
    at: str
    key: str
    sig: str

    def line(self) -> str:
        return json.dumps(self.__dict__, separators=(",", ":"))


class CheckpointWriter:
    """Signs heads and appends them, one JSON line each, to an append-only file."""

    def __init__(self, key: Ed25519PrivateKey, path: Path) -> None:
        self._key = key
        self._public = public_key_text(key.public_key())
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def sign(self, seq: int, head_hash: str, at: datetime | None = None) -> Checkpoint:
        instant = (at or utcnow()).isoformat().replace("+00:00", "Z")
        signature = self._key.sign(signed_bytes(seq, head_hash, instant))
        return Checkpoint(seq, head_hash, instant, self._public, signature.hex())

    def write(self, seq: int, head_hash: str) -> Checkpoint:
        checkpoint = self.sign(seq, head_hash)
        # O_APPEND: every write lands at the end, whatever else has the file open.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, (checkpoint.line() + "\n").encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return checkpoint


def parse_line(line: str) -> Checkpoint:
    data: Any = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a checkpoint line is a JSON object")
    return Checkpoint(
        seq=int(data["seq"]),
        hash=str(data["hash"]),
        at=str(data["at"]),
        key=str(data["key"]),
        sig=str(data["sig"]),
    )


def signature_ok(checkpoint: Checkpoint, trusted: Ed25519PublicKey | None = None) -> bool:
    """The line was signed by its key (and that key is the trusted one, when given)."""
    try:
        key = public_key_from(checkpoint.key)
        if trusted is not None and public_key_text(trusted) != checkpoint.key:
            return False
        key.verify(
            bytes.fromhex(checkpoint.sig),
            signed_bytes(checkpoint.seq, checkpoint.hash, checkpoint.at),
        )
    except (InvalidSignature, SigningKeyError, ValueError):
        return False
    return True
