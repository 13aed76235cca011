"""JWT auth (HS256) and the FastAPI dependencies that enforce roles.

A missing or invalid token is 401; a valid token with the wrong role is 403. Services check
community/unit ownership themselves with `Principal` helpers, so a handler reads like its rule.
"""

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.clock import utcnow
from shared.http.problems import ProblemError


class Role(StrEnum):
    SECRETARY = "secretary"
    UNIT = "unit"
    VOLUNTEER = "volunteer"
    AUDITOR = "auditor"
    ADMIN = "admin"


# The claim each role must carry to say whose it is.
_SCOPE_CLAIM: dict[Role, str] = {
    Role.SECRETARY: "community",
    Role.UNIT: "unit",
    Role.VOLUNTEER: "volunteer",
}


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)

    sub: str
    role: Role
    community: str | None = None
    unit: str | None = None
    volunteer: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def is_secretary_of(self, community_id: str) -> bool:
        return self.role is Role.SECRETARY and self.community == community_id


class InvalidToken(ValueError):
    pass


def issue_token(
    secret: str,
    *,
    sub: str,
    role: Role | str,
    community: str | None = None,
    unit: str | None = None,
    volunteer: str | None = None,
    ttl: timedelta = timedelta(hours=8),
) -> str:
    principal = Principal(
        sub=sub, role=Role(role), community=community, unit=unit, volunteer=volunteer
    )
    _check_scope(principal)
    now = utcnow()
    claims: dict[str, Any] = {
        "sub": sub,
        "role": principal.role.value,
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    for key in ("community", "unit", "volunteer"):
        if (value := getattr(principal, key)) is not None:
            claims[key] = value
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(secret: str, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp", "sub", "role"]}
        )
        principal = Principal.model_validate(claims, strict=False)
    except (jwt.PyJWTError, ValidationError) as error:
        raise InvalidToken(str(error)) from error
    _check_scope(principal)
    return principal


def _check_scope(principal: Principal) -> None:
    claim = _SCOPE_CLAIM.get(principal.role)
    if claim is not None and not getattr(principal, claim):
        raise InvalidToken(f"a {principal.role.value} token must carry the '{claim}' claim")


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "unauthorized", "Not authenticated", detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send 'Authorization: Bearer <token>' (get one with 'whistle token')")
    secret: str = request.app.state.settings.jwt_secret.get_secret_value()
    try:
        return decode_token(secret, token.strip())
    except InvalidToken as error:
        raise _unauthorized(f"the token is not valid: {error}") from error


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", "Forbidden", detail)


def require_roles(*roles: Role) -> Any:
    """A dependency that admits only the given roles (admin is always admitted)."""
    allowed = {*roles, Role.ADMIN}

    async def dependency(principal: CurrentPrincipal) -> Principal:
        if principal.role not in allowed:
            names = ", ".join(sorted(role.value for role in allowed))
            raise forbidden(
                f"this needs one of the roles: {names}; the token's is '{principal.role}'"
            )
        return principal

    return Depends(dependency)
