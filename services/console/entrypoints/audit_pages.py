"""The auditor's screens: the event log (filters, pages, each envelope and hash, NDJSON), a
demand's timeline drawn as one and its state at a chosen moment, the chain's verification,
and the responsiveness report (table, SVG bar chart, rules and weights, CSV).

Audit answers every question; the console only asks on the auditor's behalf and draws."""

import json
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from services.console.adapters.services import Refused
from services.console.domain.accounts import Role
from services.console.domain.chart import bars
from services.console.entrypoints import forms
from services.console.entrypoints.acting import shown
from services.console.entrypoints.web import (
    PagesDep,
    ServicesDep,
    Settings,
    Visit,
    page,
    parse_instant,
    signed_in,
)

router = APIRouter()
Auditor = signed_in(Role.AUDITOR)
FILTERS = ("type", "subject", "community_id", "partition", "since", "until")
PAGE = 50
GROUPINGS = ("unit", "community", "volunteer")
SECONDS = "%Y-%m-%dT%H:%M:%S"  # a datetime-local field's value to the second


def asked(
    request: Request, settings: Settings, keys: tuple[str, ...], times: tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """A query form's fields as typed (to show again) and as audit's query: only what was
    filled in, the `times` (local wall-clock fields) as instants in the console's zone."""
    typed = {key: request.query_params.get(key, "").strip()[:200] for key in keys}
    query = {key: value for key, value in typed.items() if value}
    for key in times:
        if key in query:
            query[key] = forms.local_instant(query[key], settings.zone) or ""
    return typed, query


def _filters(request: Request, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    return asked(request, settings, FILTERS, ("since", "until"))


@router.get("/audit/events")
async def events(
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    after: int = 0,
    cursor: str | None = None,
    visit: Visit = Auditor,
) -> Response:
    assert visit.account is not None
    typed, query = _filters(request, settings)
    problem = None
    items: list[dict[str, Any]] = []
    # The log is partitioned: a seq means something within one partition only, so one
    # partition pages by `after`, the whole log by audit's opaque `cursor`.
    paging: dict[str, Any] = (
        {"after": max(0, after)} if "partition" in query else ({"cursor": cursor} if cursor else {})
    )
    next_page: dict[str, Any] | None = None
    try:
        found = await services.call(
            visit.account, "audit", "GET", "/v1/events", params={**query, **paging, "limit": PAGE}
        )
        items = found["items"]
        if "partition" in query and found.get("next_after") is not None:
            next_page = {"after": found["next_after"]}
        elif "partition" not in query and found.get("next_cursor"):
            next_page = {"cursor": found["next_cursor"]}
    except Refused as refused:
        problem = shown(pages, visit, refused).problem
    for item in items:
        item["envelope"] = json.dumps(item["event"], ensure_ascii=False, indent=2)
    return page(
        pages,
        visit,
        "audit_events.html",
        items=items,
        typed=typed,
        query=query,
        paged=bool(after or cursor),
        next_page=next_page if len(items) == PAGE else None,
        problem=problem,
    )


@router.get("/audit/events.ndjson")
async def events_ndjson(
    request: Request, services: ServicesDep, settings: Settings, visit: Visit = Auditor
) -> Response:
    """Every event matching the filters, one JSON per line, streamed from audit."""
    assert visit.account is not None
    _typed, query = _filters(request, settings)
    chunks = await services.download(
        visit.account, "audit", "/v1/events", params=query, accept="application/x-ndjson"
    )
    return StreamingResponse(
        chunks,
        media_type="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="events.ndjson"'},
    )


@router.get("/audit/demands/{demand_id}")
async def demand_story(
    demand_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = Auditor,
) -> Response:
    """The demand's timeline, drawn, and the demand as it stood at `as_of`."""
    assert visit.account is not None
    typed_as_of = request.query_params.get("as_of", "").strip()[:40]
    timeline = await services.call(
        visit.account, "audit", "GET", f"/v1/timeline/{demand_id}", params={"limit": 1000}
    )
    items = timeline["items"]
    params = {}
    if typed_as_of:
        params["as_of"] = forms.local_instant(typed_as_of, settings.zone) or ""
    state, state_problem = None, None
    try:
        state = await services.call(
            visit.account, "audit", "GET", f"/v1/demands/{demand_id}/state", params=params
        )
    except Refused as refused:
        state_problem = shown(pages, visit, refused).problem
    longest = max((item.get("since_whistle_s") or 0 for item in items), default=0) or 1
    for item in items:
        item["offset"] = round(100 * (item.get("since_whistle_s") or 0) / longest, 2)
        item["at"] = parse_instant(item["event"]["time"])
    # The form starts one second after the whistle: "what did the secretary know then?"
    first = items[0]["at"] + timedelta(seconds=1) if items else None
    return page(
        pages,
        visit,
        "audit_demand.html",
        demand_id=demand_id,
        items=items,
        more=timeline.get("next_after") is not None,
        state=state,
        state_problem=state_problem,
        as_of=typed_as_of or (first.astimezone(settings.zone).strftime(SECONDS) if first else ""),
        asked=bool(typed_as_of),
    )


@router.get("/audit/verify")
async def verify(
    pages: PagesDep,
    services: ServicesDep,
    run: bool = False,
    full: bool = False,
    visit: Visit = Auditor,
) -> Response:
    """Walk the chain when asked (a GET: it changes nothing but audit's own bookmark)."""
    assert visit.account is not None
    verdict = None
    if run:
        verdict = await services.call(
            visit.account, "audit", "GET", "/v1/verify", params={"full": str(full).lower()}
        )
    return page(
        pages,
        visit,
        "audit_verify.html",
        verdict=verdict,
        full=full,
        checkpoint=await latest_checkpoint(services, visit),
    )


async def latest_checkpoint(services: ServicesDep, visit: Visit) -> dict[str, Any] | None:
    """Audit's last signed checkpoint, checked by audit (None: none signed yet)."""
    assert visit.account is not None
    try:
        found: dict[str, Any] = await services.call(
            visit.account, "audit", "GET", "/v1/checkpoints/latest"
        )
    except Refused as refused:
        if refused.problem.status == 404:
            return None
        raise
    found["signed_at"] = parse_instant(found["at"])
    return found


def _report_query(request: Request, settings: Settings) -> tuple[dict[str, str], dict[str, str]]:
    typed, query = asked(request, settings, ("from", "to", "by", "community_id"), ("from", "to"))
    if typed["by"] not in GROUPINGS:
        typed["by"] = query["by"] = "unit"
    return typed, query


@router.get("/audit/report")
async def report(
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = Auditor,
) -> Response:
    assert visit.account is not None
    _ = pages.translator(visit.language)
    typed, query = _report_query(request, settings)
    found, problem = None, None
    try:
        found = await services.call(
            visit.account, "audit", "GET", "/v1/reports/responsiveness", params=query
        )
    except Refused as refused:
        said = shown(pages, visit, refused)
        problem = said.problem
    chart = (
        bars(
            [(row["key"], float(row["score"])) for row in found["rows"]],
            title=_("Score by %(by)s") % {"by": _grouping(_, typed["by"])},
            empty=_("No data in this window."),
        )
        if found
        else None
    )
    return page(
        pages,
        visit,
        "audit_report.html",
        status=200 if problem is None else 422,
        report=found,
        chart=chart,
        typed=typed,
        query=query,
        groupings=GROUPINGS,
        problem=problem,
    )


def _grouping(_: Any, by: str) -> str:
    return str({"unit": _("unit"), "community": _("community"), "volunteer": _("volunteer")}[by])


@router.get("/audit/report.csv")
async def report_csv(
    request: Request, services: ServicesDep, settings: Settings, visit: Visit = Auditor
) -> Response:
    assert visit.account is not None
    _typed, query = _report_query(request, settings)
    chunks = await services.download(
        visit.account,
        "audit",
        "/v1/reports/responsiveness",
        params={**query, "format": "csv"},
        accept="text/csv",
    )
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="responsiveness.csv"'},
    )
