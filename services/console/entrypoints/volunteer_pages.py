"""The volunteer's and unit member's screens: what needs people, a demand, claiming, my
duties and their calendar feed, checking in, withdrawing and completing."""

import asyncio
from datetime import UTC
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from icalendar import Calendar, Event

from services.console.adapters import store
from services.console.adapters.services import Refused, Services
from services.console.domain.accounts import Account, Role
from services.console.domain.duties import ACTIVE, hours_this_week, split
from services.console.entrypoints import forms
from services.console.entrypoints.acting import Shown, act, posting
from services.console.entrypoints.fatigue_words import fatigue_shown
from services.console.entrypoints.secretary_pages import new_key, secretary_demand_page
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
from shared.clock import utcnow

router = APIRouter()
Claimer = signed_in(Role.VOLUNTEER, Role.UNIT)
Anyone = signed_in()
Posting = posting(Role.VOLUNTEER, Role.UNIT)


def claimant_id(account: Account) -> str:
    return account.scope.volunteer or account.scope.unit or ""


# --- what needs people ----------------------------------------------------------------------


@router.get("/needs")
async def needs(pages: PagesDep, services: ServicesDep, visit: Visit = Claimer) -> Response:
    assert visit.account is not None
    try:
        found = await services.call(visit.account, "units", "GET", "/v1/open-demands")
        items, problem = found["items"], None
    except Refused as refused:
        items, problem = [], refusal(pages, visit, refused.problem)
    return page(pages, visit, "needs.html", items=items, problem=problem)


# --- a demand -------------------------------------------------------------------------------


async def _my_claims(services: Services, account: Account, demand_id: str) -> list[dict[str, Any]]:
    found = await services.call(
        account,
        "units",
        "GET",
        "/v1/claims",
        params={"demand_id": demand_id, "claimant_id": claimant_id(account)},
    )
    items: list[dict[str, Any]] = found["items"]
    return items


async def claimer_demand_page(
    pages: Pages,
    visit: Visit,
    services: Services,
    demand_id: str,
    *,
    status: int = 200,
    **extra: Any,
) -> Response:
    assert visit.account is not None
    demand = await services.call(visit.account, "dispatch", "GET", f"/v1/demands/{demand_id}")
    claims = await _my_claims(services, visit.account, demand_id)
    demand["remaining"] = max(0, demand["slots"] - demand["filled"])
    active = [claim for claim in claims if claim["status"] in ACTIVE]
    extra.setdefault("errors", {})
    if (
        visit.account.role is Role.VOLUNTEER
        and not active
        and demand["status"] in ("open", "filled")
    ):
        extra.update(await fatigue_shown(pages, visit, services, demand_id))
    return page(
        pages,
        visit,
        "demand_claimer.html",
        status=status,
        demand=demand,
        claims=claims,
        active=active[0] if active else None,
        idem=new_key(),
        **extra,
    )


@router.get("/demands/{demand_id}")
async def demand_page(
    demand_id: str, pages: PagesDep, services: ServicesDep, visit: Visit = Anyone
) -> Response:
    if visit.role in (Role.VOLUNTEER, Role.UNIT):
        return await claimer_demand_page(pages, visit, services, demand_id)
    return await secretary_demand_page(pages, visit, services, demand_id)


@router.post("/demands/{demand_id}/claims")
async def claim(
    demand_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = Posting,
) -> Response:
    """Claim a place (or join the waitlist); a unit says how many and, maybe, who."""
    form = await request.form()
    body: dict[str, Any] = {"waitlist": forms.text(form, "waitlist") == "yes"}
    if visit.role is Role.UNIT:
        body["headcount"] = forms.text(form, "headcount") or "1"
        members = forms.items(form, "members")
        if members:
            body["members"] = members

    async def again(said: Shown) -> Response:
        return await claimer_demand_page(
            pages, visit, services, demand_id, **said.context(), problem_slug=said.slug
        )

    assert visit.account is not None
    before = await _demand_version(services, visit.account, demand_id)

    async def counted(answer: dict[str, Any]) -> Response:
        if answer.get("status") == "accepted" and before is not None:
            await _until_dispatch_moves(services, visit.account, demand_id, before)
        return go(f"/demands/{demand_id}", request)

    return await act(
        visit,
        "units",
        "POST",
        f"/v1/demands/{demand_id}/claims",
        json=body,
        idem=forms.text(form, "idem", 100),
        again=again,
        then=counted,
    )


