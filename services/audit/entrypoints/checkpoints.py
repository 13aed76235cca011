"""`GET /v1/checkpoints/latest`: the last signed checkpoint, checked.

What is signed (`domain/checkpoints.py`): the Merkle root of every partition's head and the
time, by audit's Ed25519 key. The answer says whether the signature verifies, whether it was
this audit's key that signed, whether the root is the root of the heads listed, and, for each
head, whether the log still holds that hash at that seq (a chain rewritten and re-hashed
verifies on its own, but no longer holds a pinned head)."""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.audit.adapters import log_store
from services.audit.adapters.checkpoint_reader import last_line
from services.audit.domain import merkle
from services.audit.domain.checkpoints import parse_line, signature_ok
from shared.auth import Principal, Role, require_roles
from shared.http.dependencies import Runtime
from shared.http.problems import ProblemError, not_found
from shared.store.mongo import Database

Auditor = Annotated[Principal, require_roles(Role.AUDITOR)]


class PinnedHead(BaseModel):
    partition: str
    seq: int
    hash: str
    in_log: bool = Field(description="the log still holds this hash at this seq")


class LatestCheckpoint(BaseModel):
    at: str = Field(description="when it was signed (RFC 3339, UTC)")
    format: int = Field(description="1: one chain's head; 2: the Merkle root of every head")
    root: str | None = Field(description="(format 2) the Merkle root signed")
    key: str = Field(description="the Ed25519 public key that signed it (base64)")
    signature: str = Field(description="the signature (hex)")
    signature_ok: bool = Field(
        description="the signature verifies, by this audit's key, over a root that is the "
        "root of the heads listed"
    )
    signed_by_this_audit: bool = Field(description="the key is this audit's own")
    root_matches_heads: bool
    heads: list[PinnedHead]
    heads_held: bool = Field(description="the log still holds every pinned head")


async def _held(db: Database, partition: str, seq: int, pinned: str) -> bool:
    if seq == 0:
        return True
    record = await db[log_store.EVENTS].find_one({"partition": partition, "seq": seq}, {"hash": 1})
    return record is not None and record.get("hash") == pinned


def checkpoints_router(path: Path, public_key: str) -> APIRouter:
    """The route reads `path` (the checkpoint file) and trusts `public_key` (this audit's)."""
    router = APIRouter(prefix="/v1", tags=["audit"])

    @router.get("/checkpoints/latest", response_model=LatestCheckpoint)
    async def latest_checkpoint(_: Auditor, runtime: Runtime) -> LatestCheckpoint:
        """The last line of the signed checkpoint file, with its checks (auditors)."""
        line = last_line(path)
        if line is None:
            raise not_found("checkpoint", "latest")
        try:
            checkpoint = parse_line(line)
        except (ValueError, KeyError, TypeError):
            raise ProblemError(
                503,
                "checkpoint-unreadable",
                "Checkpoint unreadable",
                "the last line of the checkpoint file is not a checkpoint",
            ) from None
        heads = [
            PinnedHead(
                partition=name,
                seq=seq,
                hash=pinned,
                in_log=await _held(runtime.db, name, seq, pinned),
            )
            for name, (seq, pinned) in sorted(checkpoint.heads.items())
        ]
        root_ok = checkpoint.version == 1 or merkle.root(checkpoint.heads) == checkpoint.root
        own = checkpoint.key == public_key
        return LatestCheckpoint(
            at=checkpoint.at,
            format=checkpoint.version,
            root=checkpoint.root or None,
            key=checkpoint.key,
            signature=checkpoint.sig,
            signature_ok=own and signature_ok(checkpoint),
            signed_by_this_audit=own,
            root_matches_heads=root_ok,
            heads=heads,
            heads_held=all(head.in_log for head in heads),
        )

    return router
