"""The secretary's series: a demand on a pattern (every day, weekdays, chosen weekdays, until
a date) turned into dispatch's RRULE, previewed in words with its next occurrences before it
is created; the series' page (next occurrences, published demands), editing and cancelling
the rest."""

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.console.adapters.services import Refused
from services.console.domain.accounts import Role
from services.console.domain.series import RuleUnreadable, read_rule, rule_of
from services.console.entrypoints import forms
from services.console.entrypoints.acting import Shown, act, posting, problem_page, shown
from services.console.entrypoints.secretary_pages import DEMAND_FIELDS, demand_body, new_key
from services.console.entrypoints.web import (
    PagesDep,
    ServicesDep,
    Settings,
    Visit,
    go,
    page,
    signed_in,
)
from shared.clock import utcnow

router = APIRouter()
Secretary = signed_in(Role.SECRETARY)
Posting = posting(Role.SECRETARY)

SERIES_FIELDS = (*(f for f in DEMAND_FIELDS if f != "days"), "pattern", "until")


def _defaults(settings: Settings) -> dict[str, str]:
    local = utcnow().astimezone(settings.zone) + timedelta(days=1)
    start = local.replace(hour=8, minute=0, second=0, microsecond=0)
    return {
        "slots": "1",
        "priority": "routine",
        "kind": "staffing",
        "pattern": "daily",
        "starts_at": forms.local_field(start, settings.zone),
        "ends_at": forms.local_field(start + timedelta(hours=4), settings.zone),
        "until": (start.date() + timedelta(days=13)).isoformat(),
    }


def _form_page(visit: Visit, pages: PagesDep, status: int = 200, **context: Any) -> Response:
    context.setdefault("errors", {})
    context.setdefault("problem", None)
    context.setdefault("preview", None)
    context.setdefault("weekdays", [])
    return page(pages, visit, "series_new.html", status=status, **context)


@router.get("/series/new")
async def new_series(pages: PagesDep, settings: Settings, visit: Visit = Secretary) -> Response:
    return _form_page(visit, pages, values=_defaults(settings), idem=new_key())


@router.post("/series/new")
async def post_series(
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = Posting,
) -> Response:
    assert visit.account is not None
    _ = pages.translator(visit.language)
    form = await request.form()
    values = {key: forms.text(form, key) for key in SERIES_FIELDS}
    weekdays = [str(v) for v in form.getlist("weekdays") if isinstance(v, str)]
    idem = forms.text(form, "idem", 100) or new_key()
    context: dict[str, Any] = {"values": values, "weekdays": weekdays, "idem": idem}

    async def again(said: Shown) -> Response:
        return _form_page(visit, pages, said.status, **context, **said.context())

    try:
        rule = rule_of(values["pattern"], weekdays, values["until"])
    except RuleUnreadable as unreadable:
        said = {
            "pattern": _("Choose how the demand repeats."),
            "until": _("Give the last day."),
            "weekdays": _("Choose at least one weekday."),
        }[str(unreadable)]
        return _form_page(visit, pages, 422, **context, errors={str(unreadable): said})
    body = demand_body(values, visit.account.scope.community or "", settings)
    body["rrule"] = rule.rrule()
    body["timezone"] = settings.timezone
    if forms.text(form, "confirm") != "yes":
        try:
            preview = await services.call(
                visit.account, "dispatch", "POST", "/v1/series/preview", json=body
            )
        except Refused as refused:
            return await again(shown(pages, visit, refused))
        return _form_page(visit, pages, **context, preview=preview, rule=rule)
    return await act(
        visit,
        "dispatch",
        "POST",
        "/v1/series",
        json=body,
        idem=idem,
        again=again,
        then=lambda series: go(f"/series/{series['id']}", request),
    )


@router.get("/series")
async def series_list(pages: PagesDep, services: ServicesDep, visit: Visit = Secretary) -> Response:
    assert visit.account is not None
    try:
        found = await services.call(visit.account, "dispatch", "GET", "/v1/series")
    except Refused as refused:
        return problem_page(pages, visit, refused)
    items = [{**item, "rule": read_rule(item["rrule"])} for item in found["items"]]
    return page(pages, visit, "series_list.html", items=items)


async def _series_page(
    visit: Visit, pages: PagesDep, services: ServicesDep, series_id: str, **context: Any
) -> Response:
    assert visit.account is not None
    try:
        series = await services.call(visit.account, "dispatch", "GET", f"/v1/series/{series_id}")
    except Refused as refused:
        return problem_page(pages, visit, refused)
    context.setdefault("errors", {})
    context.setdefault("problem", None)
    status = context.pop("status", 200)
    return page(
        pages,
        visit,
        "series.html",
        status=status,
        series=series,
        rule=read_rule(series["rrule"]),
        idem=new_key(),
        **context,
    )


@router.get("/series/{series_id}")
async def series_page(
    series_id: str, pages: PagesDep, services: ServicesDep, visit: Visit = Secretary
) -> Response:
    return await _series_page(visit, pages, services, series_id)


@router.post("/series/{series_id}/edit")
async def edit_series(
    series_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = Posting,
) -> Response:
    form = await request.form()
    changes: dict[str, Any] = {}
    if title := forms.text(form, "title", 200):
        changes["title"] = title
    slots = forms.text(form, "slots", 10)
    if slots:
        changes["slots"] = int(slots) if slots.isdigit() else slots
    if until := forms.text(form, "until", 20):
        try:
            last = date.fromisoformat(until)
        except ValueError:
            last = None
        current = read_rule(forms.text(form, "rrule", 500))
        if last is not None and current is not None:
            changes["rrule"] = type(current)(current.pattern, last, current.weekdays).rrule()

    async def again(said: Shown) -> Response:
        return await _series_page(visit, pages, services, series_id, **said.context())

    return await act(
        visit,
        "dispatch",
        "PATCH",
        f"/v1/series/{series_id}",
        json=changes,
        idem=forms.text(form, "idem", 100) or None,
        again=again,
        then=lambda _answer: go(f"/series/{series_id}", request),
    )


@router.post("/series/{series_id}/cancel")
async def cancel_series(
    series_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    visit: Visit = Posting,
) -> Response:
    form = await request.form()

    async def again(said: Shown) -> Response:
        return await _series_page(visit, pages, services, series_id, **said.context())

    return await act(
        visit,
        "dispatch",
        "POST",
        f"/v1/series/{series_id}/cancel",
        json={"reason": forms.text(form, "reason", 1000)},
        idem=forms.text(form, "idem", 100) or None,
        again=again,
        then=lambda _answer: go(f"/series/{series_id}", request),
    )