# The page after a claim shows the demand as dispatch has it, and dispatch counts a place
# taken when units' claim event reaches it, tens of milliseconds after units answered: shown
# at once, the page said "2 of 2 places left" above "your claim: accepted". So an accepted
# claim waits, bounded, for dispatch's demand to change (its version) before the page.
COUNTED_WITHIN_S = 2.0


async def _demand_version(services: Services, account: Account, demand_id: str) -> int | None:
    try:
        demand = await services.call(account, "dispatch", "GET", f"/v1/demands/{demand_id}")
    except Refused:
        return None  # the claim's own answer says what is wrong
    version: int = demand["version"]
    return version


async def _until_dispatch_moves(
    services: Services, account: Account | None, demand_id: str, version: int
) -> None:
    assert account is not None
    deadline = asyncio.get_running_loop().time() + COUNTED_WITHIN_S
    delay = 0.05
    while asyncio.get_running_loop().time() < deadline:
        now = await _demand_version(services, account, demand_id)
        if now is None or now > version:
            return
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.25)


# --- withdraw, check in, complete ------------------------------------------------------------


async def _claim_action(
    claim_id: str,
    action: str,
    body: dict[str, Any],
    request: Request,
    pages: Pages,
    services: Services,
    visit: Visit,
) -> Response:
    demand_id = forms.text(await request.form(), "demand_id", 200)

    async def again(said: Shown) -> Response:
        if action == "check-in":
            return await check_in_page(
                demand_id,
                pages,
                services,
                visit,
                code=body.get("code", ""),
                status=said.status,
                problem=said.problem,
            )
        return await claimer_demand_page(pages, visit, services, demand_id, **said.context())

    return await act(
        visit,
        "units",
        "POST",
        f"/v1/claims/{claim_id}/{action}",
        json=body,
        again=again,
        then=lambda found: go(f"/demands/{found['demand_id']}", request),
    )


@router.post("/claims/{claim_id}/withdraw")
async def withdraw(
    claim_id: str, request: Request, pages: PagesDep, services: ServicesDep, visit: Visit = Posting
) -> Response:
    reason = forms.text(await request.form(), "reason", 1000)
    return await _claim_action(
        claim_id,
        "withdraw",
        {"reason": reason} if reason else {},
        request,
        pages,
        services,
        visit,
    )


@router.post("/claims/{claim_id}/complete")
async def complete(
    claim_id: str, request: Request, pages: PagesDep, services: ServicesDep, visit: Visit = Posting
) -> Response:
    form = await request.form()
    body: dict[str, Any] = {"report": forms.text(form, "report")}
    if forms.text(form, "served"):
        body["served"] = forms.text(form, "served")
    return await _claim_action(claim_id, "complete", body, request, pages, services, visit)


@router.post("/claims/{claim_id}/check-in")
async def check_in(
    claim_id: str, request: Request, pages: PagesDep, services: ServicesDep, visit: Visit = Posting
) -> Response:
    code = forms.text(await request.form(), "code", 32)
    return await _claim_action(
        claim_id, "check-in", {"code": code}, request, pages, services, visit
    )


async def check_in_page(
    demand_id: str,
    pages: Pages,
    services: Services,
    visit: Visit,
    *,
    code: str,
    status: int = 200,
    problem: str | None = None,
) -> Response:
    assert visit.account is not None
    demand = await services.call(visit.account, "dispatch", "GET", f"/v1/demands/{demand_id}")
    claims = await _my_claims(services, visit.account, demand_id)
    active = [c for c in claims if c["status"] in ("accepted", "checked_in")]
    return page(
        pages,
        visit,
        "check_in.html",
        status=status,
        demand=demand,
        claim=active[0] if active else None,
        code=code,
        problem=problem,
    )


@router.get("/check-in/{demand_id}")
async def check_in_from_qr(
    demand_id: str,
    pages: PagesDep,
    services: ServicesDep,
    code: str = "",
    visit: Visit = Claimer,
) -> Response:
    """Where the on-site QR code leads: the code filled in, one tap to check in."""
    return await check_in_page(demand_id, pages, services, visit, code=code[:32])


