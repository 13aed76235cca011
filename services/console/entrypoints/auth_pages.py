"""Sign in, sign out, accept an invitation, and the landing redirect."""

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from services.console.adapters import store
from services.console.domain.accounts import AccountError, pick_language
from services.console.domain.refusals import InvitationUnusable, SignInFailed, SignInThrottled
from services.console.entrypoints.web import (
    LANGUAGE_COOKIE,
    SESSION_COOKIE,
    CsrfChecked,
    Db,
    PagesDep,
    Settings,
    VisitDep,
    go,
    page,
    set_cookie,
)
from services.console.entrypoints.words import account_error
from services.console.handlers import commands
from shared.clock import utcnow

router = APIRouter()


def _safe_next(value: str | None, fallback: str) -> str:
    """Only a path on this console (never `//host` or a URL), so sign-in cannot bounce away."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return fallback


@router.get("/")
async def home(visit: VisitDep, request: Request) -> Response:
    if visit.account is None:
        return go("/sign-in", request)
    return go(visit.account.home, request)


@router.get("/sign-in")
async def sign_in_page(visit: VisitDep, pages: PagesDep, next: str | None = None) -> Response:
    if visit.account is not None:
        return go(_safe_next(next, visit.account.home), visit.request)
    return page(pages, visit, "sign_in.html", next=_safe_next(next, ""), error=None, login="")


@router.post("/sign-in")
async def sign_in(
    visit: CsrfChecked,
    pages: PagesDep,
    db: Db,
    settings: Settings,
    request: Request,
    login: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    _ = pages.translator(visit.language)
    address = request.client.host if request.client else "unknown"
    try:
        signed = await commands.sign_in(db, settings, login, password, address, utcnow())
    except SignInThrottled as locked:
        wait = max(1, int((locked.until - utcnow()).total_seconds()))
        minutes = max(1, (wait + 59) // 60)
        error = _("Too many failed sign-ins. Try again in %(minutes)s minutes.") % {
            "minutes": minutes
        }
        return page(
            pages,
            visit,
            "sign_in.html",
            status=429,
            headers={"Retry-After": str(wait)},
            next=next,
            error=error,
            login=login,
        )
    except SignInFailed:
        error = _("Wrong login or password, or the account is disabled.")
        return page(pages, visit, "sign_in.html", status=401, next=next, error=error, login=login)
    response = go(_safe_next(next, signed.account.home), request)
    set_cookie(response, settings, SESSION_COOKIE, signed.session_secret)
    # A language chosen on this browser before signing in (the switcher) becomes the
    # person's; otherwise the one they chose before, on any device, stays.
    chosen = pick_language(request.cookies.get(LANGUAGE_COOKIE))
    if signed.account.language is None or (chosen and chosen != signed.account.language):
        await store.set_language(db, signed.account.id, chosen or visit.language)
    return response


@router.post("/sign-out")
async def sign_out(visit: CsrfChecked, db: Db, request: Request) -> Response:
    if visit.session_secret:
        await store.end_session(db, visit.session_secret)
    response = go("/sign-in", request)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/invite/{token}")
async def invitation_page(token: str, visit: VisitDep, pages: PagesDep, db: Db) -> Response:
    try:
        doc = await commands.usable_invitation(db, token, utcnow())
    except InvitationUnusable as unusable:
        return page(pages, visit, "invite_unusable.html", status=410, why=unusable.why)
    return page(
        pages,
        visit,
        "invite.html",
        invitation=doc,
        login=doc.get("login_hint") or "",
        errors={},
        token=token,
        expires_at=doc["expires_at"].astimezone(UTC),
    )


@router.post("/invite/{token}")
async def accept_invitation(
    token: str,
    visit: CsrfChecked,
    pages: PagesDep,
    db: Db,
    settings: Settings,
    request: Request,
    login: Annotated[str, Form(max_length=200)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    now = utcnow()
    try:
        account = await commands.accept_invitation(db, token, login, password, now, visit.language)
    except InvitationUnusable as unusable:
        return page(pages, visit, "invite_unusable.html", status=410, why=unusable.why)
    except AccountError as error:
        doc = await commands.usable_invitation(db, token, now)
        return page(
            pages,
            visit,
            "invite.html",
            status=422,
            invitation=doc,
            login=login,
            token=token,
            errors={error.field: account_error(pages, visit, error)},
            expires_at=doc["expires_at"],
        )
    signed = await commands.sign_in(
        db,
        settings,
        account.login,
        password,
        request.client.host if request.client else "unknown",
        now,
    )
    response = go(account.home, request)
    set_cookie(response, settings, SESSION_COOKIE, signed.session_secret)
    return response
