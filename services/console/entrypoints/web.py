"""What every page needs: the person (session), their language, CSRF, and rendering.

Templates are rendered server-side with the person's translations and time zone. Each page
is a template; each part that updates live is its own template, so a route can render the
whole page or only the part that changed.
"""

import hmac
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_percent
from babel.support import NullTranslations, Translations
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from services.console.adapters import store
from services.console.adapters.services import Services
from services.console.config import ConsoleSettings
from services.console.domain.accounts import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    Account,
    Language,
    Role,
    pick_language,
)
from shared.clock import utcnow
from shared.store.mongo import Database

HERE = Path(__file__).resolve().parents[1]
TEMPLATES = HERE / "templates"
LOCALES = HERE / "locale"
SESSION_COOKIE = "whistle_session"
FORM_COOKIE = "whistle_form"
LANGUAGE_COOKIE = "whistle_lang"
_BABEL_LOCALE: dict[Language, str] = {"zh-CN": "zh_CN", "en": "en"}


def load_translations(language: Language) -> NullTranslations:
    """The catalogue compiled in memory from its .po file, so a fresh clone needs no build
    step and a stale .mo can never be served."""
    if language == "en":
        return NullTranslations()
    po = LOCALES / _BABEL_LOCALE[language] / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source, locale=_BABEL_LOCALE[language])
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


class Pages:
    """One Jinja environment per language (gettext installed in each), shared filters."""

    def __init__(self, settings: ConsoleSettings) -> None:
        self.settings = settings
        self.zone = settings.zone
        self.translations: dict[Language, NullTranslations] = {}
        self.envs: dict[Language, Environment] = {}
        for language in LANGUAGES:
            translations = load_translations(language)
            env = Environment(
                loader=FileSystemLoader(TEMPLATES),
                autoescape=select_autoescape(["html", "svg"]),
                extensions=["jinja2.ext.i18n"],
                trim_blocks=True,
                lstrip_blocks=True,
            )
            env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
            locale = _BABEL_LOCALE[language]
            env.filters["when"] = lambda value, locale=locale: self.when(value, locale)
            env.filters["day"] = lambda value, locale=locale: self.day(value, locale)
            env.filters["clock"] = lambda value, locale=locale: self.clock(value, locale)
            env.filters["left"] = lambda value, locale=locale: self.left(value, locale)
            env.filters["span"] = lambda value, locale=locale: self.span(value, locale)
            env.filters["seconds"] = lambda value, locale=locale: self.span(
                timedelta(seconds=float(value or 0)), locale
            )
            env.filters["percent"] = lambda value, locale=locale: (
                "" if value is None else format_percent(value, locale=locale)
            )
            env.filters["parse"] = parse_instant
            env.filters["urlencode_path"] = lambda value: quote(str(value), safe="")
            env.globals["zone_palette"] = settings.zone_palette  # the map's colours
            self.translations[language] = translations
            self.envs[language] = env

    def translator(self, language: Language) -> Any:
        return self.translations[language].gettext

    def when(self, value: Any, locale: str) -> str:
        return _shown(
            value,
            lambda at: format_datetime(at, "yyyy-MM-dd HH:mm", tzinfo=self.zone, locale=locale),
        )

    def day(self, value: Any, locale: str) -> str:
        return _shown(
            value, lambda at: format_date(at.astimezone(self.zone), "full", locale=locale)
        )

    def clock(self, value: Any, locale: str) -> str:
        return _shown(value, lambda at: format_time(at, "HH:mm", tzinfo=self.zone, locale=locale))

    def left(self, value: Any, locale: str) -> str:
        """How long until an instant ("in 2 hours"), or how long ago."""
        return _shown(
            value,
            lambda at: format_timedelta(
                at - utcnow(), add_direction=True, threshold=1.5, locale=locale
            ),
        )

    def span(self, value: timedelta | None, locale: str) -> str:
        """A length of time ("25 minutes")."""
        if value is None:
            return ""
        if value < timedelta(minutes=1):
            # "0 seconds" rather than babel's "0 minutes" for a step that took no time.
            return format_timedelta(value, granularity="second", threshold=1.5, locale=locale)
        return format_timedelta(value, threshold=1.5, locale=locale)

    def render(self, language: Language, name: str, **context: Any) -> str:
        return self.envs[language].get_template(name).render(**context)


def _shown(value: Any, show: Callable[[datetime], str]) -> str:
    """An instant (a datetime or its ISO text) as `show` writes it; nothing for no instant."""
    instant = parse_instant(value)
    return "" if instant is None else show(instant)