# --- my duties and the calendar feed ---------------------------------------------------------


async def _duties(services: Services, account: Account) -> list[dict[str, Any]]:
    found = await services.call(
        account, "units", "GET", "/v1/claims", params={"claimant_id": claimant_id(account)}
    )
    claims: list[dict[str, Any]] = found["items"]
    for claim in claims:
        for key in ("starts_at", "ends_at"):
            claim[key] = parse_instant(claim[key])

    async def demand_of(demand_id: str) -> tuple[str, dict[str, Any] | None]:
        try:
            return demand_id, await services.call(
                account, "dispatch", "GET", f"/v1/demands/{demand_id}"
            )
        except Refused:
            return demand_id, None

    demands = dict(await asyncio.gather(*(demand_of(d) for d in {c["demand_id"] for c in claims})))
    for claim in claims:
        claim["demand"] = demands.get(claim["demand_id"]) or {"title": claim["demand_id"]}
    return claims


@router.get("/duties")
async def duties(
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    db: Db,
    visit: Visit = Claimer,
) -> Response:
    assert visit.account is not None
    now = utcnow()
    try:
        claims, problem = await _duties(services, visit.account), None
    except Refused as refused:
        claims, problem = [], refusal(pages, visit, refused.problem)
    upcoming, past = split(claims, now)
    token = visit.account.calendar_token
    return page(
        pages,
        visit,
        "duties.html",
        upcoming=upcoming,
        past=past,
        problem=problem,
        hours=hours_this_week(claims, now, settings.zone),
        calendar_url=f"{settings.public_url.rstrip('/')}/calendar/{token}.ics" if token else None,
    )


@router.post("/duties/calendar")
async def new_calendar_link(request: Request, db: Db, visit: Visit = Posting) -> Response:
    assert visit.account is not None
    await store.calendar_token(db, visit.account.id)
    return go("/duties", request)


@router.get("/calendar/{token}.ics")
async def calendar(
    token: str, db: Db, services: ServicesDep, settings: Settings, pages: PagesDep
) -> Response:
    """The person's shifts as iCalendar. The token in the URL is the only key (calendar apps
    cannot sign in); each claim is one event with a stable UID, so an app updates it in
    place when the shift changes and marks it cancelled when it is withdrawn or released."""
    account = await store.account_by_calendar(db, token[:100])
    if account is None:
        return Response("unknown calendar\n", status_code=404, media_type="text/plain")
    try:
        claims = await _duties(services, account)
    except Refused:
        return Response(
            "the services are unreachable\n",
            status_code=503,
            media_type="text/plain",
            headers={"Retry-After": "60"},
        )
    host = settings.public_url.split("//", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "whistle"
    _ = pages.translator(account.language or "zh-CN")
    cal = Calendar()
    cal.add("prodid", "-//Whistle//console//EN")
    cal.add("version", "2.0")
    cal.add("x-wr-calname", _("My duties"))
    cal.add("x-wr-timezone", settings.timezone)
    for claim in claims:
        if claim["status"] == "waitlisted":
            continue
        demand = claim["demand"]
        event = Event()
        event.add("uid", f"{claim['id']}@{host}")
        event.add("summary", demand.get("title", ""))
        event.add("dtstart", claim["starts_at"].astimezone(UTC))
        event.add("dtend", claim["ends_at"].astimezone(UTC))
        event.add("dtstamp", utcnow())
        cancelled = claim["status"] in ("withdrawn", "released") or demand.get("status") in (
            "cancelled",
            "expired",
        )
        event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
        # The demand's version rises with every change of it; the claim's state adds to it.
        event.add("sequence", int(demand.get("version", 0)) * 10 + (1 if cancelled else 0))
        location = demand.get("location") or {}
        where = " ".join(
            str(location[k]) for k in ("address", "building", "grid") if location.get(k)
        )
        if where:
            event.add("location", where)
        event.add("url", f"{settings.public_url.rstrip('/')}/demands/{claim['demand_id']}")
        cal.add_component(event)
    return Response(
        cal.to_ical(),
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )
