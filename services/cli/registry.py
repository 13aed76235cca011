"""The services (the four and the console), their default ports, and where their apps are
built."""

import importlib
from dataclasses import dataclass
from typing import Protocol

from fastapi import FastAPI


class AppFactory(Protocol):
    def __call__(self) -> FastAPI: ...


@dataclass(frozen=True)
class ServiceEntry:
    name: str
    default_port: int
    module: str  # exposes build_app() -> FastAPI and settings() -> settings with host/port

    def load(self) -> tuple[FastAPI, str, int]:
        bootstrap = importlib.import_module(self.module)
        settings = bootstrap.load_settings()
        return bootstrap.build_app(settings), settings.host, settings.port


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("dispatch", 8001, "services.dispatch.bootstrap"),
        ServiceEntry("units", 8002, "services.units.bootstrap"),
        ServiceEntry("notify", 8003, "services.notify.bootstrap"),
        ServiceEntry("audit", 8004, "services.audit.bootstrap"),
        ServiceEntry("console", 8000, "services.console.bootstrap"),
    )
}

# The four services with a public JSON API. The console is the browser's backend: it serves
# pages, not an OpenAPI, and calls these four on a person's behalf.
APIS: dict[str, ServiceEntry] = {
    name: entry for name, entry in SERVICES.items() if name != "console"
}
