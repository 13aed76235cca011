"""The one place the console mints a token: for one signed-in person, for one call to a
service, short-lived. The services check it like any `whistle token`."""

from datetime import timedelta

from services.console.domain.accounts import Account
from shared.auth import issue_token


def mint_for(account: Account, secret: str, ttl_s: float) -> str:
    return issue_token(
        secret,
        sub=account.login,
        role=account.role,
        community=account.scope.community,
        unit=account.scope.unit,
        volunteer=account.scope.volunteer,
        ttl=timedelta(seconds=ttl_s),
    )
