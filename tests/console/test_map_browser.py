"""The risk-zone map in a real browser (Debian's Chromium) against the real stack: an admin
uploads a community's grid (a bad one is refused naming the coordinate), the secretary rates
a grid, the map shows it in colour AND with its level's word and a legend, the map as of
before the rating, the map printed on A4, the demand page's level, the street's view in
English, and the verify page's last signed checkpoint. Every screen is screenshotted (desktop
and 390x844) and held to axe-core."""

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from tests.console.browser import Outside, check_page, person, shoot, sign_in, t
from tests.console.stack import Stack, api, start_stack
from tests.dispatch.geojson import community_grid
from tests.support.auth import make_token

pytestmark = pytest.mark.e2e

PASSWORD = "a-good-password-3"
COMMUNITY, STREET, DISTRICT = "c-map", "s-map", "d-map"
# The printable area of A4 less the 14 mm margins, at 96 CSS pixels to the inch.
A4_PRINTABLE: ViewportSize = {"width": round(182 / 25.4 * 96), "height": round(269 / 25.4 * 96)}


@pytest.fixture(scope="module")
def stack(
    module_service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    files = tmp_path_factory.mktemp("console-map")
    env = {
        **module_service_env,
        # A checkpoint after every append, so the verify page has one to show.
        "WHISTLE_AUDIT_HEAD_LOG_EVERY": "1",
        "WHISTLE_AUDIT_SIGNING_KEY_FILE": str(files / "audit-signing-key"),
        "WHISTLE_AUDIT_CHECKPOINT_FILE": str(files / "audit-checkpoints.jsonl"),
    }
    yield from start_stack(env, files)


@pytest.fixture(scope="module")
def world(stack: Stack) -> dict[str, Any]:
    admin = make_token("admin")
    api(
        stack,
        "dispatch",
        "POST",
        "/v1/communities",
        admin,
        json={"id": COMMUNITY, "name": "南门社区", "street": STREET, "district": DISTRICT},
    )
    for login, args in (
        ("root-map", ["--role", "admin"]),
        ("sec-map", ["--role", "secretary", "--community", COMMUNITY]),
        ("street-map", ["--role", "street", "--street", STREET]),
        ("auditor-map", ["--role", "auditor"]),
    ):
        stack.create_account(login, PASSWORD, *args)
    db = stack.console_db()[f"{stack.db_prefix}console"]
    db.directory.insert_one(
        {
            "_id": f"community:{COMMUNITY}",
            "kind": "community",
            "id": COMMUNITY,
            "name": "南门社区",
            "street": STREET,
            "district": DISTRICT,
            "at": datetime.now(UTC),
        }
    )
    return {}


def someone(browser: Browser, outside: Outside, size: str = "desktop") -> Page:
    return person(browser, size, outside).new_page()


def grid_label(page: Page, grid: str) -> str:
    return page.locator(f"svg.zone-map text.grid-label[data-grid='{grid}']").text_content() or ""


def test_an_admin_uploads_the_grid_and_a_bad_one_is_refused_naming_the_coordinate(
    stack: Stack,
    browser: Browser,
    outside: Outside,
    world: dict[str, Any],
    tmp_path: Path,
) -> None:
    lang = "zh-CN"
    page = someone(browser, outside)
    sign_in(page, stack.url, lang, "root-map", PASSWORD)
    page.goto(f"{stack.url}/map")
    page.get_by_role("link", name="南门社区").click()
    expect(page.locator("#no-grid")).to_be_visible()
    bad = community_grid()
    bad["features"][0]["geometry"]["coordinates"][0][1] = [121.472, 95.0]
    page.get_by_label(t(lang, "Or paste it here")).fill(json.dumps(bad))
    page.get_by_role("button", name=t(lang, "Upload"), exact=True).click()
    problem = page.locator("#upload-problem")
    expect(problem).to_contain_text("features.0.grid.geometry.Polygon.coordinates.0.1")
    expect(problem).to_contain_text("latitude 95")
    check_page(page, f"map-upload-refused-{lang}-desktop")

    good = tmp_path / "grid.geojson"
    good.write_text(json.dumps(community_grid(), ensure_ascii=False))
    page.get_by_label(t(lang, "GeoJSON file")).set_input_files(str(good))
    page.get_by_label(t(lang, "Or paste it here")).fill("")
    page.get_by_role("button", name=t(lang, "Upload"), exact=True).click()
    expect(page.locator("p.done")).to_contain_text(t(lang, "The grid is uploaded."))
    expect(page.locator("svg.zone-map")).to_be_visible()
    assert t(lang, "Not rated") in grid_label(page, "g-1")
    page.context.close()


def test_the_secretary_rates_a_grid_and_the_map_shows_it_then_and_before(
    stack: Stack, browser: Browser, outside: Outside, world: dict[str, Any]
) -> None:
    lang = "zh-CN"
    now = datetime.now(UTC)
    demand = api(
        stack,
        "dispatch",
        "POST",
        "/v1/demands",
        make_token("secretary", community=COMMUNITY),
        json={
            "community_id": COMMUNITY,
            "kind": "staffing",
            "title": "一网格门岗值守",
            "slots": 2,
            "location": {"grid": "g-1"},
            "starts_at": (now + timedelta(hours=3)).isoformat(),
            "ends_at": (now + timedelta(hours=6)).isoformat(),
        },
    )
    page = someone(browser, outside)
    sign_in(page, stack.url, lang, "sec-map", PASSWORD)
    page.get_by_role("link", name=t(lang, "Map"), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/map/{COMMUNITY}$"))
    page.locator("#f-grid").select_option("g-1")
    page.get_by_role("radio", name=t(lang, "Red")).check()
    page.get_by_label(t(lang, "Reason"), exact=True).fill("1号楼出现病例")
    page.get_by_role("button", name=t(lang, "Rate"), exact=True).click()
    expect(page.locator("p.done")).to_contain_text("g-1")

    # The grid in its colour AND its word; the other grid unrated, said so; the legend.
    red = page.locator("svg.zone-map path[data-grid='g-1']")
    expect(red).to_have_attribute("data-level", "red")
    expect(red).to_have_attribute("fill", "#d7191c")
    assert t(lang, "Red") in grid_label(page, "g-1")
    assert "一网格" in grid_label(page, "g-1")
    assert t(lang, "Not rated") in grid_label(page, "g-2")
    legend = page.locator("#legend")
    for word in ("Red", "Orange", "Yellow", "Blue", "Green", "Not rated"):
        expect(legend).to_contain_text(t(lang, word))
    # The open demand, numbered on the map and in the list.
    expect(page.locator("svg.zone-map g.marker")).to_have_count(1)
    expect(page.locator("svg.zone-map .marker-label")).to_have_text("一网格门岗值守")
    expect(page.locator("#map-demands")).to_contain_text("1. 一网格门岗值守")
    history = page.locator("#zone-history li")
    expect(history.first).to_contain_text("1号楼出现病例")
    check_page(page, f"map-rated-{lang}-desktop")

    # The map as it stood just before the rating: g-1 was not rated then.
    history.first.get_by_role("link", name=t(lang, "the map just before")).click()
    expect(page).to_have_url(re.compile(r"\?as_of="))
    expect(page.locator("#map-as-of")).to_contain_text(
        t(lang, "The map as of %(when)s").replace("%(when)s", "").strip()
    )
    expect(page.locator("svg.zone-map path[data-grid='g-1']")).to_have_attribute("data-level", "")
    assert t(lang, "Not rated") in grid_label(page, "g-1")
    check_page(page, f"map-before-rating-{lang}-desktop")

    # Printed on A4: the map, its labels and the legend; no forms, no navigation.
    page.goto(f"{stack.url}/map/{COMMUNITY}")
    page.emulate_media(media="print")
    page.set_viewport_size(A4_PRINTABLE)
    expect(page.locator("header.top")).to_be_hidden()
    expect(page.locator(".map-forms")).to_be_hidden()
    expect(page.locator("svg.zone-map")).to_be_visible()
    expect(page.locator("#legend")).to_be_visible()
    box = page.locator("svg.zone-map").bounding_box()
    assert box is not None
    assert box["width"] <= A4_PRINTABLE["width"] + 1
    shoot(page, f"map-print-a4-{lang}")
    pdf = page.pdf(format="A4", print_background=True)
    assert pdf.startswith(b"%PDF")
    page.emulate_media(media="screen")

    # The demand's page shows its grid's level, in words.
    page.goto(f"{stack.url}/demands/{demand['id']}")
    expect(page.locator(".zone-badge")).to_contain_text(t(lang, "Red"))
    check_page(page, f"demand-zone-level-{lang}-desktop")
    page.context.close()

    phone = someone(browser, outside, "phone")
    sign_in(phone, stack.url, lang, "sec-map", PASSWORD)
    phone.goto(f"{stack.url}/map/{COMMUNITY}")
    expect(phone.locator("svg.zone-map")).to_be_visible()
    check_page(phone, f"map-rated-{lang}-phone")
    phone.context.close()


def test_the_street_sees_and_rates_in_english(
    stack: Stack, browser: Browser, outside: Outside, world: dict[str, Any]
) -> None:
    lang = "en"
    for size in ("desktop", "phone"):
        page = someone(browser, outside, size)
        sign_in(page, stack.url, lang, "street-map", PASSWORD)
        page.goto(f"{stack.url}/map")
        page.locator("#map-communities").get_by_role("link", name="南门社区").click()
        if size == "desktop":
            page.locator("#f-grid").select_option("g-2")
            page.get_by_role("radio", name="Green").check()
            page.get_by_label("Reason", exact=True).fill("no cases for 14 days")
            page.get_by_role("button", name="Rate", exact=True).click()
            expect(page.locator("p.done")).to_be_visible()
        assert "Red" in grid_label(page, "g-1")
        assert "Green" in grid_label(page, "g-2")
        expect(page.locator("#zone-history li").first).to_contain_text("no cases for 14 days")
        check_page(page, f"map-street-{lang}-{size}")
        page.context.close()


def test_the_verify_page_shows_the_last_signed_checkpoint(
    stack: Stack, browser: Browser, outside: Outside, world: dict[str, Any]
) -> None:
    auditor = make_token("auditor")

    def latest() -> httpx.Response:
        return httpx.get(
            f"{stack.services['audit'].url}/v1/checkpoints/latest",
            headers={"Authorization": f"Bearer {auditor}"},
            timeout=20,
        )

    found = latest()
    assert found.status_code == 200, found.text
    checkpoint = found.json()
    assert checkpoint["signature_ok"] is True
    assert checkpoint["signed_by_this_audit"] is True
    assert checkpoint["heads_held"] is True
    assert checkpoint["heads"]
    refused = httpx.get(
        f"{stack.services['audit'].url}/v1/checkpoints/latest",
        headers={"Authorization": f"Bearer {make_token('secretary', community=COMMUNITY)}"},
        timeout=20,
    )
    assert refused.status_code == 403
    for lang in ("zh-CN", "en"):
        page = someone(browser, outside)
        sign_in(page, stack.url, lang, "auditor-map", PASSWORD)
        page.goto(f"{stack.url}/audit/verify")
        section = page.locator("#last-checkpoint")
        expect(section.locator("#checkpoint-verdict")).to_have_class("verdict-ok")
        expect(section.locator("#checkpoint-heads tbody tr").first).to_contain_text(t(lang, "yes"))
        expect(section.locator("#checkpoint-root")).to_have_text(re.compile(r"^[0-9a-f]{64}$"))
        check_page(page, f"verify-checkpoint-{lang}-desktop")
        page.context.close()

    # Someone with write access to audit's database rewrites the pinned record: the
    # checkpoint still verifies on its own, but the log no longer holds its head.
    events = stack.console_db()[f"{stack.db_prefix}audit"]["events"]

    def rewritten() -> dict[str, Any] | None:
        pinned = latest().json()
        for head in pinned["heads"]:
            events.update_one(
                {"partition": head["partition"], "seq": head["seq"]}, {"$set": {"hash": "0" * 64}}
            )
        again = latest().json()  # a checkpoint signed meanwhile pins a newer head: again
        return again if not again["heads_held"] else None

    tampered = wait_for(rewritten, "a checkpoint whose head the log no longer holds")
    assert tampered["signature_ok"] is True
    page = someone(browser, outside)
    sign_in(page, stack.url, "en", "auditor-map", PASSWORD)
    page.goto(f"{stack.url}/audit/verify")
    section = page.locator("#last-checkpoint")
    expect(section.locator("#checkpoint-verdict")).to_have_class("verdict-bad")
    expect(section.locator("#checkpoint-heads")).to_contain_text("no: rewritten")
    check_page(page, "verify-checkpoint-rewritten-en-desktop")
    page.context.close()
    assert not outside.urls, outside.urls


def wait_for(check: Any, what: str, within_s: float = 30) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.3)
