"""The whole flow in a real browser, at phone and desktop size, in both languages: an admin
signs in and registers a community and a secretary; the secretary posts a demand and invites
a volunteer; the volunteer sets a password and claims on a phone while the secretary's open
board shows it without a reload; check-in through the QR link; completion; the demand's
timeline from audit. Every screen is screenshotted and checked with axe-core, and no
request leaves the machine."""

import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.console.browser import Outside, check_page, person, t
from tests.console.stack import Stack

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Asia/Shanghai")
ADMIN_PASSWORD = "admin-password-for-tests"
# What the flows leave behind, for the tour of every screen at both sizes.
SEEN: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module")
def outside() -> Outside:
    return Outside()


@pytest.fixture(scope="module")
def admin_made(stack: Stack) -> None:
    stack.create_account("admin", ADMIN_PASSWORD, "--role", "admin")


def local_field(instant: datetime) -> str:
    return instant.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


def sign_in(page: Page, stack: Stack, lang: str, login: str, password: str) -> None:
    page.goto(f"{stack.url}/sign-in?lang={lang}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    page.get_by_label(t(lang, "Login"), exact=True).fill(login)
    page.get_by_label(t(lang, "Password"), exact=True).fill(password)
    page.get_by_role("button", name=t(lang, "Sign in"), exact=True).click()


def open_invitation(page: Page) -> str:
    link = page.locator("#invitation-link")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href
    assert "/invite/" in href
    return href


CASES = [
    # (language, size for the admin and the secretary); the volunteer is always on a phone.
    pytest.param("zh-CN", "desktop", id="zh-CN-desktop"),
    pytest.param("en", "phone", id="en-phone"),
]


@pytest.mark.parametrize(("lang", "size"), CASES)
def test_the_whole_flow(
    stack: Stack, browser: Browser, outside: Outside, admin_made: None, lang: str, size: str
) -> None:
    tag = f"{lang}-{size}"
    suffix = "zh" if lang == "zh-CN" else "en"
    community = f"c-north-{suffix}"
    contexts: list[BrowserContext] = []

    def new_person(at: str) -> Page:
        context = person(browser, at, outside)
        contexts.append(context)
        return context.new_page()

    try:
        # --- the admin: sign in, a community, a secretary --------------------------------
        admin = new_person(size)
        sign_in(admin, stack, lang, "admin", ADMIN_PASSWORD)
        expect(admin).to_have_url(re.compile(r"/admin$"))
        check_page(admin, f"admin-{tag}")
        form = admin.locator("form[action='/admin/communities']")
        form.get_by_label(t(lang, "Community id"), exact=True).fill(community)
        form.get_by_label(t(lang, "Name"), exact=True).fill(
            "北门社区" if lang == "zh-CN" else "North Gate"
        )
        form.get_by_label(t(lang, "Street"), exact=True).fill(f"s-east-{suffix}")
        form.get_by_label(t(lang, "District"), exact=True).fill(f"d-river-{suffix}")
        form.get_by_role("button", name=t(lang, "Register community")).click()
        expect(admin.get_by_role("status")).to_be_visible()
        form = admin.locator("form[action='/admin/secretaries']")
        form.get_by_label(t(lang, "Name"), exact=True).fill(
            "陈书记" if lang == "zh-CN" else "Secretary Chen"
        )
        form.get_by_label(t(lang, "Suggested login"), exact=True).fill(f"chen-{suffix}")
        form.get_by_label(t(lang, "Community id"), exact=True).fill(community)
        form.get_by_role("button", name=t(lang, "Invite secretary")).click()
        secretary_link = open_invitation(admin)
        check_page(admin, f"admin-invitation-{tag}")

        # --- the secretary: set a password, post a demand, invite a volunteer ------------
        secretary = new_person(size)
        secretary.goto(secretary_link + f"?lang={lang}")
        check_page(secretary, f"invitation-{tag}")
        expect(secretary.get_by_label(t(lang, "Login"), exact=True)).to_have_value(f"chen-{suffix}")
        secretary.get_by_label(t(lang, "Password"), exact=True).fill("secretary-pass-1")
        secretary.get_by_role("button", name=t(lang, "Set password")).click()
        expect(secretary).to_have_url(re.compile(r"/board$"))
        check_page(secretary, f"board-empty-{tag}")

        secretary.goto(f"{stack.url}/demands/new")
        check_page(secretary, f"demand-new-{tag}")
        # Inline errors: an empty title and an end before the start are refused by dispatch.
        now = datetime.now(ZONE)
        secretary.get_by_label(t(lang, "Title"), exact=True).fill("")
        secretary.get_by_label(t(lang, "Ends"), exact=True).fill(local_field(now))
        secretary.get_by_label(t(lang, "Starts"), exact=True).fill(
            local_field(now + timedelta(hours=1))
        )
        secretary.get_by_role("button", name=t(lang, "Post demand"), exact=True).click()
        expect(secretary.locator("#e-title")).to_have_text(t(lang, "Required."))
        check_page(secretary, f"demand-new-errors-{tag}")
        title = "北门卡口值守" if lang == "zh-CN" else "North gate checkpoint"
        starts = now + timedelta(minutes=30)
        secretary.get_by_label(t(lang, "Title"), exact=True).fill(title)
        secretary.get_by_label(t(lang, "Slots"), exact=True).fill("2")
        secretary.get_by_label(t(lang, "Starts"), exact=True).fill(local_field(starts))
        secretary.get_by_label(t(lang, "Ends"), exact=True).fill(
            local_field(starts + timedelta(hours=3))
        )
        expect(secretary.get_by_label(t(lang, "Priority"), exact=True)).to_have_value("routine")
        secretary.get_by_role("button", name=t(lang, "Post demand"), exact=True).click()
        expect(secretary).to_have_url(re.compile(r"/demands/dem"))
        demand_id = secretary.url.rsplit("/", 1)[-1].split("?")[0]
        expect(secretary.locator("#filled-count")).to_contain_text("0 / 2")
        check_page(secretary, f"demand-secretary-open-{tag}")

        secretary.goto(f"{stack.url}/volunteers")
        phone = "13800138000" if lang == "zh-CN" else "13900139000"
        secretary.get_by_label(t(lang, "Name"), exact=True).fill(
            "李阿姨" if lang == "zh-CN" else "Auntie Li"
        )
        secretary.get_by_label(t(lang, "Phone"), exact=True).fill(phone)
        secretary.get_by_role("button", name=t(lang, "Register and invite")).click()
        volunteer_link = open_invitation(secretary)
        check_page(secretary, f"volunteers-invited-{tag}")

        # The secretary watches the open board.
        secretary.goto(f"{stack.url}/board")
        card = secretary.locator(f"li[data-demand='{demand_id}']")
        expect(card).to_contain_text(title)
        check_page(secretary, f"board-{tag}")

        # --- the volunteer, on a phone: set a password, claim ----------------------------
        volunteer = new_person("phone")
        volunteer.goto(volunteer_link + f"?lang={lang}")
        expect(volunteer.get_by_label(t(lang, "Login"), exact=True)).to_have_value(phone)
        volunteer.get_by_label(t(lang, "Password"), exact=True).fill("volunteer-pass-1")
        volunteer.get_by_role("button", name=t(lang, "Set password")).click()
        expect(volunteer).to_have_url(re.compile(r"/needs$"))
        check_page(volunteer, f"needs-{tag}-phone")
        volunteer.get_by_role("link", name=title).click()
        check_page(volunteer, f"demand-volunteer-{tag}-phone")
        remaining = t(lang, "%(left)s of %(slots)s places left") % {"left": 1, "slots": 2}
        volunteer.get_by_role("button", name=t(lang, "Claim"), exact=True).click()
        expect(volunteer.get_by_role("link", name=t(lang, "Check in"), exact=True)).to_be_visible()
        claimed_at = time.monotonic()
        # The page after the claim counts the place just taken (dispatch hears of it a
        # moment after units answered; the page is not reloaded here).
        expect(volunteer.locator(".places")).to_have_text(remaining)
        # The secretary's board, never reloaded, shows the claim within 2 s.
        expect(card).to_contain_text(remaining, timeout=2000)
        seen_after = time.monotonic() - claimed_at
        assert seen_after < 2.0, seen_after
        check_page(secretary, f"board-claimed-{tag}")
        check_page(volunteer, f"demand-volunteer-claimed-{tag}-phone")

        # The unread badge lights up without a reload.
        expect(volunteer.locator("#unread-badge .badge")).not_to_have_attribute(
            "data-count", "0", timeout=10_000
        )

        # --- check-in through the QR link -------------------------------------------------
        secretary.goto(f"{stack.url}/demands/{demand_id}/qr")
        check_page(secretary, f"qr-{tag}")
        qr_link = secretary.locator("#check-in-link").get_attribute("href")
        assert qr_link
        assert f"/check-in/{demand_id}?code=" in qr_link
        code = qr_link.rsplit("=", 1)[-1]
        secretary.goto(f"{stack.url}/demands/{demand_id}/roster")
        check_page(secretary, f"roster-{tag}")
        expect(secretary.locator("table")).to_contain_text(
            "李阿姨" if lang == "zh-CN" else "Auntie Li"
        )

        volunteer.goto(qr_link)
        expect(volunteer.get_by_label(t(lang, "Check-in code"), exact=True)).to_have_value(code)
        check_page(volunteer, f"check-in-{tag}-phone")
        volunteer.get_by_role("button", name=t(lang, "Check in"), exact=True).click()
        expect(volunteer.get_by_label(t(lang, "Report"), exact=True)).to_be_visible()

        # A shift at the same time is refused, in words and local times.
        secretary.goto(f"{stack.url}/demands/new")
        secretary.get_by_label(t(lang, "Title"), exact=True).fill(title + " 2")
        secretary.get_by_label(t(lang, "Slots"), exact=True).fill("3")
        secretary.get_by_label(t(lang, "Starts"), exact=True).fill(local_field(starts))
        secretary.get_by_label(t(lang, "Ends"), exact=True).fill(
            local_field(starts + timedelta(hours=1))
        )
        secretary.get_by_role("button", name=t(lang, "Post demand"), exact=True).click()
        expect(secretary).to_have_url(re.compile(r"/demands/dem"))
        second_id = secretary.url.rsplit("/", 1)[-1]
        volunteer.goto(f"{stack.url}/demands/{second_id}")
        volunteer.get_by_role("button", name=t(lang, "Claim"), exact=True).click()
        overlap = t(lang, "You are already on a shift from %(start)s to %(end)s.") % {
            "start": starts.strftime("%Y-%m-%d %H:%M"),
            "end": (starts + timedelta(hours=3)).strftime("%Y-%m-%d %H:%M"),
        }
        expect(volunteer.get_by_role("alert")).to_have_text(overlap)
        check_page(volunteer, f"claim-refused-{tag}-phone")

        # --- completion --------------------------------------------------------------------
        volunteer.goto(f"{stack.url}/demands/{demand_id}")
        volunteer.get_by_label(t(lang, "Report"), exact=True).fill(
            "北门秩序良好" if lang == "zh-CN" else "All calm at the gate"
        )
        volunteer.get_by_role("button", name=t(lang, "Complete"), exact=True).click()
        expect(volunteer.locator("#h-mine")).to_have_count(0)
        volunteer.goto(f"{stack.url}/duties")
        expect(volunteer.locator("#hours-week")).not_to_have_text("0")
        volunteer.get_by_role("button", name=t(lang, "Make calendar address")).click()
        feed = volunteer.locator("#calendar-url").inner_text().strip()
        check_page(volunteer, f"duties-{tag}-phone")
        first, again = httpx.get(feed), httpx.get(feed)
        assert first.status_code == 200
        assert first.headers["content-type"].startswith("text/calendar")
        uids = re.findall(r"^UID:(.+)$", first.text.replace("\r", ""), flags=re.M)
        assert uids
        assert uids == re.findall(r"^UID:(.+)$", again.text.replace("\r", ""), flags=re.M)
        assert "STATUS:CONFIRMED" in first.text
        volunteer.goto(f"{stack.url}/inbox")
        check_page(volunteer, f"inbox-volunteer-{tag}-phone")

        secretary.goto(f"{stack.url}/demands/{demand_id}")
        secretary.get_by_role("button", name=t(lang, "Complete"), exact=True).click()
        expect(secretary.locator("#demand-live")).to_contain_text(t(lang, "completed"))

        # --- the demand's timeline, from audit ---------------------------------------------
        deadline = time.monotonic() + 15
        while True:
            types = secretary.locator("#timeline li").evaluate_all(
                "items => items.map(li => li.dataset.type)"
            )
            wanted = {
                "demand.published",
                "claim.accepted",
                "claim.checked_in",
                "claim.completed",
                "demand.completed",
            }
            if wanted <= set(types) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
            secretary.reload()
        assert wanted <= set(types), types
        assert types[0] == "demand.published"
        check_page(secretary, f"demand-secretary-completed-{tag}")
        secretary.goto(f"{stack.url}/inbox")
        check_page(secretary, f"inbox-secretary-{tag}")
        SEEN[lang] = {
            "secretary": f"chen-{suffix}",
            "volunteer": phone,
            "demand": demand_id,
            "open_demand": second_id,
            "code": code,
        }
    finally:
        for context in contexts:
            context.close()


def test_a_demand_repeated_over_days_is_previewed_before_anything_is_posted(
    stack: Stack, browser: Browser, outside: Outside
) -> None:
    assert "en" in SEEN, "runs after the English flow"
    context = person(browser, "desktop", outside)
    try:
        page = context.new_page()
        sign_in(page, stack, "en", SEEN["en"]["secretary"], "secretary-pass-1")
        page.goto(f"{stack.url}/demands/new")
        page.get_by_label("Title", exact=True).fill("Daily call to residents living alone")
        page.get_by_label("Slots", exact=True).fill("2")
        page.get_by_label("Repeat on this many days", exact=True).fill("3")
        page.get_by_role("button", name="Post demand", exact=True).click()
        rows = page.locator("table tbody tr")
        expect(rows).to_have_count(3)
        check_page(page, "series-preview-en-desktop")
        page.goto(f"{stack.url}/board")
        expect(page.locator("#board")).not_to_contain_text("Daily call to residents")
        page.go_back()
        page.get_by_role("button", name="Post all 3").click()
        expect(page).to_have_url(re.compile(r"/board$"))
        expect(page.locator("#board li", has_text="Daily call to residents")).to_have_count(3)
    finally:
        context.close()


def test_a_unit_member_invited_by_the_admin_claims_for_several_people(
    stack: Stack, browser: Browser, outside: Outside
) -> None:
    seen = SEEN["zh-CN"]
    contexts = [person(browser, "desktop", outside), person(browser, "phone", outside)]
    try:
        admin, member = (context.new_page() for context in contexts)
        sign_in(admin, stack, "zh-CN", "admin", ADMIN_PASSWORD)
        form = admin.locator("form[action='/admin/units']")
        form.get_by_label(t("zh-CN", "Name"), exact=True).fill("街道卫生服务中心")
        form.get_by_label(t("zh-CN", "Kind of unit"), exact=True).select_option("department")
        form.get_by_label(t("zh-CN", "Communities served"), exact=True).fill("c-north-zh")
        form.get_by_label(t("zh-CN", "First member's suggested login"), exact=True).fill(
            "health-centre"
        )
        form.get_by_role("button", name=t("zh-CN", "Register unit")).click()
        link = open_invitation(admin)
        member.goto(link)
        expect(member.get_by_label(t("zh-CN", "Login"), exact=True)).to_have_value("health-centre")
        member.get_by_label(t("zh-CN", "Password"), exact=True).fill("unit-member-pass")
        member.get_by_role("button", name=t("zh-CN", "Set password")).click()
        expect(member).to_have_url(re.compile(r"/needs$"))
        member.get_by_role("link", name="北门卡口值守 2").click()
        member.get_by_label(t("zh-CN", "Headcount"), exact=True).fill("2")
        member.get_by_label(t("zh-CN", "Members"), exact=True).fill("张医生，王护士")
        check_page(member, "demand-unit-zh-CN-phone")
        member.get_by_role("button", name=t("zh-CN", "Claim"), exact=True).click()
        expect(member.locator("#h-mine")).to_be_visible()
        expect(member.get_by_text(t("zh-CN", "%(count)s people") % {"count": 2})).to_be_visible()
        admin.goto(f"{stack.url}/sign-in")
        # The secretary's page names the unit and its members.
        secretary = contexts[0].new_page()
        contexts[0].clear_cookies()
        sign_in(secretary, stack, "zh-CN", seen["secretary"], "secretary-pass-1")
        secretary.goto(f"{stack.url}/demands/{seen['open_demand']}")
        claims = secretary.locator("#claims")
        expect(claims).to_contain_text("街道卫生服务中心 × 2")
        expect(claims).to_contain_text("张医生, 王护士")
        # The unit withdraws: the shift starts within the hour, so a reason is asked for, in
        # words; with one, the secretary's open page shows the withdrawal without a reload.
        member.get_by_role("button", name=t("zh-CN", "Withdraw"), exact=True).click()
        expect(member.get_by_role("alert")).to_have_text(
            t("zh-CN", "The shift starts within the hour: say why you withdraw.")
        )
        member.get_by_label(t("zh-CN", "Reason"), exact=True).fill("临时有抢险任务")
        member.get_by_role("button", name=t("zh-CN", "Withdraw"), exact=True).click()
        expect(member.get_by_role("button", name=t("zh-CN", "Claim"), exact=True)).to_be_visible()
        expect(claims).to_contain_text(t("zh-CN", "withdrawn"))
    finally:
        for context in contexts:
            context.close()


def test_the_qr_link_opened_signed_out_signs_in_and_comes_back_with_the_code(
    stack: Stack, browser: Browser, outside: Outside
) -> None:
    seen = SEEN["en"]
    context = person(browser, "phone", outside)
    try:
        page = context.new_page()
        page.goto(f"{stack.url}/check-in/{seen['demand']}?code={seen['code']}&lang=en")
        expect(page).to_have_url(re.compile(r"/sign-in\?next="))
        page.get_by_label("Login", exact=True).fill(seen["volunteer"])
        page.get_by_label("Password", exact=True).fill("volunteer-pass-1")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page).to_have_url(re.compile(rf"/check-in/{seen['demand']}\?code="))
        # Already checked in (and completed) in the flow: the page says so.
        expect(page.locator("h1")).to_contain_text("Check in")
    finally:
        context.close()


