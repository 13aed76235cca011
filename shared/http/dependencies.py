"""FastAPI dependencies every service's routers share."""

from typing import Annotated

from fastapi import Depends, Request

from shared.runtime import ServiceRuntime


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


async def _runtime(request: Request) -> ServiceRuntime:
    # Async on purpose: FastAPI runs a sync dependency in a worker thread, per request.
    return runtime_of(request)


Runtime = Annotated[ServiceRuntime, Depends(_runtime)]
