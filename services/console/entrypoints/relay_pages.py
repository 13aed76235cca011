"""Relay rosters in the console (issue 14).

The secretary: a form (the units serving the community, the days, the shift, people per
turn, each unit's days off), the proposal as a table to review (day -> unit, turns per
unit, days nobody can serve), then confirm: dispatch publishes a demand per turn, each
committed to its unit. A unit: its committed turns, to accept or hand back, and the people
it sends, named and substituted until check-in.
"""

import asyncio
import re
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.adapters.services import Refused, Services
from services.console.domain.accounts import Account, Role
from services.console.entrypoints import forms
from services.console.entrypoints.acting import Shown, act, posting, problem_page
from services.console.entrypoints.web import (
    Pages,
    PagesDep,
    ServicesDep,
    Settings,
    Visit,
    go,
    page,
    signed_in,
)
from services.console.entrypoints.words import refusal
from shared.clock import utcnow

router = APIRouter()
Secretary = signed_in(Role.SECRETARY)
SecretaryPosting = posting(Role.SECRETARY)
UnitAccount = signed_in(Role.UNIT)
UnitPosting = posting(Role.UNIT)

RELAY_FIELDS = (
    "title",
    "first_day",
    "last_day",
    "shift_start",
    "shift_end",
    "people_per_turn",
    "skills",
)
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _community(visit: Visit) -> str:
    assert visit.account is not None
    return visit.account.scope.community or ""


async def _units(services: Services, account: Account) -> list[dict[str, Any]]:
    community = account.scope.community or ""
    found = await services.call(account, "dispatch", "GET", f"/v1/communities/{community}/units")
    return list(found["items"])


# --- the secretary ---------------------------------------------------------------------------


@router.get("/relays")
async def relays(pages: PagesDep, services: ServicesDep, visit: Visit = Secretary) -> Response:
    assert visit.account is not None
    try:
        found = await services.call(
            visit.account,
            "dispatch",
            "GET",
            "/v1/rosters",
            params={"community_id": _community(visit)},
        )
        items, problem = found["items"], None
    except Refused as refused:
        items, problem = [], refusal(pages, visit, refused.problem)
    return page(pages, visit, "relays.html", rosters=items, problem=problem)


def _defaults() -> dict[str, str]:
    first = (utcnow() + timedelta(days=1)).date()
    return {
        "first_day": first.isoformat(),
        "last_day": (first + timedelta(days=29)).isoformat(),
        "shift_start": "08:00",
        "shift_end": "12:00",
        "people_per_turn": "3",
    }


async def _form(
    pages: Pages,
    visit: Visit,
    services: Services,
    values: dict[str, str],
    chosen: set[str] | None,
    blocked: dict[str, str],
    status: int = 200,
    **context: Any,
) -> Response:
    assert visit.account is not None
    try:
        units = await _units(services, visit.account)
    except Refused as refused:
        return problem_page(pages, visit, refused)
    context.setdefault("errors", {})
    context.setdefault("problem", None)
    return page(
        pages,
        visit,
        "relay_new.html",
        status=status,
        units=units,
        values=values,
        chosen=chosen if chosen is not None else {unit["id"] for unit in units},
        blocked=blocked,
        **context,
    )


@router.get("/relays/new")
async def new_relay(pages: PagesDep, services: ServicesDep, visit: Visit = Secretary) -> Response:
    return await _form(pages, visit, services, _defaults(), None, {})


def _days_off(text: str) -> list[str]:
    """`2030-06-01, 2030-06-03` (Chinese commas too) as ISO dates; what is no date goes
    to dispatch as typed, to be refused there with its field."""
    return [part.strip() for part in re.split(r"[,，;；\s]+", text) if part.strip()]


def relay_body(
    values: dict[str, str],
    chosen: list[str],
    blocked: dict[str, str],
    community: str,
    zone: str,
) -> dict[str, Any]:
    """The form as dispatch's JSON (`POST /v1/rosters`)."""
    body: dict[str, Any] = {
        "community_id": community,
        "units": chosen,
        "first_day": values.get("first_day", ""),
        "last_day": values.get("last_day", ""),
        "shift_start": values.get("shift_start", ""),
        "shift_end": values.get("shift_end", ""),
        "timezone": zone,
        "people_per_turn": values.get("people_per_turn") or None,
        "skills": [
            s.strip() for s in values.get("skills", "").replace("，", ",").split(",") if s.strip()
        ],
        "blocked": [
            {"unit_id": unit_id, "days": _days_off(text)}
            for unit_id, text in blocked.items()
            if unit_id in chosen and _days_off(text)
        ],
    }
    if values.get("title"):
        body["title"] = values["title"]
    return body


@router.post("/relays/new")
async def propose_relay(
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = SecretaryPosting,
) -> Response:
    form = await request.form()
    values = {key: forms.text(form, key) for key in RELAY_FIELDS}
    chosen = [
        str(unit_id)
        for unit_id in form.getlist("units")
        if isinstance(unit_id, str) and _ID.match(unit_id)
    ]
    blocked = {
        str(key).removeprefix("blocked-"): forms.text(form, str(key), 2000)
        for key in form
        if str(key).startswith("blocked-") and _ID.match(str(key).removeprefix("blocked-"))
    }

    async def again(said: Shown) -> Response:
        errors = dict(said.errors)
        return await _form(
            pages,
            visit,
            services,
            values,
            set(chosen),
            blocked,
            status=said.status,
            problem=said.problem,
            errors=errors,
        )

    if not chosen:
        _ = pages.translator(visit.language)
        return await _form(
            pages,
            visit,
            services,
            values,
            set(),
            blocked,
            status=422,
            problem=_("Some fields need correcting."),
            errors={"units": _("Choose at least one unit.")},
        )
    body = relay_body(values, chosen, blocked, _community(visit), settings.timezone)
    return await act(
        visit,
        "dispatch",
        "POST",
        "/v1/rosters",
        json=body,
        again=again,
        then=lambda roster: go(f"/relays/{roster['id']}", request),
    )


