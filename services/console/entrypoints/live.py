"""Live parts of a page over Server-Sent Events: the console looks again every few moments
(the services are its only source) and sends a part's new HTML only when it changed."""

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import anyio
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.console.adapters import store
from services.console.adapters.services import Refused
from services.console.config import ConsoleSettings
from services.console.entrypoints.web import Visit, db_of, settings_of
from shared.clock import utcnow

Render = Callable[[], Awaitable[str]]


def stream(visit: Visit, parts: dict[str, Render]) -> EventSourceResponse:
    """One SSE stream sending each named part (`event: <name>`) when its HTML changes; it ends
    when the session does."""
    settings = settings_of(visit.request)
    db = db_of(visit.request)
    idle = timedelta(seconds=settings.session_idle_s)

    async def session_lives() -> bool:
        return (
            visit.session_secret is not None
            and await store.live_session(db, visit.session_secret, utcnow(), idle) is not None
        )

    return stream_while(settings, session_lives, "signed-out", parts)


def stream_while(
    settings: ConsoleSettings,
    lives: Callable[[], Awaitable[bool]],
    ended: str,
    parts: dict[str, Render],
    ended_html: str = "",
) -> EventSourceResponse:
    """The parts, each when it changes, for as long as `lives()` says; then `event: <ended>`
    and the end (checked before every look, so a revoked link stops within one poll)."""

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent: dict[str, str] = {}
        while True:
            if not await lives():
                yield ServerSentEvent(data=ended_html, event=ended)
                return
            for name, render in parts.items():
                try:
                    html = await render()
                except Refused:
                    continue  # a service blinked: keep what the page shows, look again soon
                if sent.get(name) != html:
                    sent[name] = html
                    yield ServerSentEvent(data=html, event=name)
            await anyio.sleep(settings.live_poll_s)

    return EventSourceResponse(events(), ping=15, headers={"Cache-Control": "no-store"})
