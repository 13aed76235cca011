"""The console's HTTP app: pages, static files, probes, and how errors become pages."""

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.console.adapters.services import Refused
from services.console.domain.accounts import pick_language
from services.console.entrypoints import (
    admin_pages,
    audit_pages,
    auth_pages,
    inbox_pages,
    map_pages,
    oversight_pages,
    relay_pages,
    secretary_pages,
    series_pages,
    volunteer_pages,
    wall_pages,
)
from services.console.entrypoints.acting import problem_page
from services.console.entrypoints.web import (
    HERE,
    CsrfRefused,
    Forbidden,
    SignInRequired,
    go,
    page,
    pages_of,
    visit_of,
)
from shared.store.mongo import ping

ROUTERS = (
    auth_pages.router,
    admin_pages.router,
    audit_pages.router,
    inbox_pages.router,
    map_pages.router,
    oversight_pages.router,
    relay_pages.router,
    # The secretary's `/demands/new` must come before the claimer's `/demands/{id}` (the page
    # both roles share, which shows each its own view).
    secretary_pages.router,
    series_pages.router,
    volunteer_pages.router,
    wall_pages.router,
)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, error: SignInRequired) -> Response:
        target = f"/sign-in?next={quote(error.next_path, safe='')}"
        # A language asked for in the link holds on the sign-in page too.
        if language := pick_language(request.query_params.get("lang")):
            target += f"&lang={language}"
        return go(target, request)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, error: Forbidden) -> Response:
        visit = await visit_of(request)
        pages = pages_of(request)
        _ = pages.translator(visit.language)
        text = _("This page is not for your account.")
        return page(pages, visit, "problem.html", status=403, problem=text)

    @app.exception_handler(Refused)
    async def _refused(request: Request, refused: Refused) -> Response:
        # A page that could not be read from a service says why, in the person's language;
        # forms catch their refusals themselves and show them beside the fields.
        return problem_page(pages_of(request), await visit_of(request), refused)

    @app.exception_handler(CsrfRefused)
    async def _csrf(request: Request, error: CsrfRefused) -> Response:
        visit = await visit_of(request)
        pages = pages_of(request)
        _ = pages.translator(visit.language)
        text = _(
            "This form has expired or did not come from this console. Go back, reload and "
            "send it again."
        )
        return page(pages, visit, "problem.html", status=403, problem=text)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        # Browsers get a page; anything asking for JSON gets the usual problem.
        if "text/html" not in request.headers.get("accept", ""):
            return JSONResponse(
                {
                    "type": "https://whistle.dev/problems/not-found"
                    if error.status_code == 404
                    else "about:blank",
                    "title": str(error.detail),
                    "status": error.status_code,
                },
                status_code=error.status_code,
                media_type="application/problem+json",
            )
        visit = await visit_of(request)
        pages = pages_of(request)
        _ = pages.translator(visit.language)
        text = _("There is no such page.") if error.status_code == 404 else _("Not allowed.")
        return page(pages, visit, "problem.html", status=error.status_code, problem=text)

    @app.get("/healthz", tags=["probes"])
    async def healthz() -> dict[str, str]:
        return {"status": "alive", "service": "console"}

    @app.get("/readyz", tags=["probes"])
    async def readyz(request: Request) -> JSONResponse:
        try:
            await ping(request.app.state.db)
            checks = {"database": "ok"}
        except Exception as error:  # any failure of the ping means not ready
            checks = {"database": type(error).__name__}
        # The services are reported but do not make the console unready: its pages say
        # when one is unreachable, and sign-in still works.
        upstream = await request.app.state.services.ready()
        ready = checks["database"] == "ok"
        return JSONResponse(
            {
                "status": "ready" if ready else "unready",
                "service": "console",
                "checks": checks,
                "services": upstream,
            },
            status_code=200 if ready else 503,
        )
