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
lifetime limit would, so a restarted service finds its store free again. Its session's later
commands in that transaction are answered NoSuchTransaction (TransientTransactionError), as
MongoDB answers them: left to mongoeco, they silently began a new transaction that committed
the rest of the work without its first writes.

Commands without a session (PyMongo's background killCursors, a raw client) take their turn
like any other; only the handshake and monitoring commands (`ping` included, with or without
a session), which touch no data, pass at once, so /readyz does not fail while a store works.
Whatever contention still reaches mongoeco ("active transaction bound to another session",
SQLite's "database is locked") comes back as the same busy answer, never as a bare error that
the services could only report as a 500.
"""

import asyncio
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, cast

import bson
import structlog
from bson.raw_bson import RawBSONDocument
from mongoeco.wire import AsyncMongoEcoProxyServer
from mongoeco.wire._session_identity import wire_session_key
from mongoeco.wire.bson_bridge import decode_wire_value
from mongoeco.wire.protocol import OP_MSG, OP_MSG_CHECKSUM_PRESENT, encode_op_msg_response

STALE_AFTER_S = 60.0
IDLE_ABORT_S = 10.0
WAIT_S = 5.0
MAX_TIME_MS_EXPIRED = 50
NO_SUCH_TRANSACTION = 251
CONTENTION_RETRY_S = 0.05
_ENDS_TRANSACTION = frozenset({"commitTransaction", "abortTransaction"})
# Connection handshakes, monitoring and authentication: no data, no engine, never held back.
_UNGATED = frozenset(
    {
        "hello",
        "isMaster",
        "ismaster",
        "ping",
        "buildInfo",
        "buildinfo",
        "saslStart",
        "saslContinue",
        "getnonce",
        "endSessions",
        "getParameter",
        "getLog",
        "whatsmyuri",
        "connectionStatus",
        "hostInfo",
        "serverStatus",
    }
)
# How mongoeco and SQLite say "someone else holds the store": contention, not a fault.
_CONTENTION_MESSAGES = (
    b"bound to another session",
    b"database is locked",
    b"database table is locked",
    b"requires rollback after failed write cleanup",
    b"Cannot commit during an active SQLite write scope",
)

_log = structlog.get_logger("whistle.embedded")


@dataclass(frozen=True)
class _Facts:
    key: str | None
    command: str
    starts: bool
    ends: bool
    in_transaction: bool


_NO_SESSION = _Facts(None, "", starts=False, ends=False, in_transaction=False)
_SESSIONLESS = "\x00sessionless"  # never a wire session key (those are hex digests)


def _op_msg_body(payload: bytes) -> RawBSONDocument:
    """An OP_MSG's body section, without its document sequences, and decoded only at its top
    level: the facts are all there. Decoding an insert's documents here (as mongoeco's
    `decode_op_msg` does, only to decode them again to run it) took a third of the gate's time
    under audit's ingest; decoding a find's filter and converting every value as mongoeco
    does, a tenth of the store's time under the load run. mongoeco decodes it all anyway."""
    flags = int.from_bytes(payload[:4], "little")
    end = len(payload) - 4 if flags & OP_MSG_CHECKSUM_PRESENT else len(payload)
    position = 4
    while position < end:
        kind = payload[position]
        size = int.from_bytes(payload[position + 1 : position + 5], "little", signed=True)
        if size <= 0 or position + 1 + size > end:
            break
        if kind == 0:
            return RawBSONDocument(payload[position + 1 : position + 1 + size])
        position += 1 + size  # a document sequence: its size counts itself, not the kind byte
    raise ValueError("no body section")


def _session_key(lsid: Any) -> str:
    # The key mongoeco derives for the session: from the lsid decoded as mongoeco decodes it.
    if isinstance(lsid, RawBSONDocument):
        lsid = bson.decode(lsid.raw)
    return wire_session_key(decode_wire_value(lsid))


def _transaction_facts(header: Any, payload: bytes) -> _Facts:
    if header.op_code != OP_MSG:
        return _NO_SESSION
    try:
        body = _op_msg_body(payload)
        command = next(iter(body), "")
        if command in _UNGATED:
            # No data, no engine (PyMongo sends even `ping` with a session): a readiness
            # probe must not wait behind a transaction, or a busy store reads as a dead service.
            return _NO_SESSION
        lsid = body.get("lsid")
        if lsid is None:
            # A data command with no session is nobody's transaction: it waits like any other.
            return _Facts(_SESSIONLESS, command, starts=False, ends=False, in_transaction=False)
        return _Facts(
            _session_key(lsid),
            command,
            starts=body.get("startTransaction") is True,
            ends=command in _ENDS_TRANSACTION,
            in_transaction=body.get("autocommit") is False,
        )
    except Exception:
        return _NO_SESSION  # the server itself answers the malformed message


def busy_reply(
    header: Any, facts: _Facts, waited_s: float, *, held_by: str = "another session's transaction"
) -> bytes:
    """MongoDB's answer to a command that ran out of time, for a command that never ran."""
    reply: dict[str, Any] = {
        "ok": 0.0,
        "errmsg": (
            f"the embedded store stayed busy with {held_by} for {waited_s:.1f} s; "
            f"{facts.command} was not run"
        ),
        "code": MAX_TIME_MS_EXPIRED,
        "codeName": "MaxTimeMSExpired",
    }
    if facts.in_transaction:
        reply["errorLabels"] = ["TransientTransactionError"]
    return encode_op_msg_response(reply, request_id=0, response_to=header.request_id)


def no_such_transaction_reply(header: Any, facts: _Facts) -> bytes:
    """MongoDB's answer to a command of a transaction it has already aborted."""
    reply = {
        "ok": 0.0,
        "errmsg": (
            "the embedded store aborted this transaction (its client went quiet or it ran too "
            f"long); {facts.command} was not run"
        ),
        "code": NO_SUCH_TRANSACTION,
        "codeName": "NoSuchTransaction",
        "errorLabels": ["TransientTransactionError"],
    }
    return encode_op_msg_response(reply, request_id=0, response_to=header.request_id)


def contention_error(response: bytes | None) -> bool:
    """An error reply of mongoeco's that means the store was held by someone else."""
    if response is None or not any(message in response for message in _CONTENTION_MESSAGES):
        return False  # the byte search keeps the decode off every ordinary reply
    try:
        body = bson.decode(response[21:])  # header (16), flags (4), section kind 0 (1)
    except Exception:
        return False
    errmsg = str(body.get("errmsg", ""))
    return body.get("ok") == 0 and any(
        message.decode() in errmsg for message in _CONTENTION_MESSAGES
    )


def _errmsg(response: bytes | None) -> str:
    """What mongoeco said, for the log: "database is locked" and "bound to another session"
    have different causes."""
    if response is None:
        return ""
    try:
        return str(bson.decode(response[21:]).get("errmsg", ""))[:300]
    except Exception:
        return ""


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
        self._aborted: set[str] = set()  # sessions whose transaction the gate aborted
        self._line: deque[object] = deque()  # commands waiting for their turn, oldest first

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
        if facts.key in self._aborted:
            if facts.starts or not facts.in_transaction:
                self._aborted.discard(facts.key)  # the session has moved on
            elif facts.command == "abortTransaction":
                self._aborted.discard(facts.key)
                return encode_op_msg_response(
                    {"ok": 1.0}, request_id=0, response_to=header.request_id
                )
            else:
                return no_such_transaction_reply(header, facts)
        arrived = time.monotonic()
        try:
            await self._admit(facts, arrived)
        except StoreBusy:
            waited = time.monotonic() - arrived
            _log.warning("embedded_store_busy", command=facts.command, waited_s=round(waited, 2))
            return busy_reply(header, facts, waited)
        try:
            while True:
                response = cast(
                    bytes | None,
                    await super()._dispatch_wire_request(header, payload, connection=connection),
                )
                if not contention_error(response):
                    return response
                # Held by something the gate does not see (another process on the file, say):
                # mongoeco refused before running the command, so it is tried again, bounded.
                waited = time.monotonic() - arrived
                if waited + CONTENTION_RETRY_S > self.wait_s:
                    _log.warning(
                        "embedded_store_contention",
                        command=facts.command,
                        waited_s=round(waited, 2),
                        reason=_errmsg(response),
                    )
                    return busy_reply(header, facts, waited, held_by="another holder of the store")
                await asyncio.sleep(CONTENTION_RETRY_S)
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
        """Wait for this command's turn: the open transaction's own commands as soon as the
        store is free, everyone else in the order they arrived. Without the line, a command
        arriving just as the store came free went ahead of those already woken for it, and
        under load a read could be passed over until its wait ran out (503)."""
        async with self._turn:
            ticket = None if self._owns(facts) else object()
            if ticket is not None:
                self._line.append(ticket)
            try:
                while not self._may_go(facts, ticket):
                    now = time.monotonic()
                    if not self._busy and self._owner is not None and self._owner_is_stale(now):
                        self._abort_stale(self._owner)
                        continue
                    remaining = arrived + self.wait_s - now
                    if remaining <= 0:
                        raise StoreBusy
                    with suppress(TimeoutError):
                        await asyncio.wait_for(self._turn.wait(), min(remaining, 0.5))
            finally:
                if ticket is not None:
                    self._line.remove(ticket)
                    self._turn.notify_all()  # the next in line may be free to go
            self._busy = True
            if facts.starts:
                self._owner = facts.key
                self._owned_since = self._owner_seen = time.monotonic()

    def _may_go(self, facts: _Facts, ticket: object | None) -> bool:
        if self._busy:
            return False
        if self._owner is not None:
            return self._owner == facts.key
        return ticket is None or self._line[0] is ticket

    def _owner_is_stale(self, now: float) -> bool:
        return now - self._owner_seen > IDLE_ABORT_S or now - self._owned_since > STALE_AFTER_S

    def _abort_stale(self, key: str | None) -> None:
        _log.warning(
            "embedded_stale_transaction_aborted", idle_after_s=IDLE_ABORT_S, after_s=STALE_AFTER_S
        )
        self._owner = None
        if key is not None:
            self._aborted.add(key)
        sessions = getattr(self._session_store, "_sessions", {})
        context = sessions.get(key) if key is not None else None
        if context is not None and context.session.transaction_active:
            with suppress(Exception):
                context.session.abort_transaction()
