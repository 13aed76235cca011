"""The FastAPI app every service builds the same way: lifespan, probes, metrics, problems."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse

from shared.http.body_limit import BodySizeLimitMiddleware
from shared.http.openapi import whistle_openapi
from shared.http.problems import RefusalTable, install_problem_handlers, install_refusals
from shared.http.semantics import HttpSemanticsMiddleware
from shared.metrics import HttpMetricsMiddleware, metrics_endpoint
from shared.runtime import ServiceRuntime


def create_service_app(
    runtime: ServiceRuntime,
    routers: Sequence[APIRouter],
    *,
    description: str = "",
    refusals: RefusalTable | None = None,
) -> FastAPI:
    """The service's app; `refusals`: its one table of domain refusals to problems."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title=f"Whistle {runtime.name}",
        version="1.0.0",
        description=description,
        lifespan=lifespan,
    )
    app.state.settings = runtime.settings
    app.state.runtime = runtime
    install_problem_handlers(app)
    if refusals:
        install_refusals(app, refusals)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(HttpMetricsMiddleware, service=runtime.name)
    # Outermost: a HEAD is a GET to everything inside (metrics included).
    app.add_middleware(HttpSemanticsMiddleware)

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": runtime.name}

    @app.get("/readyz", tags=["probes"])
    async def readyz() -> JSONResponse:
        checks = await runtime.readiness()
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unready", "service": runtime.name, "checks": checks},
            status_code=200 if ready else 503,
        )

    app.add_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
    for router in routers:
        app.include_router(router)
    app.openapi = lambda: whistle_openapi(app)  # type: ignore[method-assign]
    return app


# An idle keep-alive connection is closed by the server only after its clients have let go of
# it: uvicorn's default (5 s) equals httpx's, so a request sent on a connection as the server
# closed it got no answer at all (the console's calls to the services, the load run's clients:
# one request in a few thousand). 65 s also outlasts the usual proxy's idle timeout of 60 s,
# so a proxy in front never reuses a connection the service is dropping.
KEEP_ALIVE_S = 65


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_keep_alive=KEEP_ALIVE_S,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run under uvicorn with our logging; SIGINT/SIGTERM drain and stop within seconds."""
    uvicorn.Server(server_config(app, host, port)).run()
