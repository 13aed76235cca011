"""JWT auth (HS256) and the FastAPI dependencies that enforce roles.

A missing or invalid token is 401; a valid token with the wrong role is 403. Services check
community/unit ownership themselves with `Principal` helpers, so a handler reads like its rule.

A token is valid when it is signed with `WHISTLE_JWT_SECRET`, names this deployment as
issuer and audience (`WHISTLE_JWT_ISSUER`, `WHISTLE_JWT_AUDIENCE`), has not expired (30 s of
leeway for clock skew), expires at most `WHISTLE_JWT_MAX_TTL` after it is checked (a stolen
token meant to last years is worthless), and its role agrees with its identity claims.
`mint_token` is the one way to make one, from a `Principal`.
"""

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self
from urllib.parse import quote

import jwt
from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from shared.clock import utcnow
from shared.http.problems import ProblemError
from shared.settings import TOKEN_LEEWAY, TokenSettings, format_duration

# Long enough for an email address or a UUID; short enough to sit in every event's `actor`.
MAX_CLAIM_LENGTH = 128
DEFAULT_TTL = timedelta(hours=8)


class Role(StrEnum):
    SECRETARY = "secretary"
    UNIT = "unit"
    VOLUNTEER = "volunteer"
    AUDITOR = "auditor"
    ADMIN = "admin"


IDENTITY_CLAIMS = ("community", "unit", "volunteer")
# The one identity claim each role must carry; every other identity claim must be absent.
_SCOPE_CLAIM: dict[Role, str | None] = {
    Role.SECRETARY: "community",
    Role.UNIT: "unit",
    Role.VOLUNTEER: "volunteer",
    Role.AUDITOR: None,
    Role.ADMIN: None,
}

Claim = Annotated[str, Field(min_length=1, max_length=MAX_CLAIM_LENGTH)]


class Principal(BaseModel):
    """Who is asking: a role and, for the scoped roles, exactly the one identity it names."""

    model_config = ConfigDict(frozen=True)

    sub: Claim
    role: Role
    community: Claim | None = None
    unit: Claim | None = None
    volunteer: Claim | None = None

    @model_validator(mode="after")
    def _role_and_identity_agree(self) -> Self:
        required = _SCOPE_CLAIM[self.role]
        if required is not None and getattr(self, required) is None:
            raise ValueError(f"a {self.role.value} token must carry the '{required}' claim")
        extra = [c for c in IDENTITY_CLAIMS if c != required and getattr(self, c) is not None]
        if extra:
            raise ValueError(
                f"a {self.role.value} token may not carry {', '.join(repr(c) for c in extra)}"
            )
        return self

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def identity(self) -> str | None:
        """The community, unit or volunteer the role speaks for (None for auditor, admin)."""
        claim = _SCOPE_CLAIM[self.role]
        return getattr(self, claim) if claim else None

    @property
    def scope_key(self) -> str:
        """The whole principal as one string: role, identity and sub, each percent-encoded
        so no value can pass for another (idempotency keys are scoped to this)."""
        parts = (self.role.value, self.identity or "", self.sub)
        return "/".join(quote(part, safe="") for part in parts)

    def is_secretary_of(self, community_id: str) -> bool:
        return self.role is Role.SECRETARY and self.community == community_id


class InvalidToken(ValueError):
    pass


def _problem_text(error: ValidationError) -> str:
    messages = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        messages.append(f"{where}: {item['msg']}" if where else item["msg"])
    return "; ".join(messages)


def mint_token(
    principal: Principal,
    settings: TokenSettings,
    *,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> str:
    """The token for `principal`, signed and addressed as `settings` say, valid for `ttl`
    (refused beyond `WHISTLE_JWT_MAX_TTL`: the services would refuse such a token)."""
    if ttl > settings.jwt_max_ttl:
        raise InvalidToken(
            f"a token may live at most {format_duration(settings.jwt_max_ttl)} "
            f"(WHISTLE_JWT_MAX_TTL), not {format_duration(ttl)}"
        )
    issued = now or utcnow()
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": principal.sub,
        "role": principal.role.value,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    for key in IDENTITY_CLAIMS:
        if (value := getattr(principal, key)) is not None:
            claims[key] = value
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def issue_token(
    secret: str,
    *,
    sub: str,
    role: Role | str,
    community: str | None = None,
    unit: str | None = None,
    volunteer: str | None = None,
    ttl: timedelta = DEFAULT_TTL,
) -> str:
    """`mint_token` for callers that hold a secret and loose claims (tools, tests)."""
    try:
        principal = Principal(
            sub=sub, role=Role(role), community=community, unit=unit, volunteer=volunteer
        )
    except ValidationError as error:
        raise InvalidToken(_problem_text(error)) from None
    return mint_token(principal, TokenSettings(jwt_secret=secret), ttl=ttl)


def decode_token(settings: TokenSettings, token: str) -> Principal:
    now = utcnow()
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=TOKEN_LEEWAY,
            options={"require": ["exp", "iss", "aud", "sub", "role"]},
        )
    except jwt.PyJWTError as error:
        raise InvalidToken(str(error)) from error
    expires = claims["exp"]
    if (
        not isinstance(expires, int | float)
        or expires - now.timestamp() > (settings.jwt_max_ttl + TOKEN_LEEWAY).total_seconds()
    ):
        raise InvalidToken(
            f"the token expires more than {format_duration(settings.jwt_max_ttl)} ahead "
            "(WHISTLE_JWT_MAX_TTL)"
        )
    try:
        return Principal.model_validate(
            {key: claims.get(key) for key in ("sub", "role", *IDENTITY_CLAIMS)}
        )
    except ValidationError as error:
        raise InvalidToken(_problem_text(error)) from None


def _unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401, "unauthorized", "Not authenticated", detail, headers={"WWW-Authenticate": "Bearer"}
    )


def principal_from_token(request: Request, token: str) -> Principal:
    """The principal of a bearer token, checked against this service's settings (401 else)."""
    try:
        return decode_token(request.app.state.settings, token)
    except InvalidToken as error:
        raise _unauthorized(f"the token is not valid: {error}") from error


async def current_principal(request: Request) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _unauthorized("send 'Authorization: Bearer <token>' (get one with 'whistle token')")
    return principal_from_token(request, token.strip())


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
