"""Tokens signed with the dev secret that test service processes use."""

from shared.auth import Role, issue_token
from shared.settings import DEV_JWT_SECRET


def make_token(
    role: str,
    sub: str | None = None,
    *,
    community: str | None = None,
    unit: str | None = None,
    volunteer: str | None = None,
) -> str:
    return issue_token(
        DEV_JWT_SECRET,
        sub=sub or f"{role}-tester",
        role=Role(role),
        community=community,
        unit=unit,
        volunteer=volunteer,
    )
