"""`python -m services.cli.docs docs` (what `make docs` runs) and `... check`."""

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from services.cli.docs.files import render_all, stale, write

ROOT = Path(__file__).resolve().parents[3]
DEFAULT_OUT = ROOT / "docs"

cli = typer.Typer(help="Generate Whistle's reference documents.", no_args_is_help=True)


def _report_skipped(skipped: dict[str, str]) -> None:
    for name, why in skipped.items():
        print(f"skipped {name}: {why}; its OpenAPI is not generated", file=sys.stderr)


@cli.command()
def docs(
    out: Annotated[Path, typer.Option(help="where to write")] = DEFAULT_OUT,
) -> None:
    """Write docs/openapi/<service>.json, docs/asyncapi.json and docs/README.md."""
    files, skipped = render_all()
    _report_skipped(skipped)
    write(files, out)
    for relative in files:
        print(f"wrote {out / relative}")


@cli.command()
def check(
    out: Annotated[Path, typer.Option(help="the committed documents")] = DEFAULT_OUT,
) -> None:
    """Exit 1 when the documents in OUT are not what `docs` would write now."""
    files, skipped = render_all()
    _report_skipped(skipped)
    problems = stale(files, out)
    if problems:
        print("stale documents (run `make docs`):\n" + "\n".join(problems), file=sys.stderr)
        raise typer.Exit(1)
    print(f"{len(files)} documents up to date")


# The documents are rendered from apps that never serve: development settings suffice
# (production, the default, would ask for secrets only a deployment has).
os.environ.setdefault("WHISTLE_ENV", "development")
cli()
