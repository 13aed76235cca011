"""`whistle account create`: an account in the console's database (password from stdin)."""

import asyncio
import os
import sys
from typing import Annotated

import typer

# The console's roles (the services' five, and street and district staff): a pure module.
from services.console.domain.accounts import Role

account_cli = typer.Typer(help="Console accounts.", no_args_is_help=True)


@account_cli.command("create")
def create(
    login: Annotated[str, typer.Option(help="a phone number or user name")],
    role: Annotated[
        Role,
        typer.Option(help="secretary, unit, volunteer, auditor, admin, street or district"),
    ],
    community: Annotated[str | None, typer.Option(help="a secretary's community")] = None,
    unit: Annotated[str | None, typer.Option(help="a unit member's unit")] = None,
    volunteer: Annotated[str | None, typer.Option(help="a volunteer's id (from units)")] = None,
    street: Annotated[str | None, typer.Option(help="street staff's street id")] = None,
    district: Annotated[str | None, typer.Option(help="district staff's district id")] = None,
    name: Annotated[
        str | None, typer.Option(help="the person's name (the login if omitted)")
    ] = None,
) -> None:
    """Make a console account; the password is read from stdin (one line), never an argument."""
    from services.cli.supervisor import embedded_store_url
    from services.console.bootstrap import load_settings
    from services.console.domain.accounts import AccountError, Scope
    from services.console.handlers.commands import create_account
    from shared.clock import utcnow
    from shared.store.mongo import make_client

    password = sys.stdin.readline().rstrip("\r\n")
    settings = load_settings()
    # Beside `whistle run` on embedded stores, the console's store is its own server.
    url = settings.mongodb_url
    if "MONGODB_URL" not in os.environ:
        url = embedded_store_url("console") or url

    async def make() -> str:
        client = make_client(url, app_name="whistle-cli")
        try:
            db = client[settings.database_name("console")]
            from services.console.adapters.store import ensure_indexes

            await ensure_indexes(db)
            account = await create_account(
                db,
                login=login,
                password=password,
                role=role,
                scope=Scope(community, unit, volunteer, street, district),
                name=name,
                now=utcnow(),
            )
            return account.id
        finally:
            await client.close()

    try:
        account_id = asyncio.run(make())
    except AccountError as error:
        typer.echo(f"refused: {error.field}: {error.code}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"created {account_id} ({role.value} {login})")
