"""The checkpoint file (append only) and the development signing key kept on disk.

The key: `WHISTLE_AUDIT_SIGNING_KEY` (the 32-byte Ed25519 private key, base64). Production
refuses to start without it. Development and tests generate one on first start and keep it in
`WHISTLE_AUDIT_SIGNING_KEY_FILE` (default `var/audit-signing-key`), and say so in the log.
The file (`WHISTLE_AUDIT_CHECKPOINT_FILE`) belongs where the database's writers cannot reach:
another disk, a log shipper, a WORM bucket. See `domain/checkpoints.py` for its lines.
"""

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services.audit.domain.checkpoints import (
    Checkpoint,
    encode_private_key,
    private_key_from,
    public_key_text,
    sign,
)
from services.audit.domain.merkle import Head
from shared.clock import utcnow

_log = structlog.get_logger("whistle.audit.checkpoints")


def development_key(path: Path) -> Ed25519PrivateKey:
    """The key kept at `path`, made on first use (readable by its owner only).

    Two replicas may start together on a fresh directory: the key is written whole to a file
    of its own, then linked into place, which fails if another got there first; the loser
    reads the winner's key, complete, so both sign with the same one."""
    if path.exists():
        return private_key_from(path.read_text())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    draft = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(encode_private_key(key) + "\n")
    try:
        os.link(draft, path)
    except FileExistsError:
        return private_key_from(path.read_text())
    finally:
        draft.unlink()
    _log.warning(
        "audit_development_signing_key_generated",
        path=str(path),
        public_key=public_key_text(key.public_key()),
        note="development only: production needs WHISTLE_AUDIT_SIGNING_KEY",
    )
    return key


class CheckpointWriter:
    """Signs heads and appends them, one JSON line each, to an append-only file."""

    def __init__(self, key: Ed25519PrivateKey, path: Path) -> None:
        self._key = key
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def sign(self, heads: Mapping[str, Head], at: datetime | None = None) -> Checkpoint:
        instant = (at or utcnow()).isoformat().replace("+00:00", "Z")
        return sign(self._key, heads, instant)

    def write(self, heads: Mapping[str, Head]) -> Checkpoint:
        checkpoint = self.sign(heads)
        # O_APPEND: every write lands at the end, whatever else (another replica) has it open.
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(descriptor, (checkpoint.line() + "\n").encode())
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        return checkpoint
