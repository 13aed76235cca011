"""The console's own rules, without I/O: throttling, repeats, duties, refusals in words, the
catalogue."""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from services.console.domain.accounts import AccountError, Role, Scope, check_login, check_scope
from services.console.domain.duties import hours_this_week, split, week_bounds
from services.console.domain.refusals import Problem, explain, field_errors
from services.console.domain.series import repeat_daily
from services.console.domain.throttle import locked_until
from services.console.entrypoints.web import load_translations

pytestmark = pytest.mark.unit

NOW = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")
CONSOLE = Path(__file__).resolve().parents[2] / "services" / "console"


def test_four_failures_leave_sign_in_open() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert locked_until(failures, now=NOW, limit=5, window=timedelta(minutes=15)) is None


def test_the_fifth_failure_locks_until_the_oldest_leaves_the_window() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4, 10)]
    until = locked_until(failures, now=NOW, limit=5, window=timedelta(minutes=15))
    assert until == NOW + timedelta(minutes=5)


def test_failures_older_than_the_window_do_not_count() -> None:
    failures = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4, 16, 20)]
    assert locked_until(failures, now=NOW, limit=5, window=timedelta(minutes=15)) is None


def test_a_repeat_keeps_the_hours_each_day_and_shifts_fill_by() -> None:
    start = datetime(2030, 5, 1, 8, 0, tzinfo=SHANGHAI)
    shifts = repeat_daily(start, start + timedelta(hours=4), start - timedelta(hours=2), 3)
    assert [s.starts_at.day for s in shifts] == [1, 2, 3]
    assert all(s.ends_at - s.starts_at == timedelta(hours=4) for s in shifts)
    assert shifts[2].fill_by == start + timedelta(days=2, hours=-2)
    with pytest.raises(ValueError, match="days"):
        repeat_daily(start, start, None, 0)


def test_hours_this_week_count_accepted_checked_in_and_completed_clipped_to_the_week() -> None:
    now = datetime(2030, 5, 1, 12, 0, tzinfo=SHANGHAI)  # a Wednesday
    monday, sunday_end = week_bounds(now, SHANGHAI)
    assert monday == datetime(2030, 4, 29, 0, 0, tzinfo=SHANGHAI)
    claims = [
        {
            "status": "completed",
            "starts_at": now - timedelta(days=1),
            "ends_at": now - timedelta(days=1) + timedelta(hours=4),
        },
        {
            "status": "accepted",
            "starts_at": now + timedelta(days=1),
            "ends_at": now + timedelta(days=1, hours=2),
        },
        {"status": "withdrawn", "starts_at": now, "ends_at": now + timedelta(hours=8)},
        # Sunday 22:00 to Monday 02:00: two hours in this week.
        {
            "status": "checked_in",
            "starts_at": sunday_end - timedelta(hours=2),
            "ends_at": sunday_end + timedelta(hours=2),
        },
    ]
    assert hours_this_week(claims, now, SHANGHAI) == 8.0
    upcoming, past = split(claims, now)
    assert [c["status"] for c in upcoming] == ["accepted", "checked_in"]
    assert {c["status"] for c in past} == {"completed", "withdrawn"}


def test_an_overlapping_shift_is_said_with_its_local_times_in_chinese() -> None:
    problem = Problem(
        409,
        "overlapping-shift",
        "the volunteer already has claim 'clm_1' on demand 'dem_1' from "
        "2030-05-01T00:00:00+00:00 to 2030-05-01T04:00:00+00:00, which overlaps this one",
    )
    zh = load_translations("zh-CN").gettext
    en = load_translations("en").gettext

    def when(instant: datetime) -> str:
        return instant.astimezone(SHANGHAI).strftime("%H:%M")

    assert explain(problem, en, when) == "You are already on a shift from 08:00 to 12:00."
    assert explain(problem, zh, when) == "你已有一个从 08:00 到 12:00 的班次。"


def test_field_errors_map_to_their_fields() -> None:
    problem = Problem.from_body(
        422,
        {
            "type": "https://whistle.dev/problems/validation-error",
            "detail": "x",
            "errors": [
                {
                    "loc": ["body", "title"],
                    "msg": "String should have at least 1 character",
                    "type": "string_too_short",
                },
                {
                    "loc": ["body"],
                    "msg": "Value error, ends_at must be after starts_at",
                    "type": "value_error",
                },
            ],
        },
    )
    errors = field_errors(problem, load_translations("en").gettext)
    assert errors == {"title": "Required.", "ends_at": "The end must be after the start."}


def test_an_unknown_slug_still_gets_a_sentence() -> None:
    text = explain(Problem(409, "something-new", ""), load_translations("en").gettext, str)
    assert text == "The request was refused (something-new)."


def test_a_role_carries_exactly_its_own_scope() -> None:
    assert check_scope(Role.SECRETARY, Scope(community="c1")) == Scope(community="c1")
    with pytest.raises(AccountError):
        check_scope(Role.SECRETARY, Scope())
    with pytest.raises(AccountError):
        check_scope(Role.VOLUNTEER, Scope(community="c1", volunteer="v1"))
    with pytest.raises(AccountError):
        check_scope(Role.ADMIN, Scope(unit="u1"))
    assert check_login(" Wang.Li ") == "wang.li"
    with pytest.raises(AccountError):
        check_login("x")


def test_every_string_of_the_console_is_translated_into_chinese() -> None:
    """Extracted from the code and templates as they are now, so a new string without a
    translation fails here, not in front of a secretary."""
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {
        "**/templates/**.html": {
            "extensions": "jinja2.ext.i18n",
            "trim_blocks": "true",
            "lstrip_blocks": "true",
        }
    }
    found = {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(CONSOLE), method_map, options_map=options
        )
    }
    po = CONSOLE / "locale" / "zh_CN" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as source:
        catalog = read_po(source)
    translated = {message.id for message in catalog if message.id and message.string}
    missing = sorted(m for m in found if m and m not in translated)
    assert missing == []
