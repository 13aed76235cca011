"""A service keeps an idle connection open longer than its clients do.

Otherwise a client (the console calling a service, a phone behind a proxy) can send a request
on a connection at the moment the service closes it, and that request gets no answer at all.
"""

import asyncio

import httpx
import uvicorn
from fastapi import FastAPI, Request

from bench.infra import free_port
from shared.http.app import server_config
from tests.shared.runtime_support import eventually


def test_the_service_outlasts_httpx_and_the_usual_proxy() -> None:
    keep_alive = server_config(FastAPI(), "127.0.0.1", 0).timeout_keep_alive
    clients_let_go = httpx.Limits().keepalive_expiry  # httpx's own default, 5 s
    assert clients_let_go is not None
    assert keep_alive > clients_let_go
    assert keep_alive > 60  # a proxy's usual idle timeout


async def test_an_idle_connection_is_still_open_after_uvicorns_default() -> None:
    app = FastAPI()

    @app.get("/port")
    async def port(request: Request) -> int:
        assert request.client is not None
        return request.client.port

    server = uvicorn.Server(server_config(app, "127.0.0.1", free_port()))
    serving = asyncio.create_task(server.serve())
    try:

        async def started() -> bool:
            return server.started

        await eventually(started)
        url = f"http://127.0.0.1:{server.config.port}/port"
        limits = httpx.Limits(keepalive_expiry=30)
        async with httpx.AsyncClient(limits=limits) as client:
            first = (await client.get(url)).json()
            await asyncio.sleep(6)  # past uvicorn's default of 5 s
            again = (await client.get(url)).json()
        assert again == first  # the same connection, not a new one after the server hung up
    finally:
        server.should_exit = True
        await serving
