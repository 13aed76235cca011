"""A Server-Sent Events reader over httpx, as a browser's EventSource would read a stream."""

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Stream:
    status: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)  # {"id", "event", "data"}
    comments: int = 0

    @property
    def notifications(self) -> list[dict[str, Any]]:
        return [json.loads(e["data"]) for e in self.events if e.get("event") == "notification"]


async def _read(response: httpx.Response, stream: Stream) -> None:
    current: dict[str, Any] = {}
    async for line in response.aiter_lines():
        if line == "":
            if current:
                stream.events.append(current)
            current = {}
        elif line.startswith(":"):
            stream.comments += 1
        else:
            name, _, value = line.partition(":")
            current[name] = value.removeprefix(" ")


@asynccontextmanager
async def open_stream(
    url: str, *, headers: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> AsyncIterator[Stream]:
    stream = Stream()
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10, read=30)) as client,
        client.stream("GET", url, headers=headers, params=params) as response,
    ):
        stream.status = response.status_code
        reader = asyncio.create_task(_read(response, stream)) if response.is_success else None
        try:
            yield stream
        finally:
            if reader is not None:
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                    await reader
