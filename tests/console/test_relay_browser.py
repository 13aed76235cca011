"""The relay roster in a real browser (issue 14), at phone and desktop size, in both
languages: the secretary fills the form (units, days, shift, people per turn, a unit's days
off), reviews the proposal (day -> unit, turns per unit) and confirms it; the unit sees its
committed turns, accepts one, names its people and hands another back. Every screen is
screenshotted and held to axe-core; nothing is fetched from outside the machine."""

import re
from datetime import datetime, timedelta
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.console.browser import Outside, check_page, person, sign_in, t
from tests.console.stack import Stack, api, wait_for
from tests.support.auth import make_token

pytestmark = pytest.mark.e2e

ZONE = ZoneInfo("Asia/Shanghai")
PASSWORD = "a-good-password-3"
COMMUNITY = "c-relay"
BRANCHES = ("第一党支部", "第二党支部", "第三党支部")


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    """A community, three party branches serving it, a secretary and the first branch's
    account; dispatch knows the branches (from units' events) before the tests start."""
    admin = make_token("admin")
    api(
        stack,
        "dispatch",
        "POST",
        "/v1/communities",
        admin,
        json={"id": COMMUNITY, "name": "接力社区", "street": "s-relay", "district": "d-relay"},
    )
    wait_for(
        lambda: (
            httpx.get(
                f"{stack.services['units'].url}/v1/communities/{COMMUNITY}",
                headers={"Authorization": f"Bearer {admin}"},
            ).status_code
            == 200
        ),
        "units knowing the community",
    )
    units = [
        api(
            stack,
            "units",
            "POST",
            "/v1/units",
            admin,
            json={"name": name, "kind": "party_branch", "communities": [COMMUNITY]},
        )
        for name in BRANCHES
    ]
    secretary = make_token("secretary", community=COMMUNITY)
    wait_for(
        lambda: (
            len(
                api(stack, "dispatch", "GET", f"/v1/communities/{COMMUNITY}/units", secretary)[
                    "items"
                ]
            )
            == len(BRANCHES)
        ),
        "dispatch knowing the branches",
    )
    stack.create_account("sec-relay", PASSWORD, "--role", "secretary", "--community", COMMUNITY)
    stack.create_account("branch-1", PASSWORD, "--role", "unit", "--unit", units[0]["id"])
    return {"units": units}


CASES = [
    pytest.param("zh-CN", "desktop", 3, id="zh-CN-desktop"),
    pytest.param("en", "phone", 20, id="en-phone"),
]


