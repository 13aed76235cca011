"""Every generated document at once: rendered, written, and compared with what is committed."""

import difflib
import json
from pathlib import Path
from typing import Any

from services.cli.docs.asyncapi import asyncapi_document
from services.cli.docs.openapi import openapi_documents
from services.cli.docs.readme import render_index


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_all() -> tuple[dict[str, str], dict[str, str]]:
    """Relative path -> content of every generated file, and the services skipped (-> why)."""
    openapi = openapi_documents()
    files = {f"openapi/{name}.json": _json(doc) for name, doc in openapi.documents.items()}
    files["asyncapi.json"] = _json(asyncapi_document())
    files["README.md"] = render_index(openapi.documents)
    return files, openapi.skipped


def write(files: dict[str, str], out: Path) -> None:
    for relative, content in files.items():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def stale(files: dict[str, str], out: Path) -> list[str]:
    """What differs between the generated files and those in `out`, as readable lines."""
    problems = []
    committed = {str(p.relative_to(out)) for p in (out / "openapi").glob("*.json")}
    for extra in sorted(committed - set(files)):
        problems.append(f"{extra}: not generated any more (remove it)")
    for relative, content in files.items():
        target = out / relative
        if not target.exists():
            problems.append(f"{relative}: missing")
            continue
        current = target.read_text(encoding="utf-8")
        if current != content:
            diff = difflib.unified_diff(
                current.splitlines(),
                content.splitlines(),
                "committed",
                "generated",
                lineterm="",
                n=1,
            )
            problems.append(f"{relative}: differs\n" + "\n".join(list(diff)[:40]))
    return problems
