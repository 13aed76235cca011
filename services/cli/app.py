"""The `whistle` command: run the system, serve one service, the embedded MongoDB, tokens."""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from services.cli.account_commands import account_cli
from services.cli.audit_commands import audit_key, replay, verify
from services.cli.registry import SERVICES
from shared.auth import InvalidToken, Principal, Role, mint_token
from shared.logging import configure_logging
from shared.settings import DEV_JWT_SECRET, TokenSettings, WhistleSettings, parse_duration

cli = typer.Typer(
    help="Whistle: community blows the whistle, units report for duty.", no_args_is_help=True
)


def _parse_ttl(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError:
        raise typer.BadParameter("use a number and a unit, e.g. 30m, 8h, 2d") from None


@cli.command()
def token(
    role: Annotated[Role, typer.Option(help="secretary, unit, volunteer, auditor or admin")],
    sub: Annotated[str, typer.Option(help="who the token is for")],
    community: Annotated[str | None, typer.Option(help="a secretary's community")] = None,
    unit: Annotated[str | None, typer.Option(help="a unit member's unit")] = None,
    volunteer: Annotated[str | None, typer.Option(help="a volunteer's id")] = None,
    ttl: Annotated[str, typer.Option(help="lifetime, e.g. 30m, 8h, 2d")] = "8h",
) -> None:
    """Print a token signed with the services' secret (WHISTLE_JWT_SECRET), addressed to
    WHISTLE_JWT_ISSUER / WHISTLE_JWT_AUDIENCE, living at most WHISTLE_JWT_MAX_TTL."""
    settings = TokenSettings()
    try:
        principal = Principal(
            sub=sub, role=role, community=community, unit=unit, volunteer=volunteer
        )
        minted = mint_token(principal, settings, ttl=_parse_ttl(ttl))
    except ValidationError as error:
        raise typer.BadParameter(
            "; ".join(str(item["msg"]).removeprefix("Value error, ") for item in error.errors())
        ) from None
    except InvalidToken as error:
        raise typer.BadParameter(str(error)) from None
    if settings.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
        typer.echo(
            "whistle: signed with the development secret: only services in "
            "WHISTLE_ENV=development accept it",
            err=True,
        )
    print(minted)


@cli.command()
def serve(
    service: Annotated[str, typer.Argument(help="dispatch, units, notify, audit or console")],
) -> None:
    """Start one service (HTTP and its consumers)."""
    from shared.http.app import serve as serve_app

    entry = SERVICES.get(service)
    if entry is None:
        raise typer.BadParameter(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    configure_logging(service, WhistleSettings().log_level)
    app, host, port = entry.load()
    serve_app(app, host, port)


@cli.command()
def mongo(
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 27017,
    path: Annotated[Path | None, typer.Option(help="SQLite file; in memory when omitted")] = None,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
) -> None:
    """Start the embedded MongoDB-wire-compatible server alone."""
    from shared.store.embedded import serve_embedded

    asyncio.run(serve_embedded(host=host, port=port, path=path))


@cli.command()
def run(
    data: Annotated[
        Path, typer.Option(help="folder of the embedded stores: one <service>.sqlite each")
    ] = Path("var"),
    mongo_port: Annotated[
        int,
        typer.Option(help="first embedded store's port; the next services' follow (0: any free)"),
    ] = 27017,
) -> None:
    """Start the services, and one embedded MongoDB per service when MONGODB_URL is unset."""
    from services.cli.supervisor import run_all

    raise typer.Exit(asyncio.run(run_all(data, mongo_port)))


cli.command()(replay)
cli.command()(verify)
cli.command("audit-key")(audit_key)
cli.add_typer(account_cli, name="account")


def main() -> None:
    cli()