def parse_instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@dataclass
class Visit:
    """One request from one browser: who (if signed in), in which language, the CSRF token."""

    request: Request
    account: Account | None
    session_secret: str | None
    csrf: str
    language: Language

    @property
    def role(self) -> Role | None:
        return self.account.role if self.account else None


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Forbidden(Exception):
    pass


class CsrfRefused(Exception):
    pass


def settings_of(request: Request) -> ConsoleSettings:
    settings: ConsoleSettings = request.app.state.settings
    return settings


def db_of(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def pages_of(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _db(request: Request) -> Database:
    return db_of(request)


async def _settings(request: Request) -> ConsoleSettings:
    return settings_of(request)


async def _pages(request: Request) -> Pages:
    return pages_of(request)


async def _services(request: Request) -> Services:
    return services_of(request)


# The providers are async: FastAPI runs a sync dependency in a worker thread, per request.
Db = Annotated[Database, Depends(_db)]
Settings = Annotated[ConsoleSettings, Depends(_settings)]
PagesDep = Annotated[Pages, Depends(_pages)]
ServicesDep = Annotated[Services, Depends(_services)]


async def visit_of(request: Request) -> Visit:
    settings = settings_of(request)
    db = db_of(request)
    secret = request.cookies.get(SESSION_COOKIE)
    account: Account | None = None
    csrf = request.cookies.get(FORM_COOKIE) or store.new_secret()
    if secret:
        session = await store.live_session(
            db, secret, utcnow(), timedelta(seconds=settings.session_idle_s)
        )
        if session is not None:
            found = await store.account_by_id(db, session["account_id"])
            if found is not None and found.active:
                account, csrf = found, session["csrf"]
        if account is None:
            secret = None
    asked = pick_language(request.query_params.get("lang"))
    language: Language = (
        asked
        or (account.language if account else None)
        or pick_language(request.cookies.get(LANGUAGE_COOKIE))
        or DEFAULT_LANGUAGE
    )
    if asked and account is not None and account.language != asked:
        # Remembered per person: the next sign-in, on any device, opens in it.
        await store.set_language(db, account.id, asked)
    return Visit(request, account, secret, csrf, language)


VisitDep = Annotated[Visit, Depends(visit_of)]


def signed_in(*roles: Role) -> Any:
    """A dependency: the signed-in account, of one of `roles` (any role when none given)."""

    async def dependency(visit: VisitDep) -> Visit:
        if visit.account is None:
            path = visit.request.url.path
            if visit.request.url.query:
                path += "?" + visit.request.url.query
            raise SignInRequired(path)
        if roles and visit.account.role not in roles:
            raise Forbidden()
        return visit

    return Depends(dependency)


async def check_csrf(request: Request, visit: VisitDep) -> Visit:
    """Every state-changing request carries the CSRF token: a form field, or htmx's header."""
    sent = request.headers.get("x-csrf-token")
    if sent is None:
        form = await request.form()
        value = form.get("csrf")
        sent = value if isinstance(value, str) else None
    if not sent or not visit.csrf or not hmac.compare_digest(sent, visit.csrf):
        raise CsrfRefused()
    return visit


CsrfChecked = Annotated[Visit, Depends(check_csrf)]


def page(
    pages: Pages,
    visit: Visit,
    name: str,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    body = pages.render(
        visit.language,
        name,
        visit=visit,
        account=visit.account,
        csrf=visit.csrf,
        lang=visit.language,
        path=visit.request.url.path,
        lang_url=lambda language: _with_lang(visit.request, language),
        now=utcnow(),
        **context,
    )
    response = HTMLResponse(body, status_code=status, headers=headers)
    remember(visit, response)
    return response


def _with_lang(request: Request, language: str) -> str:
    url = request.url.include_query_params(lang=language)
    return f"{url.path}?{url.query}"


def remember(visit: Visit, response: Response) -> None:
    """Keep the anonymous form token and the chosen language in cookies."""
    settings = settings_of(visit.request)
    if visit.account is None and not visit.request.cookies.get(FORM_COOKIE) and visit.csrf:
        set_cookie(response, settings, FORM_COOKIE, visit.csrf)
    if (
        visit.request.query_params.get("lang")
        and visit.request.cookies.get(LANGUAGE_COOKIE) != visit.language
    ):
        set_cookie(response, settings, LANGUAGE_COOKIE, visit.language, max_age=365 * 86400)


def set_cookie(
    response: Response, settings: ConsoleSettings, name: str, value: str, max_age: int | None = None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path="/",
    )


def go(url: str, request: Request, status: int = 303) -> Response:
    """A redirect that htmx follows as a full navigation."""
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=status)


def local_zone(request: Request) -> ZoneInfo:
    return settings_of(request).zone
