"""Debian's Chromium under Playwright: one browser per module, a context per person and
screen size, every request outside this machine refused and recorded, axe-core injected."""

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

from services.console.entrypoints.web import load_translations

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SIZES: dict[str, ViewportSize] = {
    "phone": {"width": 390, "height": 844},
    "desktop": {"width": 1280, "height": 860},
}
SCREENSHOTS = ROOT / "var" / "screenshots"
AXE = (Path(__file__).parent / "vendor" / "axe-4.14.1.min.js").read_text()
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
_TRANSLATIONS = {lang: load_translations(lang) for lang in ("zh-CN", "en")}


def t(lang: str, text: str) -> str:
    """The console's own words for `text` in `lang` (from its catalogue)."""
    translated: str = _TRANSLATIONS[lang].gettext(text)
    return translated


@dataclass
class Outside:
    """Requests that tried to leave the machine (they were aborted)."""

    urls: list[str] = field(default_factory=list)


@contextmanager
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def person(browser: Browser, size: str, outside: Outside) -> BrowserContext:
    context = browser.new_context(
        viewport=SIZES[size],
        bypass_csp=True,
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        is_mobile=size == "phone",
        has_touch=size == "phone",
    )

    def guard(route: Route) -> None:
        host = urlsplit(route.request.url).hostname or ""
        if route.request.url.startswith(("data:", "blob:")) or host in LOCAL_HOSTS:
            route.continue_()
        else:
            outside.urls.append(route.request.url)
            route.abort()

    context.route("**/*", guard)
    context.set_default_timeout(15_000)
    return context


def shoot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol: the page's CSP (no inline script) holds.
        page.evaluate(f"() => {{ {AXE}\n }}")
        if not page.evaluate("() => typeof window.axe !== 'undefined'"):
            page.evaluate(AXE)
    result = page.evaluate(
        "async () => JSON.stringify((await axe.run(document, {resultTypes: ['violations']}))"
        ".violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    found: list[dict[str, Any]] = json.loads(result)
    return [v for v in found if v["impact"] in ("serious", "critical")]


def check_page(page: Page, name: str) -> None:
    """Screenshot the screen and hold it to axe-core."""
    page.wait_for_load_state("load")
    shoot(page, name)
    bad = axe_violations(page)
    assert not bad, f"{name}: {json.dumps(bad, ensure_ascii=False, indent=1)}"


def sign_in(page: Page, console_url: str, lang: str, login: str, password: str) -> None:
    """Sign in through the form, as a person does, and wait until the form has gone."""
    page.goto(f"{console_url}/sign-in?lang={lang}")
    page.get_by_label(t(lang, "Login"), exact=True).fill(login)
    page.get_by_label(t(lang, "Password"), exact=True).fill(password)
    page.get_by_role("button", name=t(lang, "Sign in"), exact=True).click()
    page.wait_for_load_state("load")
    expect(page.get_by_role("button", name=t(lang, "Sign in"), exact=True)).to_have_count(0)
