"""`Idempotency-Key` on creating POSTs: a repeat returns the first response, creates nothing.

The key is scoped to the whole caller (role, identity and `sub`: `Principal.scope_key`), so
two principals sharing a `sub` never replay each other's answers. The first request reserves
it; the response is stored in the same transaction as the state change it describes, so "created"
and "remembered" cannot come apart. Concurrent repeats wait for the first to finish and replay
its response; the same key with a different body is a 422; keys expire after 24 hours.
A reservation whose request failed is dropped, so a corrected retry may reuse the key.
"""

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pymongo.errors import DuplicateKeyError

from shared.clock import utcnow
from shared.http.problems import ProblemError
from shared.store.mongo import Database
from shared.store.unit_of_work import Tx

IDEMPOTENCY_COLLECTION = "idempotency_keys"
KEY_TTL = timedelta(hours=24)
RESERVATION_LEASE = timedelta(seconds=30)
MAX_KEY_LENGTH = 200


async def ensure_idempotency_indexes(db: Database) -> None:
    await db[IDEMPOTENCY_COLLECTION].create_index(
        "created_at", expireAfterSeconds=int(KEY_TTL.total_seconds())
    )


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any
    headers: dict[str, str]

    @classmethod
    def of(
        cls, body: BaseModel, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> "StoredResponse":
        """A response from an HTTP model, JSON-ready so it can be stored and replayed."""
        return cls(status, body.model_dump(mode="json"), dict(headers or {}))

    def response(self) -> JSONResponse:
        """The answer to the request that made it."""
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)

    def to_response(self) -> JSONResponse:
        """The answer to a repeat of the request: the same, marked as replayed."""
        return JSONResponse(
            self.body,
            status_code=self.status,
            headers={**self.headers, "Idempotent-Replayed": "true"},
        )


@dataclass(frozen=True)
class Reservation:
    record_id: str

    async def record(self, tx: Tx, response: StoredResponse) -> None:
        """Remember the response, inside the transaction that made the change."""
        await tx.db[IDEMPOTENCY_COLLECTION].update_one(
            {"_id": self.record_id},
            {
                "$set": {
                    "state": "done",
                    "response": {
                        "status": response.status,
                        "body": response.body,
                        "headers": response.headers,
                    },
                }
            },
            session=tx.session,
        )


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


class IdempotencyKeys:
    def __init__(self, db: Database, *, wait_s: float = 10.0) -> None:
        self._collection = db[IDEMPOTENCY_COLLECTION]
        self._wait_s = wait_s

    async def reserve(
        self, scope: str, key: str, request_fingerprint: str
    ) -> Reservation | StoredResponse:
        """Own the key (and go on to do the work) or get the first response to replay."""
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ProblemError(
                400,
                "invalid-idempotency-key",
                "Invalid Idempotency-Key",
                f"an Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters",
            )
        record_id = f"{scope}:{key}"
        deadline = asyncio.get_running_loop().time() + self._wait_s
        delay = 0.01
        while True:
            now = utcnow()
            try:
                await self._collection.insert_one(
                    {
                        "_id": record_id,
                        "fingerprint": request_fingerprint,
                        "state": "in_progress",
                        "lease_until": now + RESERVATION_LEASE,
                        "created_at": now,
                    }
                )
                return Reservation(record_id)
            except DuplicateKeyError:
                pass
            existing = await self._collection.find_one({"_id": record_id})
            if existing is None:
                continue  # dropped between our insert and read: try again
            if existing["created_at"] <= now - KEY_TTL:
                # Expired; MongoDB's TTL monitor (once a minute) just has not removed it yet.
                await self._collection.delete_one(
                    {"_id": record_id, "created_at": existing["created_at"]}
                )
                continue
            if existing["fingerprint"] != request_fingerprint:
                raise ProblemError(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "this Idempotency-Key was first used with a different request body",
                )
            if existing["state"] == "done":
                stored = existing["response"]
                return StoredResponse(stored["status"], stored["body"], dict(stored["headers"]))
            lease_until = existing["lease_until"]
            if lease_until < now:
                # The first request died before committing: take its reservation over.
                taken = await self._collection.update_one(
                    {"_id": record_id, "state": "in_progress", "lease_until": lease_until},
                    {"$set": {"lease_until": now + RESERVATION_LEASE}},
                )
                if taken.modified_count == 1:
                    return Reservation(record_id)
            if asyncio.get_running_loop().time() > deadline:
                raise ProblemError(
                    409,
                    "idempotency-key-in-use",
                    "Request in progress",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)

    async def abandon(self, reservation: Reservation) -> None:
        await self._collection.delete_one({"_id": reservation.record_id, "state": "in_progress"})
