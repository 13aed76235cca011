"""Repeating demands and fatigue limits in a real browser on a phone (390x844): a secretary
chooses "every day until" in words, sees the rule and the next occurrences before creating
the series, then its page with the demands dispatch published; a volunteer opening one of
them reads their limits in words and, with an overlapping shift already claimed, why a claim
now would be refused. Every screen is screenshotted and held to axe-core."""

import time
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect

from services.console.domain.series import Rule, read_rule, rule_of
from tests.console.browser import Outside, check_page, person, sign_in, t
from tests.console.stack import Stack, api
from tests.support.auth import make_token

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Asia/Shanghai")
PASSWORD = "a-good-password-3"
COMMUNITY = "c-repeat"


def until_ok(probe: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return probe()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def people(stack: Stack) -> dict[str, str]:
    admin = make_token("admin")
    body = {"id": COMMUNITY, "name": "Repeat Lane", "street": "s-repeat", "district": "d-repeat"}
    api(stack, "dispatch", "POST", "/v1/communities", admin, json=body)
    secretary = make_token("secretary", community=COMMUNITY)
    # Units learns of the community from its event: register the volunteer once it has.
    volunteer = until_ok(
        lambda: api(
            stack,
            "units",
            "POST",
            "/v1/volunteers",
            secretary,
            json={"name": "Li Wei", "community_id": COMMUNITY, "skills": ["checkpoint"]},
        )
    )
    stack.create_account("repeat-sec", PASSWORD, "--role", "secretary", "--community", COMMUNITY)
    stack.create_account(
        "repeat-vol", PASSWORD, "--role", "volunteer", "--volunteer", volunteer["id"]
    )
    return {"volunteer": volunteer["id"]}


def test_a_secretary_creates_a_series_and_a_volunteer_reads_their_limits(
    stack: Stack, browser: Browser, people: dict[str, str]
) -> None:
    outside = Outside()
    lang = "zh-CN"
    context = person(browser, "phone", outside)
    page = context.new_page()
    sign_in(page, stack.url, lang, "repeat-sec", PASSWORD)
    page.goto(f"{stack.url}/series/new")
    page.get_by_label(t(lang, "Title"), exact=True).fill("早班门岗")
    page.get_by_label(t(lang, "every day")).check()
    last = (datetime.now(ZONE) + timedelta(days=6)).date()
    page.get_by_label(t(lang, "Until (the last day)")).fill(last.isoformat())
    check_page(page, "series-new-phone")
    page.get_by_role("button", name=t(lang, "Show the occurrences")).click()

    # The rule in words and the next occurrences, before anything is created.
    words = t(lang, "Every day until %(day)s") % {"day": last.isoformat()}
    expect(page.locator(".rule-words").first).to_contain_text(words)
    expect(page.locator("ol.occurrences li")).to_have_count(6)
    check_page(page, "series-preview-phone")
    page.get_by_role("button", name=t(lang, "Create the series")).click()

    page.wait_for_url(lambda url: "/series/ser_" in url)
    expect(page.locator(".rule-words")).to_contain_text(words)
    posted = page.locator("ul.posted li a")
    expect(posted.first).to_be_visible()
    # The first week is within the horizon: all six mornings are published demands.
    expect(posted).to_have_count(6)
    check_page(page, "series-page-phone")
    series_id = page.url.rsplit("/", 1)[-1]
    series = api(stack, "dispatch", "GET", f"/v1/series/{series_id}", make_token("admin"))
    assert len(series["demand_ids"]) == 6
    first = series["demand_ids"][0]
    first_demand = api(stack, "dispatch", "GET", f"/v1/demands/{first}", make_token("admin"))
    assert first_demand["series_id"] == series_id

    # Another demand overlapping the first morning, claimed by the volunteer beforehand.
    starts = datetime.fromisoformat(first_demand["starts_at"])
    other = api(
        stack,
        "dispatch",
        "POST",
        "/v1/demands",
        make_token("secretary", community=COMMUNITY),
        json={
            "community_id": COMMUNITY,
            "kind": "staffing",
            "title": "Night before",
            "slots": 2,
            "starts_at": (starts - timedelta(hours=2)).isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
        },
    )
    volunteer = make_token("volunteer", volunteer=people["volunteer"])
    until_ok(
        lambda: api(stack, "units", "POST", f"/v1/demands/{other['id']}/claims", volunteer, json={})
    )
    until_ok(lambda: api(stack, "units", "GET", f"/v1/demands/{first}/fitness", volunteer))

    context.close()
    theirs = person(browser, "phone", outside)
    helper = theirs.new_page()
    sign_in(helper, stack.url, "en", "repeat-vol", PASSWORD)
    for lang_ in ("en", "zh-CN"):
        helper.goto(f"{stack.url}/demands/{first}?lang={lang_}")
        limits = helper.locator("#fatigue-limits")
        expect(limits).to_contain_text(
            t(lang_, "at most %(hours)s hours in any 24 hours") % {"hours": "10"}
        )
        expect(limits).to_contain_text(
            t(lang_, "at most %(days)s days in a row with a shift") % {"days": 6}
        )
        expect(limits).to_contain_text("4")  # the morning counts 4 h (no night hours)
        expect(helper.locator("#fatigue-refusal")).to_contain_text(
            t(lang_, "A claim now would be refused: %(why)s") % {"why": ""}
        )
        check_page(helper, f"series-volunteer-limits-{lang_}-phone")
    assert outside.urls == []
    theirs.close()


def test_the_rule_in_words_reads_back_what_the_form_chose() -> None:
    chosen = rule_of("days", ["0", "2", "4"], "2026-12-30")
    assert chosen.rrule() == "FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20261230T235959"
    assert read_rule(chosen.rrule()) == chosen
    weekdays = read_rule(rule_of("weekdays", [], "2026-12-30").rrule())
    assert weekdays is not None
    assert weekdays.pattern == "weekdays"
    assert read_rule("FREQ=DAILY;COUNT=3") is None
    daily = read_rule(rule_of("daily", ["3"], "2027-01-02").rrule())
    assert daily == Rule("daily", date(2027, 1, 2))
