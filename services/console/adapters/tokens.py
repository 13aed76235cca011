"""The one place the console mints a token: for one signed-in person, for one call to a
service, short-lived. The services check it like any `whistle token`.

`sub` is the account's id, never its login: a login may be a phone number, and `sub`
becomes the `actor` of the events audit keeps forever.

Street and district accounts are minted as the services model them: role `secretary`,
`community` = the street or district id (see `domain/accounts.Role`)."""

from datetime import timedelta

from services.console.domain.accounts import Account, service_role
from shared.auth import Principal, mint_token
from shared.settings import TokenSettings


def mint_for(account: Account, settings: TokenSettings, ttl_s: float) -> str:
    principal = Principal(
        sub=account.id,
        role=service_role(account.role),
        # Street and district staff: a secretary token for the street's or district's id,
        # which dispatch's read rule admits to the demands escalated there.
        community=account.scope.place,
        unit=account.scope.unit,
        volunteer=account.scope.volunteer,
    )
    return mint_token(principal, settings, ttl=timedelta(seconds=ttl_s))
