"""The wall: a full-screen dashboard of one community (or street, or district) for a screen on
the office wall, opened by a read-only link with a secret token, live over SSE.

The link reads the services as the account that made it (a secretary for their community,
street or district staff for theirs), and only reads: the wall has GET routes alone, sets no
cookie and carries no form, so nothing can be written through it. Revoking it, or disabling
the account that made it, stops it at once: every page load and every look of the live
stream checks the link first."""

import asyncio
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from services.console.adapters import store
from services.console.adapters.services import Refused, Services
from services.console.domain.accounts import OVERSIGHT, Account, Language, Role, pick_language
from services.console.domain.wall import build
from services.console.entrypoints import forms, live
from services.console.entrypoints.acting import posting
from services.console.entrypoints.web import (
    Db,
    PagesDep,
    ServicesDep,
    Settings,
    Visit,
    go,
    page,
    parse_instant,
    signed_in,
)
from shared.clock import utcnow
from shared.store.mongo import Document

router = APIRouter()
WALL_ROLES = (Role.SECRETARY, *OVERSIGHT)
Owner = signed_in(*WALL_ROLES)
Posting = posting(*WALL_ROLES)
STATUSES = ("open", "filled", "in_progress", "completed")


# --- making and revoking links ---------------------------------------------------------------


async def _walls_page(
    pages: PagesDep, visit: Visit, db: Db, settings: Settings, **context: Any
) -> Response:
    assert visit.account is not None
    walls = await store.walls_of(db, visit.account.id)
    return page(
        pages, visit, "walls.html", walls=walls, base=settings.public_url.rstrip("/"), **context
    )


@router.get("/walls")
async def walls(pages: PagesDep, db: Db, settings: Settings, visit: Visit = Owner) -> Response:
    return await _walls_page(pages, visit, db, settings)


@router.post("/walls")
async def make_wall(
    request: Request, pages: PagesDep, db: Db, settings: Settings, visit: Visit = Posting
) -> Response:
    assert visit.account is not None
    label = forms.text(await request.form(), "label", 100) or visit.account.scope.place or ""
    token, _doc = await store.create_wall(
        db,
        owner=visit.account.id,
        place=visit.account.scope.place or "",
        label=label,
        now=utcnow(),
    )
    # The token is shown this once (stored only as a digest), like an invitation's.
    link = f"{settings.public_url.rstrip('/')}/wall/{token}"
    return await _walls_page(pages, visit, db, settings, new_link=link)


@router.post("/walls/{wall_id}/revoke")
async def revoke_wall(wall_id: str, request: Request, db: Db, visit: Visit = Posting) -> Response:
    assert visit.account is not None
    await store.revoke_wall(db, visit.account.id, wall_id[:100], utcnow())
    return go("/walls", request)


# --- the wall itself -------------------------------------------------------------------------


async def _opened(db: Db, token: str) -> tuple[Document, Account] | None:
    """The link and the account it reads as; None when revoked, unknown or its owner is
    disabled (or no longer of a role that has a wall)."""
    wall = await store.live_wall(db, token[:100])
    if wall is None:
        return None
    owner = await store.account_by_id(db, wall["owner"])
    if owner is None or not owner.active or owner.role not in WALL_ROLES:
        return None
    return wall, owner


async def _claims(services: Services, owner: Account, demand_id: str) -> tuple[str, list[Any]]:
    try:
        found = await services.call(
            owner, "units", "GET", "/v1/claims", params={"demand_id": demand_id}
        )
        return demand_id, found["items"]
    except Refused:
        return demand_id, []  # street and district staff do not read the community's claims


async def _wall_html(
    pages: PagesDep, services: Services, settings: Settings, owner: Account, language: Language
) -> str:
    params: dict[str, Any] = {"status": list(STATUSES), "limit": 200}
    if owner.role is Role.SECRETARY:
        params["community_id"] = owner.scope.community
    demands = (await services.call(owner, "dispatch", "GET", "/v1/demands", params=params))["items"]
    now = utcnow()
    today = now.astimezone(settings.zone).date()
    # Claims only where people can be on site or have just finished: started, or done today.
    busy = [
        d["id"]
        for d in demands
        if (d["status"] in ("open", "filled", "in_progress") and _started(d, now))
        or (d["status"] == "completed" and _closed_on(d, today, settings))
    ][:50]
    claims = dict(await asyncio.gather(*(_claims(services, owner, d) for d in busy)))
    wall = build(demands, claims, now, settings.zone)
    return pages.render(language, "_wall.html", wall=wall, now=now)


def _started(demand: dict[str, Any], now: datetime) -> bool:
    starts = parse_instant(demand["starts_at"])
    return starts is not None and starts <= now


def _closed_on(demand: dict[str, Any], day: date, settings: Settings) -> bool:
    closed = parse_instant(demand.get("closed_at"))
    return closed is not None and closed.astimezone(settings.zone).date() == day


def _language(request: Request, owner: Account) -> Language:
    return pick_language(request.query_params.get("lang")) or owner.language or "zh-CN"


@router.get("/wall/{token}")
async def wall(
    token: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    db: Db,
) -> Response:
    opened = await _opened(db, token)
    language: Language = pick_language(request.query_params.get("lang")) or "zh-CN"
    if opened is None:
        body = pages.render(language, "wall_gone.html", lang=language)
        return Response(body, status_code=410, media_type="text/html; charset=utf-8")
    wall_doc, owner = opened
    language = _language(request, owner)
    html = await _wall_html(pages, services, settings, owner, language)
    body = pages.render(
        language,
        "wall.html",
        lang=language,
        live_html=html,
        label=wall_doc.get("label", ""),
        stream=f"/wall/{token}/stream?lang={language}",
        now=utcnow(),
    )
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


@router.get("/wall/{token}/stream")
async def wall_stream(
    token: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    db: Db,
) -> Response:
    opened = await _opened(db, token)
    if opened is None:
        return Response("revoked\n", status_code=410, media_type="text/plain")
    _wall, account = opened
    language = _language(request, account)

    async def lives() -> bool:
        return await _opened(db, token) is not None

    gone = pages.render(language, "_wall_gone.html")
    stream: EventSourceResponse = live.stream_while(
        settings,
        lives,
        "revoked",
        {"wall": lambda: _wall_html(pages, services, settings, account, language)},
        ended_html=gone,
    )
    return stream