async def _names(services: Services, account: Account) -> dict[str, str]:
    try:
        return {unit["id"]: unit["name"] for unit in await _units(services, account)}
    except Refused:
        return {}


@router.get("/relays/{roster_id}")
async def relay(
    roster_id: str, pages: PagesDep, services: ServicesDep, visit: Visit = Secretary
) -> Response:
    assert visit.account is not None
    try:
        roster = await services.call(visit.account, "dispatch", "GET", f"/v1/rosters/{roster_id}")
    except Refused as refused:
        return problem_page(pages, visit, refused)
    return await _review(pages, visit, services, roster)


async def _review(
    pages: Pages, visit: Visit, services: Services, roster: dict[str, Any], **context: Any
) -> Response:
    assert visit.account is not None
    names = await _names(services, visit.account)
    turns = roster["turns"]
    total = max(1, len(turns))
    load = [
        {
            "unit_id": unit_id,
            "name": names.get(unit_id, unit_id),
            "turns": count,
            "share": round(100 * count / total),
        }
        for unit_id, count in roster["load"].items()
    ]
    return page(
        pages,
        visit,
        "relay_review.html",
        roster=roster,
        names=names,
        load=load,
        **context,
    )


@router.post("/relays/{roster_id}/confirm")
async def confirm_relay(
    roster_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = SecretaryPosting,
) -> Response:
    assert visit.account is not None

    account = visit.account

    async def again(said: Shown) -> Response:
        try:
            roster = await services.call(account, "dispatch", "GET", f"/v1/rosters/{roster_id}")
        except Refused as refused:
            return problem_page(pages, visit, refused)
        return await _review(pages, visit, services, roster, problem=said.problem)

    return await act(
        visit,
        "dispatch",
        "POST",
        f"/v1/rosters/{roster_id}/confirm",
        again=again,
        then=lambda _roster: go(f"/relays/{roster_id}", request),
    )


# --- the unit --------------------------------------------------------------------------------


async def _turns(services: Services, account: Account) -> list[dict[str, Any]]:
    """The unit's claims a roster committed it to, with their demands, soonest first."""
    found = await services.call(
        account, "units", "GET", "/v1/claims", params={"claimant_id": account.scope.unit}
    )
    claims = [claim for claim in found["items"] if claim.get("roster_id")]

    async def with_demand(claim: dict[str, Any]) -> dict[str, Any]:
        try:
            claim["demand"] = await services.call(
                account, "dispatch", "GET", f"/v1/demands/{claim['demand_id']}"
            )
        except Refused:
            claim["demand"] = {"title": claim["demand_id"]}
        return claim

    shown_ = await asyncio.gather(*(with_demand(claim) for claim in claims))
    return sorted(shown_, key=lambda claim: claim["starts_at"])


async def _turns_page(
    pages: Pages, visit: Visit, services: Services, status: int = 200, **context: Any
) -> Response:
    assert visit.account is not None
    try:
        turns = await _turns(services, visit.account)
    except Refused as refused:
        turns = []
        context.setdefault("problem", refusal(pages, visit, refused.problem))
    context.setdefault("problem", None)
    context.setdefault("errors", {})
    return page(pages, visit, "relay_turns.html", status=status, turns=turns, **context)


@router.get("/turns")
async def turns(pages: PagesDep, services: ServicesDep, visit: Visit = UnitAccount) -> Response:
    return await _turns_page(pages, visit, services)


def _on_turns(pages: Pages, visit: Visit, services: Services, claim_id: str) -> Any:
    async def again(said: Shown) -> Response:
        return await _turns_page(
            pages,
            visit,
            services,
            status=said.status,
            problem=said.problem,
            errors={claim_id: said.problem},
        )

    return again


@router.post("/turns/{claim_id}/accept")
async def accept_turn(
    claim_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = UnitPosting,
) -> Response:
    return await act(
        visit,
        "units",
        "POST",
        f"/v1/claims/{claim_id}/accept",
        again=_on_turns(pages, visit, services, claim_id),
        then=lambda _claim: go("/turns", request),
    )


@router.post("/turns/{claim_id}/hand-back")
async def hand_back_turn(
    claim_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = UnitPosting,
) -> Response:
    form = await request.form()
    reason = forms.text(form, "reason", 1000)
    return await act(
        visit,
        "units",
        "POST",
        f"/v1/claims/{claim_id}/hand-back",
        json={"reason": reason} if reason else None,
        again=_on_turns(pages, visit, services, claim_id),
        then=lambda _claim: go("/turns", request),
    )


@router.post("/turns/{claim_id}/members")
async def name_members(
    claim_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = UnitPosting,
) -> Response:
    form = await request.form()
    members = [
        line.strip() for line in forms.text(form, "members", 100_000).splitlines() if line.strip()
    ]
    return await act(
        visit,
        "units",
        "PUT",
        f"/v1/claims/{claim_id}/members",
        json={"members": members},
        again=_on_turns(pages, visit, services, claim_id),
        then=lambda _claim: go("/turns", request),
    )


@router.post("/turns/{claim_id}/substitute")
async def substitute_member(
    claim_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = UnitPosting,
) -> Response:
    form = await request.form()
    return await act(
        visit,
        "units",
        "POST",
        f"/v1/claims/{claim_id}/members/substitute",
        json={
            "member": forms.text(form, "member", 100),
            "substitute": forms.text(form, "substitute", 100),
        },
        again=_on_turns(pages, visit, services, claim_id),
        then=lambda _claim: go("/turns", request),
    )