SCREENS = {
    "secretary": [
        ("board", "/board"),
        ("demand-new", "/demands/new"),
        ("volunteers", "/volunteers"),
        ("demand-secretary", "/demands/{open_demand}"),
        ("qr", "/demands/{open_demand}/qr"),
        ("roster", "/demands/{demand}/roster"),
        ("inbox-secretary", "/inbox"),
    ],
    "volunteer": [
        ("needs", "/needs"),
        ("demand-volunteer", "/demands/{open_demand}"),
        ("duties", "/duties"),
        ("check-in", "/check-in/{demand}?code={code}"),
        ("inbox-volunteer", "/inbox"),
    ],
    "admin": [("admin", "/admin")],
    "anonymous": [("sign-in", "/sign-in")],
}
PASSWORDS = {
    "secretary": "secretary-pass-1",
    "volunteer": "volunteer-pass-1",
    "admin": ADMIN_PASSWORD,
}


@pytest.mark.parametrize("size", ["phone", "desktop"])
@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_screen_at_both_sizes_passes_axe(
    stack: Stack, browser: Browser, outside: Outside, lang: str, size: str
) -> None:
    seen = SEEN[lang]
    for role, screens in SCREENS.items():
        context = person(browser, size, outside)
        try:
            page = context.new_page()
            if role != "anonymous":
                login = "admin" if role == "admin" else seen[role]
                sign_in(page, stack, lang, login, PASSWORDS[role])
                page.wait_for_url(re.compile(r"/(board|needs|admin)$"))
            for name, path in screens:
                page.goto(
                    f"{stack.url}{path.format(**seen)}"
                    + ("&" if "?" in path else "?")
                    + f"lang={lang}"
                )
                expect(page.locator("html")).to_have_attribute("lang", lang)
                check_page(page, f"tour-{name}-{lang}-{size}")
                # Nothing is wider than the screen (usable at 360 px and up).
                overflow = page.evaluate(
                    "() => document.documentElement.scrollWidth - window.innerWidth"
                )
                assert overflow <= 0, f"{name} is {overflow}px wider than the screen"
        finally:
            context.close()


def test_nothing_was_fetched_from_outside_the_machine(outside: Outside) -> None:
    assert outside.urls == []
