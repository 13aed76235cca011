"""Whose inbox a token opens: unit -> its unit, volunteer -> themself, secretary -> the office
of the community (or street or district) named by its `community` claim."""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

import jwt
from fastapi import Depends, Query, Request

from services.notify.adapters import stream_tickets
from shared.auth import CurrentPrincipal, Principal, Role, current_principal, forbidden
from shared.clock import as_utc
from shared.http.dependencies import runtime_of
from shared.http.problems import ProblemError


def inbox_owner(principal: Principal) -> str:
    if principal.role is Role.UNIT and principal.unit:
        return f"unit:{principal.unit}"
    if principal.role is Role.VOLUNTEER and principal.volunteer:
        return f"volunteer:{principal.volunteer}"
    if principal.role is Role.SECRETARY and principal.community:
        return f"office:{principal.community}"
    raise forbidden(
        f"a '{principal.role}' token has no inbox: inboxes belong to units, volunteers and "
        "secretaries (of a community, street or district)"
    )


async def owner_of(principal: CurrentPrincipal) -> str:
    return inbox_owner(principal)


Owner = Annotated[str, Depends(owner_of)]


def principal_key(principal: Principal) -> str:
    """Who a principal is, for the per-principal stream limit (role and identity, not `sub`)."""
    ident = principal.unit or principal.volunteer or principal.community or ""
    return f"{principal.role.value}:{ident}:{principal.sub}"


def token_expiry(request: Request) -> datetime:
    """The `exp` of the bearer token `current_principal` has already verified."""
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    claims = jwt.decode(token, options={"verify_signature": False})
    return datetime.fromtimestamp(int(claims["exp"]), UTC)


@dataclass(frozen=True)
class StreamAccess:
    owner: str
    principal: str
    expires_at: datetime


async def stream_access(
    request: Request,
    ticket: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="from POST /v1/inbox/stream-ticket"),
    ] = None,
) -> StreamAccess:
    """`Authorization: Bearer`, or a single-use `?ticket=` for a browser's EventSource (which
    cannot set headers). Tokens are not taken in the URL (RFC 6750 §2.3: URLs get logged)."""
    if ticket is None:
        principal = await current_principal(request)
        return StreamAccess(inbox_owner(principal), principal_key(principal), token_expiry(request))
    db = runtime_of(request).db
    grant = await stream_tickets.redeem(db, ticket)
    if grant is None:
        raise ProblemError(
            401,
            "unauthorized",
            "Not authenticated",
            "the stream ticket is unknown, already used or expired: ask for a new one with "
            "POST /v1/inbox/stream-ticket",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return StreamAccess(grant.owner, grant.principal, as_utc(grant.token_expires_at))


StreamOwner = Annotated[StreamAccess, Depends(stream_access)]
