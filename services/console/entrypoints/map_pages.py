"""The map with the five-colour risk zones: a community's grids, buildings and open demands
drawn on the server (no tile server, no internet), each grid in its level's colour and with
its level's word, a legend, the map as of a chosen moment, how it changed, and the forms:
the secretary or the street rates a grid, an admin uploads the grid (GeoJSON). Prints on A4.

Dispatch keeps the grid and every rating; the console asks on the person's behalf and draws.
"""

import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.datastructures import UploadFile

from services.console.adapters import store
from services.console.adapters.services import Refused
from services.console.domain.accounts import OVERSIGHT, Role
from services.console.domain.geomap import Marker, Words, grid_centres, render, swatch
from services.console.entrypoints import forms
from services.console.entrypoints.acting import Shown, act, posting, shown
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

router = APIRouter()
READERS = (Role.SECRETARY, Role.STREET, Role.DISTRICT, Role.ADMIN, Role.AUDITOR)
RATERS = (Role.SECRETARY, Role.STREET, Role.ADMIN)
Reader = signed_in(*READERS)
LEVELS = ("red", "orange", "yellow", "blue", "green")
LIVE_STATUSES = ("open", "filled", "in_progress")
HISTORY = 50
# A grid's GeoJSON read from the upload form, at most (the services' body limit applies too).
MAX_UPLOAD = 4 * 1024 * 1024


def level_words(_: Any) -> dict[str, str]:
    return {
        "red": _("Red"),
        "orange": _("Orange"),
        "yellow": _("Yellow"),
        "blue": _("Blue"),
        "green": _("Green"),
    }


def level_hints(_: Any) -> dict[str, str]:
    return {
        "red": _("highest risk"),
        "orange": _("high risk"),
        "yellow": _("medium risk"),
        "blue": _("low risk"),
        "green": _("lowest risk"),
    }


@router.get("/map")
async def map_home(request: Request, pages: PagesDep, db: Db, visit: Visit = Reader) -> Response:
    """A secretary goes to their community's map; the others choose a community."""
    assert visit.account is not None
    asked = request.query_params.get("community", "").strip()[:64]
    if asked:
        return go(f"/map/{quote(asked, safe='')}", request)
    if visit.account.role is Role.SECRETARY and visit.account.scope.community:
        return go(f"/map/{quote(visit.account.scope.community, safe='')}", request)
    if visit.account.role in OVERSIGHT:
        communities = await store.communities_under(db, visit.account.scope.place or "")
    else:
        communities = await store.remembered(db, "community")
    return page(pages, visit, "map_home.html", communities=communities)


def may_rate(visit: Visit, community_id: str, community: dict[str, Any] | None) -> bool:
    """Mirrors dispatch's rule, to offer the form only to those it will accept."""
    account = visit.account
    if account is None or account.role not in RATERS:
        return False
    if account.role is Role.ADMIN:
        return True
    if account.role is Role.SECRETARY:
        return account.scope.community == community_id
    return community is not None and account.scope.street == community.get("street")


async def _map_page(
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit,
    community_id: str,
    *,
    status: int = 200,
    **context: Any,
) -> Response:
    assert visit.account is not None
    account = visit.account
    _ = pages.translator(visit.language)
    typed_as_of = request.query_params.get("as_of", "").strip()[:40]
    as_of = forms.local_instant(typed_as_of, settings.zone) if typed_as_of else None
    base = f"/v1/communities/{quote(community_id, safe='')}"
    community = await services.call(account, "dispatch", "GET", base)
    grid: dict[str, Any] | None
    try:
        grid = await services.call(account, "dispatch", "GET", f"{base}/grid")
    except Refused as refused:
        if refused.problem.status != 404:
            raise
        grid = None
    problem = context.pop("problem", None)
    zones: list[dict[str, Any]] = []
    try:
        found = await services.call(
            account, "dispatch", "GET", f"{base}/zones", params={"as_of": as_of} if as_of else None
        )
        zones = found["zones"]
    except Refused as refused:
        problem = problem or shown(pages, visit, refused).problem  # a bad as_of, in words
        status = refused.problem.status if status == 200 else status
    history = (
        await services.call(
            account, "dispatch", "GET", f"{base}/zones/history", params={"limit": HISTORY}
        )
    )["items"]
    demands = (
        await services.call(
            account,
            "dispatch",
            "GET",
            "/v1/demands",
            params={"community_id": community_id, "status": list(LIVE_STATUSES), "limit": 100},
        )
    )["items"]
    words = level_words(_)
    levels = {zone["grid_id"]: zone["level"] for zone in zones}
    svg = None
    markers: list[Marker] = []
    grids: list[dict[str, Any]] = []
    if grid is not None:
        geojson = grid["geojson"]
        centres = grid_centres(geojson)
        for demand in demands:
            where = demand.get("location") or {}
            # The level its grid had at the moment shown (dispatch's `zone_level` is now's).
            demand["shown_level"] = levels.get(where.get("grid") or "")
            if where.get("lat") is not None and where.get("lon") is not None:
                lon, lat = where["lon"], where["lat"]
            elif where.get("grid") in centres:
                lon, lat = centres[where["grid"]]
            else:
                continue
            demand["marker"] = len(markers) + 1
            markers.append(Marker(len(markers) + 1, lon, lat, demand["title"]))
        grids = [
            {**f["properties"], "level": levels.get(f["properties"]["id"])}
            for f in geojson["features"]
            if f["properties"]["kind"] == "grid"
        ]
        shown_at = (
            _("as of %(when)s") % {"when": typed_as_of.replace("T", " ")} if as_of else _("now")
        )
        svg = render(
            geojson,
            levels,
            settings.zone_palette,
            Words(
                title=_("Risk zones of %(community)s, %(when)s")
                % {"community": community["name"], "when": shown_at},
                description=_(
                    "%(grids)s grids, %(rated)s rated; %(buildings)s buildings; "
                    "%(demands)s open demands marked by number."
                )
                % {
                    "grids": len(grids),
                    "rated": len(levels),
                    "buildings": grid["buildings"],
                    "demands": len(markers),
                },
                levels=words,
                unrated=_("Not rated"),
            ),
            markers,
        )
    names = {
        rater: (found.name if (found := await store.account_by_id(_db(request), rater)) else rater)
        for rater in {item["rated_by"] for item in history}
    }
    grid_names = {g["id"]: g.get("name") or g["id"] for g in grids}
    for item in history:
        # A second before it: the map as the rating found it.
        rated_at = parse_instant(item["rated_at"])
        assert rated_at is not None
        item["before"] = (
            (rated_at - timedelta(seconds=1))
            .astimezone(settings.zone)
            .strftime("%Y-%m-%dT%H:%M:%S")
        )
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return page(
        pages,
        visit,
        "map.html",
        status=status,
        community=community,
        grid=grid,
        svg=svg,
        grids=grids,
        grid_names=grid_names,
        levels=LEVELS,
        words=words,
        hints=level_hints(_),
        legend=[(level, swatch(settings.zone_palette[level], words[level])) for level in LEVELS],
        unrated_swatch=swatch("#e6e6e6", _("Not rated")),
        history=history,
        rater_names=names,
        demands=demands,
        markers=markers,
        as_of=typed_as_of,
        may_rate=may_rate(visit, community_id, community),
        may_upload=account.role is Role.ADMIN,
        problem=problem,
        **context,
    )


