"""One command, and one transaction, at a time on the embedded server: others wait.

mongoeco's SQLite engine holds a single transaction for the whole store and refuses every
other session's command meanwhile ("active transaction bound to another session", "database
is locked"); its memory engine detects conflicts with one global version, so concurrent
transactions mostly conflict. MongoDB would simply let them proceed. The gate makes
commands run one at a time (SQLite's own locks then never collide) and commands from other
sessions wait while a transaction is open, so four services sharing the stand-in see
delays rather than errors. A transaction left open by a client that died
is aborted after `STALE_AFTER_S`, as MongoDB's transaction lifetime limit would.
"""

import asyncio
import time
from contextlib import suppress
from typing import Any, cast

import structlog
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire._session_identity import wire_session_key
from mongoeco.wire.protocol import OP_MSG, decode_op_msg

STALE_AFTER_S = 60.0
PATIENCE_S = 2.0
_ENDS_TRANSACTION = frozenset({"commitTransaction", "abortTransaction"})

_log = structlog.get_logger("whistle.embedded")


def _transaction_facts(header: Any, payload: bytes) -> tuple[str | None, bool, bool]:
    """(session key, starts a transaction, ends one) of an OP_MSG command."""
    if header.op_code != OP_MSG:
        return None, False, False
    try:
        body = decode_op_msg(header, payload).body
    except Exception:
        return None, False, False  # the server itself answers the malformed message
    lsid = body.get("lsid")
    if lsid is None:
        return None, False, False
    command = next(iter(body), "")
    return (
        wire_session_key(lsid),
        body.get("startTransaction") is True,
        command in _ENDS_TRANSACTION,
    )


class SerialTransactionServer(AsyncMongoEcoProxyServer):  # type: ignore[misc]
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._owner: str | None = None
        self._owned_since = 0.0
        self._busy = False
        self._turn = asyncio.Condition()

    async def _dispatch_wire_request(
        self, header: Any, payload: bytes, *, connection: Any
    ) -> bytes | None:
        key, starts, ends = _transaction_facts(header, payload)
        if key is None:
            # Handshakes and monitoring carry no session: holding them back would starve the
            # pool of new connections, which a transaction may need to finish.
            response: bytes | None = await super()._dispatch_wire_request(
                header, payload, connection=connection
            )
            return response
        await self._admit(key, starts)
        try:
            return cast(
                bytes | None,
                await super()._dispatch_wire_request(header, payload, connection=connection),
            )
        finally:
            async with self._turn:
                self._busy = False
                if ends and key == self._owner:
                    self._owner = None
                self._turn.notify_all()

    async def _admit(self, key: str, starts: bool) -> None:
        arrived = time.monotonic()
        async with self._turn:
            while self._busy or (self._owner is not None and self._owner != key):
                now = time.monotonic()
                if not self._busy and now - self._owned_since > STALE_AFTER_S:
                    self._abort_stale(self._owner)
                    continue
                if not self._busy and now - arrived > PATIENCE_S:
                    # Perhaps the owner itself waits on this command (an operation outside
                    # its session): run it alongside, as the server would without the gate.
                    _log.warning("embedded_transaction_wait_exceeded", waited_s=PATIENCE_S)
                    break
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._turn.wait(), 0.5)
            self._busy = True
            if starts:
                self._owner = key
                self._owned_since = time.monotonic()

    def _abort_stale(self, key: str | None) -> None:
        _log.warning("embedded_stale_transaction_aborted", after_s=STALE_AFTER_S)
        self._owner = None
        sessions = getattr(self._session_store, "_sessions", {})
        context = sessions.get(key) if key is not None else None
        if context is not None and context.session.transaction_active:
            with suppress(Exception):
                context.session.abort_transaction()