@pytest.mark.parametrize(("lang", "size", "ahead"), CASES)
def test_the_secretary_proposes_reviews_and_confirms_a_relay_and_the_unit_takes_its_turns(
    stack: Stack,
    browser: Browser,
    outside: Outside,
    world: dict[str, Any],
    lang: str,
    size: str,
    ahead: int,
) -> None:
    tag = f"{lang}-{size}"
    first_unit = world["units"][0]
    first = (datetime.now(ZONE) + timedelta(days=ahead)).date()
    days = [first + timedelta(days=offset) for offset in range(9)]
    secretary = person(browser, size, outside).new_page()
    sign_in(secretary, stack.url, lang, "sec-relay", PASSWORD)
    secretary.get_by_role("link", name=t(lang, "Relay rosters"), exact=True).click()
    expect(secretary).to_have_url(re.compile(r"/relays$"))
    secretary.get_by_role("link", name=t(lang, "New relay roster"), exact=True).click()
    expect(secretary).to_have_url(re.compile(r"/relays/new$"))
    title = "卡口接力值守" if lang == "zh-CN" else "Gate relay"
    secretary.get_by_label(t(lang, "Title"), exact=True).fill(title)
    secretary.get_by_label(t(lang, "First day"), exact=True).fill(days[0].isoformat())
    secretary.get_by_label(t(lang, "Last day"), exact=True).fill(days[-1].isoformat())
    secretary.get_by_label(t(lang, "Shift starts"), exact=True).fill("08:00")
    secretary.get_by_label(t(lang, "Shift ends"), exact=True).fill("12:00")
    secretary.get_by_label(t(lang, "People per turn"), exact=True).fill("4")
    # The first branch cannot serve the first three days.
    off = ", ".join(day.isoformat() for day in days[:3])
    secretary.locator(f"#f-blocked-{first_unit['id']}").fill(off)
    for name in BRANCHES:
        expect(secretary.get_by_label(name, exact=False).first).to_be_checked()
    check_page(secretary, f"relay-new-{tag}")
    secretary.get_by_role("button", name=t(lang, "Propose rotation"), exact=True).click()
    expect(secretary).to_have_url(re.compile(r"/relays/ros_[0-9a-f]+$"))

    # The review: nine days, three turns each, the first branch not on its days off.
    rows = secretary.locator("#turns tbody tr")
    expect(rows).to_have_count(len(days))
    load = secretary.locator("#load tbody tr")
    expect(load).to_have_count(len(BRANCHES))
    for index, name in enumerate(BRANCHES):
        expect(load.nth(index)).to_contain_text(name)
        expect(load.nth(index).locator("td").nth(1)).to_have_text("3")
    for index in range(3):
        expect(rows.nth(index).locator("td").nth(1)).not_to_have_text(BRANCHES[0])
    check_page(secretary, f"relay-review-{tag}")
    roster_url = secretary.url
    roster_id = roster_url.rsplit("/", 1)[1]
    confirm = t(lang, "Confirm and publish %(count)s turns") % {"count": len(days)}
    secretary.get_by_role("button", name=confirm, exact=True).click()
    expect(secretary.locator("#confirmed")).to_be_visible()
    expect(secretary.get_by_role("button", name=confirm, exact=True)).to_have_count(0)
    check_page(secretary, f"relay-confirmed-{tag}")
    roster = api(
        stack,
        "dispatch",
        "GET",
        f"/v1/rosters/{roster_id}",
        make_token("secretary", community=COMMUNITY),
    )
    assert roster["status"] == "confirmed"
    assert all(turn["demand_id"] for turn in roster["turns"])
    secretary.goto(f"{stack.url}/relays")
    expect(secretary.locator("#rosters")).to_contain_text(title)
    secretary.context.close()

    # The first branch: its three turns, committed; it takes one on, names its people,
    # and hands another back.
    mine = [turn for turn in roster["turns"] if turn["unit_id"] == first_unit["id"]]
    assert len(mine) == 3
    branch = person(browser, "phone", outside).new_page()
    sign_in(branch, stack.url, lang, "branch-1", PASSWORD)
    branch.goto(f"{stack.url}/turns?lang={lang}")

    def claim_of(turn: dict[str, Any]) -> dict[str, Any] | None:
        found = api(
            stack,
            "units",
            "GET",
            "/v1/claims",
            make_token("unit", unit=first_unit["id"]),
            params={"demand_id": turn["demand_id"]},
        )["items"]
        return found[0] if found else None

    claims = [wait_for(partial(claim_of, turn), "the branch's claim") for turn in mine]
    branch.reload()
    for claim in claims:
        expect(branch.locator(f"#turn-{claim['id']}")).to_be_visible()
    taken, given = claims[0], claims[1]
    card = branch.locator(f"#turn-{taken['id']}")
    card.get_by_role("button", name=t(lang, "Accept turn"), exact=True).click()
    card = branch.locator(f"#turn-{taken['id']}")
    expect(card).to_contain_text(t(lang, "taken on"))
    card.locator("textarea").fill("王芳\n刘洋")
    card.get_by_role("button", name=t(lang, "Save names"), exact=True).click()
    expect(branch.locator(f"#turn-{taken['id']} textarea")).to_have_value("王芳\n刘洋")
    card = branch.locator(f"#turn-{taken['id']}")
    card.locator("summary").click()
    card.get_by_label(t(lang, "Who will not come"), exact=True).select_option("王芳")
    card.get_by_label(t(lang, "Who comes instead"), exact=True).fill("陈静")
    card.get_by_role("button", name=t(lang, "Substitute"), exact=True).click()
    expect(branch.locator(f"#turn-{taken['id']} textarea")).to_have_value("陈静\n刘洋")
    branch.locator(f"#turn-{given['id']}").get_by_role(
        "button", name=t(lang, "Hand back"), exact=True
    ).click()
    expect(branch.locator(f"#turn-{given['id']}")).to_contain_text(t(lang, "withdrawn"))
    check_page(branch, f"relay-turns-{lang}-phone")
    branch.context.close()


def test_nothing_was_fetched_from_outside_the_machine(outside: Outside) -> None:
    assert outside.urls == []
