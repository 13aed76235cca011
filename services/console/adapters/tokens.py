"""The one place the console mints a token: for one signed-in person, for one call to a
service, short-lived. The services check it like any `whistle token`.

`sub` is the account's id, never its login: a login may be a phone number, and `sub`
becomes the `actor` of the events audit keeps forever."""

from datetime import timedelta

from services.console.domain.accounts import Account
from shared.auth import Principal, mint_token
from shared.settings import TokenSettings


def mint_for(account: Account, settings: TokenSettings, ttl_s: float) -> str:
    principal = Principal(
        sub=account.id,
        role=account.role,
        community=account.scope.community,
        unit=account.scope.unit,
        volunteer=account.scope.volunteer,
    )
    return mint_token(principal, settings, ttl=timedelta(seconds=ttl_s))
