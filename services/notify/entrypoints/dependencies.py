"""The HTTP side's dependencies: whose inbox a request opens, by token or stream ticket."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import Depends, Query, Request

from services.notify.adapters import stream_tickets
from services.notify.domain.access import inbox_owner, principal_key
from services.notify.domain.refusals import UnknownStreamTicket
from shared.auth import CurrentPrincipal, current_principal
from shared.clock import as_utc
from shared.http.dependencies import runtime_of
from shared.store.mongo import Database


async def db_of(request: Request) -> Database:
    return runtime_of(request).db


Db = Annotated[Database, Depends(db_of)]


async def owner_of(principal: CurrentPrincipal) -> str:
    return inbox_owner(principal)


Owner = Annotated[str, Depends(owner_of)]


def token_expiry(request: Request) -> datetime:
    """The `exp` of the bearer token `current_principal` has already verified."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(int(claims["exp"]), UTC)


MAX_TICKET_LENGTH = 200


@dataclass(frozen=True)
class StreamAccess:
    owner: str
    principal: str
    expires_at: datetime


async def stream_access(
    request: Request,
    ticket: Annotated[
        str | None, Query(description="from POST /v1/inbox/stream-ticket (at most 200 characters)")
    ] = None,
) -> StreamAccess:
    """`Authorization: Bearer`, or a single-use `?ticket=` for a browser's EventSource (which
    cannot set headers). Tokens are not taken in the URL (RFC 6750 §2.3: URLs get logged).

    The ticket is a credential, so a malformed one is refused as no credential (401), never
    as bad input (422): a caller without credentials always learns that first."""
    if ticket is not None and not 1 <= len(ticket) <= MAX_TICKET_LENGTH:
        raise UnknownStreamTicket()
    if ticket is None:
        principal = await current_principal(request)
        return StreamAccess(inbox_owner(principal), principal_key(principal), token_expiry(request))
    grant = await stream_tickets.redeem(runtime_of(request).db, ticket)
    if grant is None:
        raise UnknownStreamTicket()
    return StreamAccess(grant.owner, grant.principal, as_utc(grant.token_expires_at))


StreamOwner = Annotated[StreamAccess, Depends(stream_access)]
