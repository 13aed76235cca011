"""The inbox and its live unread badge (notify owns the notifications)."""

from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from services.console.adapters.services import Refused, Services
from services.console.domain.accounts import Role
from services.console.entrypoints import forms, live
from services.console.entrypoints.web import (
    CsrfChecked,
    Pages,
    PagesDep,
    ServicesDep,
    Visit,
    go,
    page,
    signed_in,
)
from services.console.entrypoints.words import refusal

router = APIRouter()
HasInbox = signed_in(Role.SECRETARY, Role.VOLUNTEER, Role.UNIT)


async def unread(services: Services, visit: Visit) -> int:
    assert visit.account is not None
    found = await services.call(visit.account, "notify", "GET", "/v1/inbox", params={"limit": 1})
    count: int = found["unread"]
    return count


async def _badge_html(pages: Pages, visit: Visit, services: Services) -> str:
    return pages.render(visit.language, "_badge.html", unread=await unread(services, visit))


@router.get("/inbox")
async def inbox(pages: PagesDep, services: ServicesDep, visit: Visit = HasInbox) -> Response:
    assert visit.account is not None
    try:
        found: dict[str, Any] = await services.call(
            visit.account, "notify", "GET", "/v1/inbox", params={"limit": 100}
        )
        problem = None
    except Refused as refused:
        found, problem = {"items": [], "unread": 0}, refusal(pages, visit, refused.problem)
    return page(
        pages, visit, "inbox.html", items=found["items"], unread=found["unread"], problem=problem
    )


@router.post("/inbox/read")
async def mark_read(request: Request, services: ServicesDep, visit: CsrfChecked) -> Response:
    if visit.account is None or visit.role not in (Role.SECRETARY, Role.VOLUNTEER, Role.UNIT):
        return go("/", request)
    up_to = forms.text(await request.form(), "up_to", 20)
    if up_to.isdigit() and int(up_to) > 0:
        # On a refusal the page shows them unread still: nothing was lost.
        with suppress(Refused):
            await services.call(
                visit.account, "notify", "POST", "/v1/inbox/read", json={"up_to": int(up_to)}
            )
    return go("/inbox", request)


@router.get("/inbox/badge/stream")
async def badge_stream(
    pages: PagesDep, services: ServicesDep, visit: Visit = HasInbox
) -> EventSourceResponse:
    return live.stream(visit, {"badge": lambda: _badge_html(pages, visit, services)})
