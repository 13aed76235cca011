"""The secretary's screens: the board, posting a demand (once or over several days), a
demand's page, its check-in QR code and roster, and the volunteers."""

import asyncio
import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from services.console.adapters import store
from services.console.adapters.qr import qr_svg
from services.console.adapters.services import Refused, Services
from services.console.domain.accounts import OVERSIGHT, Account, Role, Scope
from services.console.domain.series import MAX_DAYS, Shift, repeat_daily
from services.console.entrypoints import forms, live
from services.console.entrypoints.acting import Shown, act, invitation_shown, posting, shown, to
from services.console.entrypoints.web import (
    Db,
    Pages,
    PagesDep,
    ServicesDep,
    Settings,
    Visit,
    go,
    page,
    parse_instant,
    signed_in,
)
from services.console.entrypoints.words import refusal
from services.console.handlers import commands
from shared.clock import utcnow
from shared.events.catalogue import DemandEscalated

router = APIRouter()
Secretary = signed_in(Role.SECRETARY)
Posting = posting(Role.SECRETARY)

BOARD_STATUSES = ("open", "filled", "in_progress")
DEMAND_FIELDS = (
    "title",
    "slots",
    "starts_at",
    "ends_at",
    "fill_by",
    "priority",
    "skills",
    "kind",
    "description",
    "grid",
    "building",
    "address",
    "days",
)


def new_key() -> str:
    return secrets.token_urlsafe(16)


# --- the board ------------------------------------------------------------------------------


async def board_groups(services: Services, account: Account) -> dict[str, list[dict[str, Any]]]:
    page_ = await services.call(
        account,
        "dispatch",
        "GET",
        "/v1/demands",
        params={
            "community_id": account.scope.community,
            "status": list(BOARD_STATUSES),
            "limit": 200,
        },
    )
    groups: dict[str, list[dict[str, Any]]] = {
        "escalated": [],
        "open": [],
        "filled": [],
        "in_progress": [],
    }
    for demand in page_["items"]:
        demand["remaining"] = max(0, demand["slots"] - demand["filled"])
        if demand["status"] == "open" and demand["level"] != "community":
            groups["escalated"].append(demand)
        else:
            groups[demand["status"]].append(demand)
    for items in groups.values():
        items.sort(key=lambda demand: demand["fill_by"])
    return groups


async def _board_html(pages: Pages, visit: Visit, services: Services) -> str:
    assert visit.account is not None
    groups = await board_groups(services, visit.account)
    return pages.render(visit.language, "_board.html", groups=groups, now=utcnow())


@router.get("/board")
async def board(pages: PagesDep, services: ServicesDep, visit: Visit = Secretary) -> Response:
    try:
        html = await _board_html(pages, visit, services)
        problem = None
    except Refused as refused:
        html, problem = "", refusal(pages, visit, refused.problem)
    return page(pages, visit, "board.html", board_html=html, problem=problem)


@router.get("/board/stream")
async def board_stream(
    pages: PagesDep, services: ServicesDep, visit: Visit = Secretary
) -> EventSourceResponse:
    return live.stream(visit, {"board": lambda: _board_html(pages, visit, services)})


# --- posting a demand -----------------------------------------------------------------------


