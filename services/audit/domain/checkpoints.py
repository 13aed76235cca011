"""Signed checkpoints of the log's heads: the format, and checking a line (pure).

Anyone who can write `whistle_audit` can rewrite an event and re-hash the rest of its
partition's chain: the chain then verifies. A checkpoint pins every partition's head at once:
audit signs the Merkle root of the heads (`domain/merkle.py`) and the time with an Ed25519
key and appends the line to a file kept off the database's reach (`adapters/checkpoint_file.py`).
`whistle verify --checkpoints FILE` checks each line's signature, that its root is the root
of the heads it lists, and that the log still holds each of those hashes at its seq.

Signed bytes, so a verifier in another language needs no JSON canonicalisation:
- format 2 (every line written now): the UTF-8 of `whistle-audit-checkpoint/2:<root>:<at>`;
- format 1 (lines written before partitions, still checked): the UTF-8 of
  `whistle-audit-checkpoint/1:<seq>:<hash>:<at>`, the head of what is now partition `default`.
`at` is an RFC 3339 UTC instant.
"""

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from services.audit.domain import merkle
from services.audit.domain.merkle import Head
from services.audit.domain.partitions import DEFAULT

FORMAT_1 = "whistle-audit-checkpoint/1"
FORMAT = "whistle-audit-checkpoint/2"


class SigningKeyError(ValueError):
    pass


def signed_bytes_v1(seq: int, head_hash: str, at: str) -> bytes:
    return f"{FORMAT_1}:{seq}:{head_hash}:{at}".encode()


def signed_bytes(root: str, at: str) -> bytes:
    return f"{FORMAT}:{root}:{at}".encode()


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


@dataclass(frozen=True)
class Checkpoint:
    """Every partition's head at `at`, under one signed root."""

    heads: Mapping[str, Head]
    at: str
    key: str
    sig: str
    root: str = ""
    version: int = 2

    def line(self) -> str:
        body = {
            "v": self.version,
            "root": self.root,
            "heads": {name: [seq, h] for name, (seq, h) in sorted(self.heads.items())},
            "at": self.at,
            "key": self.key,
            "sig": self.sig,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)

    def signed(self) -> bytes:
        if self.version == 1:
            [(seq, head_hash)] = self.heads.values()
            return signed_bytes_v1(seq, head_hash, self.at)
        return signed_bytes(self.root, self.at)


def sign(key: Ed25519PrivateKey, heads: Mapping[str, Head], at: str) -> Checkpoint:
    root = merkle.root(heads)
    signature = key.sign(signed_bytes(root, at))
    return Checkpoint(dict(heads), at, public_key_text(key.public_key()), signature.hex(), root)


def parse_line(line: str) -> Checkpoint:
    data: Any = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a checkpoint line is a JSON object")
    if "seq" in data:  # format 1: one chain, now partition `default`
        head = (int(data["seq"]), str(data["hash"]))
        return Checkpoint(
            {DEFAULT: head}, str(data["at"]), str(data["key"]), str(data["sig"]), root="", version=1
        )
    heads_in = data["heads"]
    if not isinstance(heads_in, dict):
        raise ValueError("heads is an object of partition -> [seq, hash]")
    heads = {str(name): (int(seq), str(h)) for name, (seq, h) in heads_in.items()}
    return Checkpoint(
        heads,
        str(data["at"]),
        str(data["key"]),
        str(data["sig"]),
        root=str(data["root"]),
        version=int(data.get("v", 2)),
    )


def signature_ok(checkpoint: Checkpoint, trusted: Ed25519PublicKey | None = None) -> bool:
    """The line was signed by its key (the trusted one, when given), and for format 2 its
    root is the root of the heads it lists."""
    try:
        key = public_key_from(checkpoint.key)
        if trusted is not None and public_key_text(trusted) != checkpoint.key:
            return False
        if checkpoint.version != 1 and merkle.root(checkpoint.heads) != checkpoint.root:
            return False
        key.verify(bytes.fromhex(checkpoint.sig), checkpoint.signed())
    except (InvalidSignature, SigningKeyError, ValueError):
        return False
    return True
