"""Wires the console: settings, its database, the services' client, pages, HTTP."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import structlog
from fastapi import FastAPI

from services.console.adapters import store
from services.console.adapters.services import Services
from services.console.config import ConsoleSettings
from services.console.entrypoints import http
from services.console.entrypoints.security import SecurityHeadersMiddleware
from services.console.entrypoints.web import Pages
from shared.http.body_limit import BodySizeLimitMiddleware
from shared.metrics import HttpMetricsMiddleware, metrics_endpoint
from shared.store.mongo import make_client

_log = structlog.get_logger("whistle.console")


def load_settings() -> ConsoleSettings:
    return ConsoleSettings()


def build_app(settings: ConsoleSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    mongo = make_client(settings.mongodb_url, app_name="whistle-console")
    db = mongo[settings.database_name("console")]
    client = httpx.AsyncClient(timeout=settings.upstream_timeout_s)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.ensure_indexes(db)
        _log.info("service_started", database=db.name, dispatch=settings.dispatch_url)
        try:
            yield
        finally:
            await client.aclose()
            await mongo.close()

    app = FastAPI(
        title="Whistle console",
        version="1.0.0",
        description="The web console for secretaries, volunteers and units.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.db = db
    app.state.services = Services(settings, client)
    app.state.pages = Pages(settings)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, service="console")
    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    http.install(app)
    return app