def _defaults(settings: Settings) -> dict[str, str]:
    start = (utcnow() + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    return {
        "slots": "1",
        "priority": "routine",
        "kind": "staffing",
        "days": "1",
        "starts_at": forms.local_field(start, settings.zone),
        "ends_at": forms.local_field(start + timedelta(hours=4), settings.zone),
    }


@router.get("/demands/new")
async def new_demand(pages: PagesDep, settings: Settings, visit: Visit = Secretary) -> Response:
    return page(
        pages,
        visit,
        "demand_new.html",
        values=_defaults(settings),
        errors={},
        problem=None,
        idem=new_key(),
        max_days=MAX_DAYS,
    )


def demand_body(values: dict[str, str], community: str, settings: Settings) -> dict[str, Any]:
    """The form as the service's JSON; only what was filled in is sent, so the service's own
    defaults apply (kind staffing, priority routine, fill_by = start, no skills)."""
    body: dict[str, Any] = {
        "community_id": community,
        "kind": values.get("kind") or "staffing",
        "title": values.get("title", ""),
        "slots": values.get("slots") or None,
        "starts_at": forms.local_instant(values.get("starts_at", ""), settings.zone),
        "ends_at": forms.local_instant(values.get("ends_at", ""), settings.zone),
        "priority": values.get("priority") or "routine",
        "skills": [
            s.strip() for s in values.get("skills", "").replace("，", ",").split(",") if s.strip()
        ],
    }
    if values.get("fill_by"):
        body["fill_by"] = forms.local_instant(values["fill_by"], settings.zone)
    if values.get("description"):
        body["description"] = values["description"]
    location = {key: values[key] for key in ("grid", "building", "address") if values.get(key)}
    if location:
        body["location"] = location
    return body


def _instant(value: Any) -> datetime | None:
    try:
        return parse_instant(value)
    except (TypeError, ValueError):
        return None


def _days(values: dict[str, str]) -> int | None:
    text = values.get("days") or "1"
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_DAYS else None


@router.post("/demands/new")
async def post_demand(
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = Posting,
) -> Response:
    assert visit.account is not None
    _ = pages.translator(visit.language)
    form = await request.form()
    values = {key: forms.text(form, key) for key in DEMAND_FIELDS}
    idem = forms.text(form, "idem", 100) or new_key()

    def again(status: int, **context: Any) -> Response:
        context.setdefault("errors", {})
        context.setdefault("problem", None)
        return page(
            pages,
            visit,
            "demand_new.html",
            status=status,
            values=values,
            idem=idem,
            max_days=MAX_DAYS,
            **context,
        )

    days = _days(values)
    if days is None:
        return again(422, errors={"days": _("1 to %(max)s days.") % {"max": MAX_DAYS}})
    body = demand_body(values, visit.account.scope.community or "", settings)
    starts, ends = _instant(body["starts_at"]), _instant(body["ends_at"])
    # With times the service would refuse, post once: its refusal says what to correct.
    shifts = (
        repeat_daily(starts, ends, _instant(body.get("fill_by")), days)
        if days > 1 and starts and ends
        else []
    )
    if shifts and forms.text(form, "confirm") != "yes":
        return page(
            pages, visit, "series_preview.html", values=values, shifts=shifts, idem=idem, body=body
        )
    bodies = [body] if not shifts else [series_body(body, shift) for shift in shifts]
    posted: list[dict[str, Any]] = []
    for index, each in enumerate(bodies):
        try:
            posted.append(
                await services.call(
                    visit.account,
                    "dispatch",
                    "POST",
                    "/v1/demands",
                    json=each,
                    idempotency_key=f"{idem}-{index}",
                )
            )
        except Refused as refused:
            # Shifts already posted stay posted (their keys make a resend harmless).
            return again(**shown(pages, visit, refused).context(), posted=posted)
    return go(f"/demands/{posted[0]['id']}" if len(posted) == 1 else "/board", request)


def series_body(body: dict[str, Any], shift: Shift) -> dict[str, Any]:
    return {
        **body,
        "starts_at": shift.starts_at.isoformat(),
        "ends_at": shift.ends_at.isoformat(),
        **({"fill_by": shift.fill_by.isoformat()} if shift.fill_by else {}),
    }


# --- a demand's page ------------------------------------------------------------------------


async def _names(
    services: Services, account: Account, claims: list[dict[str, Any]]
) -> dict[str, str]:
    """Claimant id -> name, read from units (the registry owns names)."""

    async def name_of(claimant: dict[str, str]) -> tuple[str, str]:
        kind = "volunteers" if claimant["type"] == "volunteer" else "units"
        try:
            found = await services.call(account, "units", "GET", f"/v1/{kind}/{claimant['id']}")
            return claimant["id"], str(found.get("name") or claimant["id"])
        except Refused:
            return claimant["id"], claimant["id"]

    unique = {claim["claimant"]["id"]: claim["claimant"] for claim in claims}
    return dict(await asyncio.gather(*(name_of(c) for c in unique.values())))


async def secretary_view(services: Services, account: Account, demand_id: str) -> dict[str, Any]:
    demand = await services.call(account, "dispatch", "GET", f"/v1/demands/{demand_id}")
    try:
        claims = (
            await services.call(
                account, "units", "GET", "/v1/claims", params={"demand_id": demand_id}
            )
        )["items"]
    except Refused:
        if account.role not in OVERSIGHT:
            raise
        claims = []  # street and district staff see the demand; its claims stay the community's
    claims.sort(key=lambda claim: claim["created_at"])
    names = await _names(services, account, claims)
    try:
        timeline = (await services.call(account, "audit", "GET", f"/v1/timeline/{demand_id}"))[
            "items"
        ]
    except Refused:
        timeline = []
    demand["remaining"] = max(0, demand["slots"] - demand["filled"])
    return {
        "demand": demand,
        "claims": [c for c in claims if c["status"] != "waitlisted"],
        "waitlist": [c for c in claims if c["status"] == "waitlisted"],
        "checked_in": [c for c in claims if c.get("checked_in_at")],
        "names": names,
        "timeline": timeline,
        "escalations": [
            item for item in timeline if item.get("event", item).get("type") == DemandEscalated.TYPE
        ],
    }


async def _demand_live_html(pages: Pages, visit: Visit, services: Services, demand_id: str) -> str:
    assert visit.account is not None
    view = await secretary_view(services, visit.account, demand_id)
    return pages.render(visit.language, "_demand_live.html", **view, now=utcnow())


async def secretary_demand_page(
    pages: Pages, visit: Visit, services: Services, demand_id: str, **extra: Any
) -> Response:
    assert visit.account is not None
    view = await secretary_view(services, visit.account, demand_id)
    live_html = pages.render(visit.language, "_demand_live.html", **view, now=utcnow())
    return page(
        pages,
        visit,
        "demand_secretary.html",
        live_html=live_html,
        idem=new_key(),
        **view,
        **extra,
    )


@router.get("/demands/{demand_id}/stream")
async def demand_stream(
    demand_id: str, pages: PagesDep, services: ServicesDep, visit: Visit = Secretary
) -> EventSourceResponse:
    return live.stream(
        visit, {"demand": lambda: _demand_live_html(pages, visit, services, demand_id)}
    )


@router.post("/demands/{demand_id}/cancel")
async def cancel_demand(
    demand_id: str, request: Request, pages: PagesDep, services: ServicesDep, visit: Visit = Posting
) -> Response:
    return await close_demand(demand_id, "cancel", request, pages, services, visit)


@router.post("/demands/{demand_id}/complete")
async def complete_demand(
    demand_id: str, request: Request, pages: PagesDep, services: ServicesDep, visit: Visit = Posting
) -> Response:
    return await close_demand(demand_id, "complete", request, pages, services, visit)


async def close_demand(
    demand_id: str,
    action: Literal["cancel", "complete"],
    request: Request,
    pages: Pages,
    services: Services,
    visit: Visit,
) -> Response:
    """Cancel (with a reason) or complete a demand."""
    form = await request.form()
    summary = forms.text(form, "summary")
    body = (
        {"reason": forms.text(form, "reason", 1000)}
        if action == "cancel"
        else ({"summary": summary} if summary else {})
    )

    async def again(said: Shown) -> Response:
        return await secretary_demand_page(
            pages,
            visit,
            services,
            demand_id,
            problem=said.problem,
            close_errors={action: said.errors},
        )

    return await act(
        visit,
        "dispatch",
        "POST",
        f"/v1/demands/{demand_id}/{action}",
        json=body,
        idem=forms.text(form, "idem", 100),
        again=again,
        then=to(f"/demands/{demand_id}", request),
    )


# --- check-in QR and roster -----------------------------------------------------------------


def check_in_link(settings: Settings, demand_id: str, code: str) -> str:
    return f"{settings.public_url.rstrip('/')}/check-in/{demand_id}?code={code}"


async def _code_view(
    pages: Pages, visit: Visit, services: Services, settings: Settings, demand_id: str
) -> dict[str, Any]:
    assert visit.account is not None
    _ = pages.translator(visit.language)
    demand = await services.call(visit.account, "dispatch", "GET", f"/v1/demands/{demand_id}")
    code = await services.call(
        visit.account, "units", "GET", f"/v1/demands/{demand_id}/check-in-code"
    )
    link = check_in_link(settings, demand_id, code["code"])
    return {
        "demand": demand,
        "code": code,
        "link": link,
        "qr": qr_svg(link, label=_("Check-in QR code for %(title)s") % {"title": demand["title"]}),
    }


@router.get("/demands/{demand_id}/qr")
async def check_in_qr(
    demand_id: str,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = Secretary,
) -> Response:
    view = await _code_view(pages, visit, services, settings, demand_id)
    return page(pages, visit, "qr.html", **view)


@router.get("/demands/{demand_id}/roster")
async def roster(
    demand_id: str,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = Secretary,
) -> Response:
    assert visit.account is not None
    view = await _code_view(pages, visit, services, settings, demand_id)
    claims = (
        await services.call(
            visit.account, "units", "GET", "/v1/claims", params={"demand_id": demand_id}
        )
    )["items"]
    claims = [c for c in claims if c["status"] in ("accepted", "checked_in", "completed")]
    claims.sort(key=lambda claim: claim["created_at"])
    names = await _names(services, visit.account, claims)
    lines: list[dict[str, Any]] = []
    for claim in claims:
        people = claim.get("members") or [names.get(claim["claimant"]["id"], "")]
        for person in people[: claim["headcount"]]:
            lines.append({"name": person, "claim": claim})
        for _extra in range(claim["headcount"] - len(people)):
            lines.append({"name": names.get(claim["claimant"]["id"], ""), "claim": claim})
    return page(pages, visit, "roster.html", lines=lines, **view)


# --- volunteers -----------------------------------------------------------------------------


async def _volunteers_page(
    pages: Pages, visit: Visit, db: Db, *, status: int = 200, **context: Any
) -> Response:
    assert visit.account is not None
    community = visit.account.scope.community or ""
    accounts = [
        a
        for a in await store.accounts_of_community(db, community)
        if a.role in (Role.VOLUNTEER, Role.UNIT)
    ]
    invitations = [
        doc
        for doc in await store.invitations_of_community(db, community)
        if doc["role"] == Role.VOLUNTEER.value
    ]
    context.setdefault("values", {})
    context.setdefault("errors", {})
    return page(
        pages,
        visit,
        "volunteers.html",
        status=status,
        accounts=accounts,
        invitations=invitations,
        idem=new_key(),
        **context,
    )


@router.get("/volunteers")
async def volunteers(pages: PagesDep, db: Db, visit: Visit = Secretary) -> Response:
    return await _volunteers_page(pages, visit, db)


@router.post("/volunteers")
async def register_volunteer(
    request: Request,
    pages: PagesDep,
    db: Db,
    settings: Settings,
    visit: Visit = Posting,
) -> Response:
    """Register a volunteer with units, then invite them to set a password."""
    assert visit.account is not None
    account = visit.account
    form = await request.form()
    values = {
        key: forms.text(form, key, 200)
        for key in ("name", "phone", "building", "skills", "max_hours_per_week")
    }
    community = account.scope.community or ""
    body: dict[str, Any] = {
        "name": values["name"],
        "community_id": community,
        "skills": forms.items(form, "skills"),
    }
    if values["building"]:
        body["building"] = values["building"]
    if values["max_hours_per_week"]:
        body["max_hours_per_week"] = values["max_hours_per_week"]
    if values["phone"]:
        body["contact"] = {"phone": values["phone"]}

    async def again(said: Shown) -> Response:
        errors = dict(said.errors)
        if "contact" in errors:
            errors["phone"] = errors.pop("contact")
        context = {**said.context(), "errors": errors}
        return await _volunteers_page(pages, visit, db, values=values, **context)

    async def then(volunteer: dict[str, Any]) -> Response:
        link, _doc = await commands.invite(
            db,
            settings,
            role=Role.VOLUNTEER,
            scope=Scope(volunteer=volunteer["id"]),
            name=volunteer["name"],
            login_hint=(values["phone"] or "").replace(" ", "") or None,
            community=community,
            invited_by=account.login,
            now=utcnow(),
        )
        shown_link = invitation_shown(pages, visit, link, volunteer["name"])
        return await _volunteers_page(pages, visit, db, **shown_link)

    return await act(
        visit,
        "units",
        "POST",
        "/v1/volunteers",
        json=body,
        idem=forms.text(form, "idem", 100),
        again=again,
        then=then,
    )
