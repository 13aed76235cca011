"""JWT issue/decode and the role dependency: 401 for who-are-you, 403 for not-allowed."""

from datetime import timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI

from shared.auth import (
    InvalidToken,
    Principal,
    Role,
    decode_token,
    issue_token,
    require_roles,
)
from shared.http.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from shared.settings import WhistleSettings

pytestmark = pytest.mark.unit

SECRET = "unit-test-secret-at-least-32-bytes-long"


def test_issued_token_decodes_to_the_same_principal() -> None:
    token = issue_token(SECRET, sub="wang", role=Role.SECRETARY, community="c-1")
    assert decode_token(SECRET, token) == Principal(
        sub="wang", role=Role.SECRETARY, community="c-1"
    )


def test_expired_token_is_invalid() -> None:
    token = issue_token(SECRET, sub="wang", role="auditor", ttl=timedelta(seconds=-5))
    with pytest.raises(InvalidToken, match="expired"):
        decode_token(SECRET, token)


def test_token_signed_with_another_secret_is_invalid() -> None:
    token = issue_token("another-secret-also-32-bytes-long-ok", sub="wang", role="auditor")
    with pytest.raises(InvalidToken, match=r"[Ss]ignature"):
        decode_token(SECRET, token)


@pytest.mark.parametrize(
    ("role", "claim"), [("secretary", "community"), ("unit", "unit"), ("volunteer", "volunteer")]
)
def test_scoped_role_without_its_claim_is_refused(role: str, claim: str) -> None:
    with pytest.raises(InvalidToken, match=claim):
        issue_token(SECRET, sub="x", role=role)
    forged = jwt.encode({"sub": "x", "role": role, "exp": 4102444800}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidToken, match=claim):
        decode_token(SECRET, forged)


@pytest.mark.parametrize("missing", ["exp", "sub", "role"])
def test_token_missing_a_required_claim_is_invalid(missing: str) -> None:
    claims = {"sub": "x", "role": "auditor", "exp": 4102444800}
    del claims[missing]
    with pytest.raises(InvalidToken):
        decode_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"))


def test_unknown_role_and_alg_none_are_invalid() -> None:
    bad_role = jwt.encode({"sub": "x", "role": "mayor", "exp": 4102444800}, SECRET)
    with pytest.raises(InvalidToken):
        decode_token(SECRET, bad_role)
    # "" is PyJWT's empty key for alg none (typed: with `cryptography` installed, None is not).
    unsigned = jwt.encode({"sub": "x", "role": "admin", "exp": 4102444800}, "", algorithm="none")
    with pytest.raises(InvalidToken):
        decode_token(SECRET, unsigned)


def _app() -> FastAPI:
    app = FastAPI()
    app.state.settings = WhistleSettings(jwt_secret=SECRET)
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
        _bearer(issue_token(SECRET, sub="w", role="admin", ttl=timedelta(seconds=-1))),
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
