"""JWT issue/decode and the role dependency: 401 for who-are-you, 403 for not-allowed."""

import time
from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from shared.auth import (
    InvalidToken,
    Principal,
    Role,
    decode_token,
    issue_token,
    mint_token,
    require_roles,
)
from shared.http.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from shared.settings import TokenSettings, WhistleSettings

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-at-least-32-bytes-long"
SETTINGS = TokenSettings(jwt_secret=SecretStr(SECRET))
FAR = 4102444800  # 2100: far beyond any WHISTLE_JWT_MAX_TTL


def _claims(**claims: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": "whistle", "aud": "whistle", "exp": now + 3600, "iat": now, **claims}


def test_issued_token_decodes_to_the_same_principal() -> None:
    token = issue_token(SECRET, sub="wang", role=Role.SECRETARY, community="c-1")
    assert decode_token(SETTINGS, token) == Principal(
        sub="wang", role=Role.SECRETARY, community="c-1"
    )


def test_expired_token_is_invalid() -> None:
    token = issue_token(SECRET, sub="wang", role="auditor", ttl=timedelta(seconds=-60))
    with pytest.raises(InvalidToken, match="expired"):
        decode_token(SETTINGS, token)


def test_token_signed_with_another_secret_is_invalid() -> None:
    token = issue_token("another-secret-also-32-bytes-long-ok", sub="wang", role="auditor")
    with pytest.raises(InvalidToken, match=r"[Ss]ignature"):
        decode_token(SETTINGS, token)


@pytest.mark.parametrize(
    ("role", "claim"), [("secretary", "community"), ("unit", "unit"), ("volunteer", "volunteer")]
)
def test_scoped_role_without_its_claim_is_refused(role: str, claim: str) -> None:
    with pytest.raises(InvalidToken, match=claim):
        issue_token(SECRET, sub="x", role=role)
    forged = jwt.encode(_claims(sub="x", role=role), SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match=claim):
        decode_token(SETTINGS, forged)


@pytest.mark.parametrize("missing", ["exp", "sub", "role", "iss", "aud"])
def test_token_missing_a_required_claim_is_invalid(missing: str) -> None:
    claims = _claims(sub="x", role="auditor")
    del claims[missing]
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, jwt.encode(claims, SECRET, algorithm="HS256"))


def test_unknown_role_and_alg_none_are_invalid() -> None:
    bad_role = jwt.encode(_claims(sub="x", role="mayor"), SECRET)
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, bad_role)
    # "" is PyJWT's empty key for alg none (typed: with `cryptography` installed, None is not).
    unsigned = jwt.encode(_claims(sub="x", role="admin"), "", algorithm="none")
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, unsigned)


def test_minted_token_carries_issuer_audience_and_identity() -> None:
    principal = Principal(sub="wang", role=Role.VOLUNTEER, volunteer="vol_1")
    token = mint_token(principal, SETTINGS, ttl=timedelta(hours=2))
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="whistle")
    assert claims["iss"] == "whistle"
    assert claims["aud"] == "whistle"
    assert claims["exp"] - claims["iat"] == 7200
    assert claims["volunteer"] == "vol_1"
    assert "community" not in claims
    assert decode_token(SETTINGS, token) == principal


@pytest.mark.parametrize(
    ("claim", "value"),
    [("iss", "someone-else"), ("aud", "another-api"), ("aud", ["another-api"])],
)
def test_another_issuer_or_audience_is_invalid(claim: str, value: object) -> None:
    token = jwt.encode(_claims(sub="x", role="admin", **{claim: value}), SECRET)
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, token)


def test_issuer_and_audience_follow_the_settings() -> None:
    ours = TokenSettings(jwt_secret=SecretStr(SECRET), jwt_issuer="ops", jwt_audience="city")
    token = mint_token(Principal(sub="x", role=Role.AUDITOR), ours)
    assert decode_token(ours, token).sub == "x"
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, token)  # default issuer and audience are "whistle"


def test_a_token_meant_to_last_thirty_years_is_invalid() -> None:
    token = jwt.encode(
        _claims(sub="x", role="admin", exp=int(time.time()) + 30 * 365 * 86400), SECRET
    )
    with pytest.raises(InvalidToken, match="WHISTLE_JWT_MAX_TTL"):
        decode_token(SETTINGS, token)
    with pytest.raises(InvalidToken, match="at most 24h"):
        mint_token(Principal(sub="x", role=Role.ADMIN), SETTINGS, ttl=timedelta(days=30))
    longer = TokenSettings(jwt_secret=SecretStr(SECRET), jwt_max_ttl="60d")
    assert longer.jwt_max_ttl == timedelta(days=60)
    with pytest.raises(InvalidToken):
        decode_token(longer, token)  # 30 years is beyond 60 days too


