"""The `whistle` command: run the system, serve one service, the embedded MongoDB, tokens."""

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from services.cli.audit_commands import replay, verify
from services.cli.registry import SERVICES
from shared.auth import Role, issue_token
from shared.logging import configure_logging
from shared.settings import WhistleSettings

cli = typer.Typer(
    help="Whistle: community blows the whistle, units report for duty.", no_args_is_help=True
)


def _parse_ttl(text: str) -> timedelta:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return timedelta(seconds=float(text[:-1]) * units[text[-1]])
    except (KeyError, ValueError, IndexError):
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
    """Print a token signed with the services' secret (WHISTLE_JWT_SECRET)."""
    settings = WhistleSettings()
    try:
        print(
            issue_token(
                settings.jwt_secret.get_secret_value(),
                sub=sub,
                role=role,
                community=community,
                unit=unit,
                volunteer=volunteer,
                ttl=_parse_ttl(ttl),
            )
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


@cli.command()
def serve(service: Annotated[str, typer.Argument(help="dispatch, units, notify or audit")]) -> None:
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


def main() -> None:
    cli()
