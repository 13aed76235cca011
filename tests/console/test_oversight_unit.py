"""The pure parts of the second half of the console: street and district accounts as the
services see them, the escalation ladder, the wall's figures, notifications said again in the
person's language, and the server-drawn bar chart."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.console.adapters.tokens import mint_for
from services.console.domain.accounts import (
    Account,
    AccountError,
    Role,
    Scope,
    check_scope,
    service_role,
)
from services.console.domain.chart import bars
from services.console.domain.ladder import ladder
from services.console.domain.notices import say
from services.console.domain.wall import build
from services.console.entrypoints.web import load_translations
from shared.auth import Role as ServiceRole
from shared.auth import decode_token
from shared.settings import TokenSettings

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
ZONE = ZoneInfo("Asia/Shanghai")


def account(role: Role, scope: Scope) -> Account:
    return Account("acct_1", "x1", role, scope, "X", True, None, NOW)


def test_street_and_district_staff_hold_a_secretary_token_for_their_place() -> None:
    settings = TokenSettings()
    for role, scope, place in (
        (Role.STREET, Scope(street="s-1"), "s-1"),
        (Role.DISTRICT, Scope(district="d-1"), "d-1"),
        (Role.SECRETARY, Scope(community="c-1"), "c-1"),
    ):
        principal = decode_token(settings, mint_for(account(role, scope), settings, 60))
        assert principal.role is ServiceRole.SECRETARY
        assert principal.community == place
    assert service_role(Role.AUDITOR) is ServiceRole.AUDITOR
    with pytest.raises(AccountError):
        check_scope(Role.STREET, Scope(community="c-1"))
    with pytest.raises(AccountError):
        check_scope(Role.DISTRICT, Scope())
    assert account(Role.STREET, Scope(street="s-1")).home == "/oversight"
    assert account(Role.AUDITOR, Scope()).home == "/audit/events"


def test_the_ladder_says_when_each_level_was_reached_and_how_long_it_took() -> None:
    demand = {
        "level": "district",
        "created_at": NOW.isoformat(),
        "fill_by": (NOW + timedelta(minutes=30)).isoformat(),
        "escalated_at": (NOW + timedelta(minutes=60)).isoformat(),
        "closed_at": None,
    }
    rungs = ladder(demand, NOW + timedelta(minutes=75))
    assert [r.level for r in rungs] == ["community", "street", "district"]
    assert [r.took for r in rungs] == [timedelta(minutes=30)] * 2 + [timedelta(minutes=15)]
    assert [r.current for r in rungs] == [False, False, True]
    assert rungs[1].approximate
    street = ladder({**demand, "level": "street"}, NOW + timedelta(minutes=75))
    assert street[1].reached_at == NOW + timedelta(minutes=60)
    assert street[0].took == timedelta(minutes=60)
    assert street[2].reached_at is None
    assert street[2].took is None


def _demand(id_: str, **fields: object) -> dict[str, object]:
    base = {
        "id": id_,
        "status": "open",
        "slots": 3,
        "filled": 1,
        "priority": "routine",
        "level": "community",
        "starts_at": (NOW + timedelta(hours=1)).isoformat(),
        "fill_by": (NOW + timedelta(minutes=30)).isoformat(),
        "closed_at": None,
    }
    return {**base, **fields}


def test_the_wall_counts_what_the_office_needs_to_see() -> None:
    demands = [
        _demand("soon"),
        _demand("later", starts_at=(NOW + timedelta(hours=4)).isoformat(), priority="critical"),
        _demand("up", level="street", priority="urgent", filled=3),
        _demand("busy", status="in_progress", starts_at=(NOW - timedelta(hours=1)).isoformat()),
        _demand("done", status="completed", closed_at=(NOW - timedelta(hours=1)).isoformat()),
        _demand("old", status="completed", closed_at=(NOW - timedelta(days=2)).isoformat()),
    ]
    claims = {
        "busy": [
            {"status": "checked_in", "headcount": 2},
            {"status": "accepted", "headcount": 1},
        ],
        "done": [{"status": "completed", "headcount": 3}],
    }
    wall = build(demands, claims, NOW, ZONE)
    assert [d["id"] for d in wall.soon] == ["soon"]
    assert wall.needed_soon == 2
    assert [d["id"] for d in wall.urgent] == ["later"]  # "up" is full
    assert [d["id"] for d in wall.escalated] == ["up"]
    assert wall.on_site == 2
    assert (wall.done_demands, wall.done_people) == (1, 3)


def test_a_notification_is_said_in_chinese_from_its_kind_and_demand() -> None:
    zh = load_translations("zh-CN").gettext
    demand = {
        "title": "北门值守",
        "slots": 3,
        "filled": 1,
        "starts_at": "2026-12-01T08:00:00+00:00",
        "ends_at": "2026-12-01T10:00:00+00:00",
        "fill_by": "2026-12-01T07:00:00+00:00",
        "level": "street",
    }
    published = say("demand.published", demand, zh, str)
    assert published.title == "吹哨：北门值守"
    assert "2 / 3" in published.body
    escalated = say("demand.escalated", demand, zh, str)
    assert "街道级" in escalated.body
    for_office = say("claim.no_show", demand, zh, str, office=True)
    for_claimant = say("claim.no_show", demand, zh, str)
    assert for_office.title != for_claimant.title
    unknown = say("something.new", None, zh, str)
    assert unknown.title == "通知：一项需求"


def test_the_bar_chart_is_svg_with_each_value_written_out_and_labels_escaped() -> None:
    svg = str(bars([("<u1>", 87.5), ("u2", 12.0)], title="Scores", empty="none"))
    assert svg.startswith("<svg")
    assert "&lt;u1&gt;" in svg
    assert "<u1>" not in svg
    assert "87.5" in svg
    assert "12.0" in svg
    assert svg.count("<rect") == 2
    assert "none" in str(bars([], title="Scores", empty="none"))