def test_expiry_has_thirty_seconds_of_leeway() -> None:
    now = int(time.time())
    just_expired = jwt.encode(_claims(sub="x", role="admin", exp=now - 20), SECRET)
    assert decode_token(SETTINGS, just_expired).sub == "x"
    long_expired = jwt.encode(_claims(sub="x", role="admin", exp=now - 40), SECRET)
    with pytest.raises(InvalidToken, match="expired"):
        decode_token(SETTINGS, long_expired)


@pytest.mark.parametrize(
    "claims",
    [
        {"role": "volunteer", "volunteer": "v1", "community": "c1"},
        {"role": "volunteer", "volunteer": "v1", "unit": "u1"},
        {"role": "unit", "unit": "u1", "community": "c1"},
        {"role": "unit", "unit": "u1", "volunteer": "v1"},
        {"role": "secretary", "community": "c1", "unit": "u1"},
        {"role": "auditor", "community": "c1"},
        {"role": "admin", "volunteer": "v1"},
        {"role": "volunteer", "volunteer": ""},
        {"role": "secretary", "community": 7},
    ],
)
def test_role_and_identity_claims_must_agree(claims: dict[str, object]) -> None:
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, jwt.encode(_claims(sub="x", **claims), SECRET))


@pytest.mark.parametrize("sub", ["", "x" * 129, 42])
def test_an_empty_or_over_long_sub_is_invalid(sub: object) -> None:
    with pytest.raises(InvalidToken):
        decode_token(SETTINGS, jwt.encode(_claims(sub=sub, role="admin"), SECRET))


def test_the_idempotency_scope_is_the_whole_principal() -> None:
    volunteer = Principal(sub="wang", role=Role.VOLUNTEER, volunteer="vol_1")
    other_volunteer = Principal(sub="wang", role=Role.VOLUNTEER, volunteer="vol_2")
    secretary = Principal(sub="wang", role=Role.SECRETARY, community="vol_1")
    admin = Principal(sub="wang", role=Role.ADMIN)
    keys = {p.scope_key for p in (volunteer, other_volunteer, secretary, admin)}
    assert len(keys) == 4
    # No sub or identity can be written so that it reads as another principal's key.
    tricky = Principal(sub="vol_1/wang", role=Role.ADMIN)
    assert tricky.scope_key != volunteer.scope_key


def _app() -> FastAPI:
    app = FastAPI()
    app.state.settings = WhistleSettings(env="development", jwt_secret=SecretStr(SECRET))
    install_problem_handlers(app)

    @app.get("/secretaries-only", dependencies=[require_roles(Role.SECRETARY)])
    async def secretaries_only() -> dict[str, str]:
        return {"ok": "yes"}

    return app


async def _get(headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get("/secretaries-only", headers=headers)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic d2FuZzpwdw=="},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer not-a-jwt"},
        _bearer(
            issue_token(
                "wrong-secret-that-is-32-bytes-long!", sub="w", role="secretary", community="c"
            )
        ),
        _bearer(issue_token(SECRET, sub="w", role="admin", ttl=timedelta(seconds=-60))),
        _bearer(jwt.encode(_claims(sub="", role="admin"), SECRET)),
        _bearer(jwt.encode(_claims(sub="x" * 10_000, role="admin"), SECRET)),
        _bearer(
            jwt.encode(_claims(sub="v", role="volunteer", volunteer="v", community="c"), SECRET)
        ),
        _bearer(jwt.encode(_claims(sub="w", role="admin", exp=FAR), SECRET)),
        _bearer(jwt.encode(_claims(sub="w", role="admin", aud="elsewhere"), SECRET)),
    ],
)
async def test_missing_or_invalid_token_is_401_problem(headers: dict[str, str]) -> None:
    response = await _get(headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["type"] == "https://whistle.dev/problems/unauthorized"


async def test_valid_token_with_the_wrong_role_is_403_problem() -> None:
    response = await _get(_bearer(issue_token(SECRET, sub="li", role="auditor")))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["type"] == "https://whistle.dev/problems/forbidden"


@pytest.mark.parametrize(("role", "community"), [("secretary", "c-1"), ("admin", None)])
async def test_allowed_role_and_admin_pass(role: str, community: str | None) -> None:
    response = await _get(_bearer(issue_token(SECRET, sub="s", role=role, community=community)))
    assert response.status_code == 200
    assert response.json() == {"ok": "yes"}
