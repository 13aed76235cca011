"""FastAPI dependencies every service's routers share."""

from typing import Annotated

from fastapi import Depends, Request

from shared.runtime import ServiceRuntime


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]
