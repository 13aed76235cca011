"""How a failed transaction looks on the embedded stand-in (mongoeco), where it differs from
MongoDB: the unit of work asks here, so its own code is written for MongoDB alone.

Both hold harmlessly against a real MongoDB (which labels its conflicts, and whose server
sessions a dirty mark only keeps out of the pool)."""

from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import OperationFailure


def reports_write_conflict(error: OperationFailure) -> bool:
    """The stand-in reports a commit conflict without MongoDB's code (112) or
    `TransientTransactionError` label: only its message says so."""
    return "write conflict" in str(error).lower()


def discard_server_session(session: AsyncClientSession) -> None:
    """Never return a failed transaction's server session to the pool. After a failed commit
    the driver may not abort, and the stand-in then keeps the transaction open under that
    session id: the next transaction to reuse the id would carry its writes along."""
    server_session = getattr(session, "_server_session", None)
    if server_session is not None:
        server_session.mark_dirty()
