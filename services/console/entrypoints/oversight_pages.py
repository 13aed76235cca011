"""Street and district staff: the escalations that reached them, with the ladder and the time
each step took; the communities under them and their open demands; their inbox, live.

Their calls carry a secretary token for the street's or district's id (see
`domain/accounts.Role`), so dispatch answers with exactly the demands escalated to them."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from services.console.adapters import store
from services.console.adapters.services import Refused, Services
from services.console.domain.accounts import OVERSIGHT
from services.console.domain.ladder import ladder
from services.console.entrypoints import live
from services.console.entrypoints.inbox_pages import in_words
from services.console.entrypoints.web import (
    Db,
    Pages,
    PagesDep,
    ServicesDep,
    Visit,
    page,
    signed_in,
)
from shared.clock import utcnow

router = APIRouter()
Overseer = signed_in(*OVERSIGHT)
LIVE_STATUSES = ("open", "filled", "in_progress")


async def reached(services: Services, visit: Visit) -> list[dict[str, Any]]:
    """The live demands escalated to the person's street or district, with their ladders."""
    assert visit.account is not None
    found = await services.call(
        visit.account,
        "dispatch",
        "GET",
        "/v1/demands",
        params={"status": list(LIVE_STATUSES), "limit": 200},
    )
    now = utcnow()
    demands: list[dict[str, Any]] = found["items"]
    for demand in demands:
        demand["remaining"] = max(0, demand["slots"] - demand["filled"])
        demand["ladder"] = ladder(demand, now)
    demands.sort(key=lambda demand: demand["fill_by"])
    return demands


async def _live_html(pages: Pages, visit: Visit, services: Services, db: Db) -> str:
    assert visit.account is not None
    demands = await reached(services, visit)
    communities = await store.communities_under(db, visit.account.scope.place or "")
    by_community: dict[str, list[dict[str, Any]]] = {c["id"]: [] for c in communities}
    for demand in demands:
        by_community.setdefault(demand["community_id"], []).append(demand)
    try:
        inbox = await services.call(
            visit.account, "notify", "GET", "/v1/inbox", params={"limit": 10}
        )
        notes = await in_words(pages, visit, services, inbox["items"])
    except Refused:
        notes = []
    return pages.render(
        visit.language,
        "_oversight.html",
        demands=demands,
        communities={c["id"]: c for c in communities},
        by_community=by_community,
        notes=notes,
    )


@router.get("/oversight")
async def oversight(
    pages: PagesDep, services: ServicesDep, db: Db, visit: Visit = Overseer
) -> Response:
    return page(
        pages, visit, "oversight.html", live_html=await _live_html(pages, visit, services, db)
    )


@router.get("/oversight/stream")
async def oversight_stream(
    pages: PagesDep, services: ServicesDep, db: Db, visit: Visit = Overseer
) -> EventSourceResponse:
    return live.stream(visit, {"oversight": lambda: _live_html(pages, visit, services, db)})
