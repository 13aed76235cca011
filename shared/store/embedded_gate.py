"""One command, and one transaction, at a time on an embedded server: others wait, bounded.

mongoeco's SQLite engine holds a single transaction for the whole store and refuses every
other session's command meanwhile ("active transaction bound to another session", "database
is locked"); its memory engine detects conflicts with one global version, so concurrent
transactions mostly conflict. MongoDB would simply let them proceed. The gate makes commands
run one at a time (SQLite's own locks then never collide), and a command from another session
waits while a transaction is open.

The wait is bounded (`WAIT_S`): a command that cannot get its turn is answered, without being
run, with MongoDB's own MaxTimeMSExpired error (code 50), labelled TransientTransactionError
when it belongs to a transaction. The unit of work retries such a transaction; the HTTP side
answers a read that timed out 503 `busy` with Retry-After (shared/http: store busy). Nothing
is ever let through while another session's transaction is open: that is what turned
contention into 500s.

A transaction whose client went quiet (no command for `IDLE_ABORT_S`, e.g. a process killed
mid-transaction) or that outlived `STALE_AFTER_S` is aborted, as MongoDB's transaction
lifetime limit would, so a restarted service finds its store free again.
"""

import asyncio
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

import structlog
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire._session_identity import wire_session_key
from mongoeco.wire.protocol import OP_MSG, decode_op_msg, encode_op_msg_response

STALE_AFTER_S = 60.0
IDLE_ABORT_S = 10.0
WAIT_S = 5.0
MAX_TIME_MS_EXPIRED = 50
_ENDS_TRANSACTION = frozenset({"commitTransaction", "abortTransaction"})

_log = structlog.get_logger("whistle.embedded")


@dataclass(frozen=True)
class _Facts:
    key: str | None
    command: str
    starts: bool
    ends: bool
    in_transaction: bool


_NO_SESSION = _Facts(None, "", starts=False, ends=False, in_transaction=False)


def _transaction_facts(header: Any, payload: bytes) -> _Facts:
    if header.op_code != OP_MSG:
        return _NO_SESSION
    try:
        body = decode_op_msg(header, payload).body
    except Exception:
        return _NO_SESSION  # the server itself answers the malformed message
    lsid = body.get("lsid")
    if lsid is None:
        return _NO_SESSION
    command = next(iter(body), "")
    return _Facts(
        wire_session_key(lsid),
        command,
        starts=body.get("startTransaction") is True,
        ends=command in _ENDS_TRANSACTION,
        in_transaction=body.get("autocommit") is False,
    )


def busy_reply(header: Any, facts: _Facts, waited_s: float) -> bytes:
    """MongoDB's answer to a command that ran out of time, for a command that never ran."""
    reply: dict[str, Any] = {
        "ok": 0.0,
        "errmsg": (
            f"the embedded store stayed busy with another session's transaction for "
            f"{waited_s:.1f} s; {facts.command} was not run"
        ),
        "code": MAX_TIME_MS_EXPIRED,
        "codeName": "MaxTimeMSExpired",
    }
    if facts.in_transaction:
        reply["errorLabels"] = ["TransientTransactionError"]
    return encode_op_msg_response(reply, request_id=0, response_to=header.request_id)


class StoreBusy(Exception):
    pass


class SerialTransactionServer(AsyncMongoEcoProxyServer):  # type: ignore[misc]
    def __init__(self, *, wait_s: float = WAIT_S, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.wait_s = wait_s
        self._owner: str | None = None
        self._owned_since = 0.0
        self._owner_seen = 0.0
        self._busy = False
        self._turn = asyncio.Condition()

    async def _dispatch_wire_request(
        self, header: Any, payload: bytes, *, connection: Any
    ) -> bytes | None:
        facts = _transaction_facts(header, payload)
        if facts.key is None or (facts.command == "abortTransaction" and not self._owns(facts)):
            # Handshakes and monitoring carry no session: holding them back would starve the
            # pool of new connections, which a transaction may need to finish. Aborting a
            # transaction that holds nothing touches no data.
            response: bytes | None = await super()._dispatch_wire_request(
                header, payload, connection=connection
            )
            return response
        arrived = time.monotonic()
        try:
            await self._admit(facts, arrived)
        except StoreBusy:
            waited = time.monotonic() - arrived
            _log.warning("embedded_store_busy", command=facts.command, waited_s=round(waited, 2))
            return busy_reply(header, facts, waited)
        try:
            return cast(
                bytes | None,
                await super()._dispatch_wire_request(header, payload, connection=connection),
            )
        finally:
            async with self._turn:
                self._busy = False
                if facts.key == self._owner:
                    self._owner_seen = time.monotonic()
                    if facts.ends:
                        self._owner = None
                self._turn.notify_all()

    def _owns(self, facts: _Facts) -> bool:
        return self._owner is not None and self._owner == facts.key

    async def _admit(self, facts: _Facts, arrived: float) -> None:
        async with self._turn:
            while self._busy or (self._owner is not None and self._owner != facts.key):
                now = time.monotonic()
                if not self._busy and self._owner is not None and self._owner_is_stale(now):
                    self._abort_stale(self._owner)
                    continue
                remaining = arrived + self.wait_s - now
                if remaining <= 0:
                    raise StoreBusy
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._turn.wait(), min(remaining, 0.5))
            self._busy = True
            if facts.starts:
                self._owner = facts.key
                self._owned_since = self._owner_seen = time.monotonic()

    def _owner_is_stale(self, now: float) -> bool:
        return now - self._owner_seen > IDLE_ABORT_S or now - self._owned_since > STALE_AFTER_S

    def _abort_stale(self, key: str | None) -> None:
        _log.warning(
            "embedded_stale_transaction_aborted", idle_after_s=IDLE_ABORT_S, after_s=STALE_AFTER_S
        )
        self._owner = None
        sessions = getattr(self._session_store, "_sessions", {})
        context = sessions.get(key) if key is not None else None
        if context is not None and context.session.transaction_active:
            with suppress(Exception):
                context.session.abort_transaction()
