"""`docs/openapi/<service>.json`: each service's OpenAPI, from its FastAPI app.

The app is built with `build_app(load_settings())` but never started (no broker, no
database)."""

import importlib
from dataclasses import dataclass, field
from typing import Any

from services.cli.registry import APIS


@dataclass
class OpenApiDocuments:
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # service -> why


def openapi_documents() -> OpenApiDocuments:
    """Each service's OpenAPI; a service whose bootstrap module does not exist yet is skipped."""
    found = OpenApiDocuments()
    for name, entry in APIS.items():
        try:
            bootstrap = importlib.import_module(entry.module)
        except ModuleNotFoundError as missing:
            if missing.name is None or not entry.module.startswith(missing.name):
                raise  # the bootstrap exists but imports something missing: a real bug
            found.skipped[name] = f"{entry.module} does not exist yet"
            continue
        app = bootstrap.build_app(bootstrap.load_settings())
        found.documents[name] = app.openapi()
    return found
