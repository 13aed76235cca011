"""The one way an HTTP command runs: serialised where it must be, once per Idempotency-Key,
in a unit of work under the request's cause, answered with the response stored with it.

A route reads: parse -> authorise (the service's `domain/access.py`) -> execute -> present:

    @router.post("/demands/{demand_id}/claims", status_code=201, response_model=ClaimOut)
    async def claim_demand(demand_id: str, body: ClaimIn, request: Request,
                           principal: Claimer, runtime: Runtime) -> JSONResponse:
        command = Claim(demand_id=demand_id, **body.model_dump())
        return await execute(
            runtime, request, principal,
            lambda tx: commands.claim(tx, command, principal),
            present=lambda claim: StoredResponse.of(
                ClaimOut.of(claim), 201, {"Location": f"/v1/claims/{claim.id}"}
            ),
            serialise_on=demand_id,
        )

- `work` runs in `runtime.uow` under `Cause.of_request(service, principal.sub)`: every
  event it emits (`tx.emit(data, subject=...)`) says who asked and which request caused it.
- `present` turns the result into the response inside the same transaction, so with an
  `Idempotency-Key` the response is remembered atomically with the change it describes; a
  repeat is answered from it (`Idempotent-Replayed: true`) and changes nothing.
- `serialise_on`: commands with the same key run one at a time in this process (see
  `KeyedGate`); for a hot record, so that fifty concurrent claims on one demand queue here
  instead of conflicting in the database. Never needed for correctness.
- Retries: none here. The unit of work's single policy (`shared.store.unit_of_work.RETRY`)
  runs a conflicting transaction again; when it gives up the client hears 503 `busy`.
"""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import Request
from fastapi.responses import JSONResponse

from shared.auth import Principal
from shared.http.idempotency_keys import IdempotencyKeys, StoredResponse, fingerprint
from shared.store.unit_of_work import Cause, Tx, UnitOfWork

# A key known before the command runs, or a way to look it up (e.g. a claim's demand).
SerialKey = str | Callable[[], Awaitable[str]]


class KeyedGate:
    """One holder per key at a time in this process; the others wait their turn (FIFO).

    Correctness never rests on this: the writes are atomic conditional updates, which hold
    across replicas. The gate keeps a hot key from turning into many transactions that all
    write the same document and retry each other's conflicts; across replicas at most one
    per process contends."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._holders: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._holders[key] = self._holders.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._holders[key] -= 1
            if self._holders[key] == 0:  # nobody waits: forget the key, the dict stays small
                del self._holders[key]
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


class CommandRuntime(Protocol):
    """What `execute` needs of a service (`shared.runtime.ServiceRuntime` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def uow(self) -> UnitOfWork: ...
    @property
    def idempotency(self) -> IdempotencyKeys: ...


# Keys are namespaced by service: two services in one process (tests) never share a turn.
_GATE = KeyedGate()


async def execute[T](
    runtime: CommandRuntime,
    request: Request | None,
    principal: Principal,
    work: Callable[[Tx], Awaitable[T]],
    *,
    present: Callable[[T], StoredResponse],
    serialise_on: SerialKey | None = None,
    idempotent: bool = True,
) -> JSONResponse:
    """Run one command and answer it (see the module docstring).

    `idempotent=False` (or no `request`) for a command whose repeat must be decided again;
    an `Idempotency-Key` header is then ignored."""
    cause = Cause.of_request(runtime.name, principal.sub)
    if not idempotent:
        request = None  # its Idempotency-Key, if any, is not honoured
    if serialise_on is None:
        return await _run_once(runtime, request, principal.scope_key, work, present, cause)
    key = serialise_on if isinstance(serialise_on, str) else await serialise_on()
    async with _GATE.hold(f"{runtime.name}:{key}"):
        return await _run_once(runtime, request, principal.scope_key, work, present, cause)


async def _run_once[T](
    runtime: CommandRuntime,
    request: Request | None,
    scope: str,
    work: Callable[[Tx], Awaitable[T]],
    present: Callable[[T], StoredResponse],
    cause: Cause,
) -> JSONResponse:
    """The command in its transaction; once per Idempotency-Key when `request` has one."""
    key = request.headers.get("idempotency-key") if request is not None else None
    reservation = None
    if request is not None and key is not None:
        body = await request.body()
        outcome = await runtime.idempotency.reserve(
            scope, key, fingerprint(request.method, request.url.path, body)
        )
        if isinstance(outcome, StoredResponse):
            return outcome.to_response()
        reservation = outcome

    async def run(tx: Tx) -> StoredResponse:
        stored = present(await work(tx))
        if reservation is not None:
            await reservation.record(tx, stored)
        return stored

    try:
        stored = await runtime.uow.run(run, cause=cause)
    except BaseException:
        if reservation is not None:
            # Failed (a refusal, busy): the key is free again for a corrected retry.
            await runtime.idempotency.abandon(reservation)
        raise
    return stored.response()