def _db(request: Request) -> Any:
    return request.app.state.db


@router.get("/map/{community_id}")
async def community_map(
    community_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = Reader,
) -> Response:
    _ = pages.translator(visit.language)
    done = None
    if rated := request.query_params.get("rated"):
        done = _("Grid %(grid)s rated.") % {"grid": rated[:64]}
    elif request.query_params.get("uploaded"):
        done = _("The grid is uploaded.")
    return await _map_page(request, pages, services, settings, visit, community_id, done=done)


@router.post("/map/{community_id}/ratings")
async def rate_zone(
    community_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = posting(*RATERS),
) -> Response:
    form = await request.form()
    grid_id = forms.text(form, "grid", 64)
    body = {"level": forms.text(form, "level", 20), "reason": forms.text(form, "reason", 500)}
    _ = pages.translator(visit.language)

    async def again(said: Shown) -> Response:
        errors = dict(said.errors)
        if said.slug == "not-found":
            errors["grid"] = said.problem
        return await _map_page(
            request,
            pages,
            services,
            settings,
            visit,
            community_id,
            **{**said.context(), "errors": {"rate": errors}},
            values={"grid": grid_id, **body},
        )

    if not grid_id:
        choose = _("Choose a grid.")
        return await again(Shown(422, choose, "validation-error", {"grid": choose}))
    path = f"/v1/communities/{quote(community_id, safe='')}/zones/{quote(grid_id, safe='')}/ratings"
    return await act(
        visit,
        "dispatch",
        "POST",
        path,
        json=body,
        idem=forms.text(form, "idem", 100),
        again=again,
        then=lambda _answer: go(
            f"/map/{quote(community_id, safe='')}?rated={quote(grid_id, safe='')}", request
        ),
    )


@router.post("/map/{community_id}/grid")
async def upload_grid(
    community_id: str,
    request: Request,
    pages: PagesDep,
    services: ServicesDep,
    settings: Settings,
    visit: Visit = posting(Role.ADMIN),
) -> Response:
    """The admin's GeoJSON, from a file or pasted; dispatch checks it strictly and names
    what is wrong, which the form shows."""
    _ = pages.translator(visit.language)
    form = await request.form()
    upload = form.get("file")
    text = ""
    if isinstance(upload, UploadFile) and upload.filename:
        text = (await upload.read(MAX_UPLOAD)).decode("utf-8", errors="replace")
    if not text.strip():
        pasted = form.get("geojson")
        text = pasted if isinstance(pasted, str) else ""

    async def again(status: int, sentence: str, details: list[str]) -> Response:
        return await _map_page(
            request,
            pages,
            services,
            settings,
            visit,
            community_id,
            status=status,
            upload_problem=sentence,
            upload_details=details,
            pasted=text if len(text) <= 20_000 else "",
        )

    try:
        body = json.loads(text)
    except ValueError as error:
        return await again(422, _("This is not JSON: %(error)s") % {"error": str(error)}, [])
    assert visit.account is not None
    try:
        await services.call(
            visit.account,
            "dispatch",
            "PUT",
            f"/v1/communities/{quote(community_id, safe='')}/grid",
            json=body,
            idempotency_key=forms.text(form, "idem", 100) or None,
        )
    except Refused as refused:
        said = shown(pages, visit, refused)
        # Which feature and coordinate are wrong, as dispatch names them (its words).
        details = [
            f"{'.'.join(str(p) for p in error.get('loc', []) if p != 'body')}: {error.get('msg')}"
            for error in refused.problem.errors[:10]
        ] or [refused.problem.detail]
        return await again(said.status, said.problem, details)
    return go(f"/map/{quote(community_id, safe='')}?uploaded=1", request)
