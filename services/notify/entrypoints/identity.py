"""Whose inbox a token opens: unit -> its unit, volunteer -> themself, secretary -> the office
of the community (or street or district) named by its `community` claim."""

from typing import Annotated

from fastapi import Depends, Query, Request

from shared.auth import CurrentPrincipal, InvalidToken, Principal, Role, decode_token, forbidden
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


async def stream_owner(
    request: Request,
    access_token: Annotated[str | None, Query(max_length=4096)] = None,
) -> str:
    """Like `owner_of`, but a browser's EventSource cannot set headers: it may pass
    `?access_token=` instead of `Authorization: Bearer`."""
    scheme, _, header_token = request.headers.get("authorization", "").partition(" ")
    token = header_token.strip() if scheme.lower() == "bearer" else (access_token or "")
    if not token:
        raise ProblemError(
            401,
            "unauthorized",
            "Not authenticated",
            "send 'Authorization: Bearer <token>' or '?access_token=<token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    try:
        principal = decode_token(request.app.state.settings, token)
    except InvalidToken as error:
        raise ProblemError(
            401,
            "unauthorized",
            "Not authenticated",
            f"the token is not valid: {error}",
            headers={"WWW-Authenticate": "Bearer"},
        ) from error
    return inbox_owner(principal)


StreamOwner = Annotated[str, Depends(stream_owner)]
