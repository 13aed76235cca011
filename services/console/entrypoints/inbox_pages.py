"""The inbox and its live unread badge (notify owns the notifications)."""

import asyncio
from contextlib import suppress
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from services.console.adapters.services import Refused, Services
from services.console.domain.accounts import Role
from services.console.domain.notices import say
from services.console.entrypoints import forms, live
from services.console.entrypoints.acting import posting
from services.console.entrypoints.web import (
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
INBOX_ROLES = (Role.SECRETARY, Role.VOLUNTEER, Role.UNIT, Role.STREET, Role.DISTRICT)
HasInbox = signed_in(*INBOX_ROLES)
Posting = posting(*INBOX_ROLES)


async def in_words(
    pages: Pages, visit: Visit, services: Services, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each notification with its title and line in the person's language (`said`)."""
    assert visit.account is not None
    account = visit.account

    async def demand_of(demand_id: str) -> tuple[str, dict[str, Any] | None]:
        try:
            return demand_id, await services.call(
                account, "dispatch", "GET", f"/v1/demands/{demand_id}"
            )
        except Refused:
            return demand_id, None  # gone or out of reach now: said without its details

    wanted = {item["demand_id"] for item in items if item.get("demand_id")}
    demands = dict(await asyncio.gather(*(demand_of(d) for d in wanted)))
    _ = pages.translator(visit.language)
    locale = "zh_CN" if visit.language == "zh-CN" else "en"
    for item in items:
        office = item.get("recipient", {}).get("type") in ("secretary", "street", "district")
        item["said"] = say(
            item["kind"],
            demands.get(item.get("demand_id") or ""),
            _,
            lambda instant: pages.when(instant, locale),
            office=office,
        )
    return items


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
    items = await in_words(pages, visit, services, found["items"])
    return page(pages, visit, "inbox.html", items=items, unread=found["unread"], problem=problem)


@router.post("/inbox/read")
async def mark_read(request: Request, services: ServicesDep, visit: Visit = Posting) -> Response:
    assert visit.account is not None
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
