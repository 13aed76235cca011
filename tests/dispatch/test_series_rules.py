"""A series' occurrences from its rule (pure): local hours in the series' zone, bounded rules,
and every bad rule refused with the field at fault."""

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.dispatch.domain import series as rules
from services.dispatch.domain.refusals import (
    InvalidRrule,
    NoOccurrences,
    RuleTooLong,
    UnknownTimeZone,
)
from services.dispatch.domain.series import Template

pytestmark = pytest.mark.unit

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def template(start: datetime | None = None, hours: float = 4, lead_s: float = 0) -> Template:
    starts = start or datetime(2026, 12, 2, 8, tzinfo=SHANGHAI)
    return Template(
        kind="staffing",
        title="Morning gate",
        slots=2,
        starts_at=starts,
        ends_at=starts + timedelta(hours=hours),
        lead_s=lead_s,
    )


def test_every_day_until_the_30th_is_29_mornings_at_local_eight() -> None:
    occurrences = rules.expand(template(), "FREQ=DAILY;UNTIL=20261230T000000Z", "Asia/Shanghai")
    assert len(occurrences) == 29
    for occurrence in occurrences:
        local = occurrence.starts_at.astimezone(SHANGHAI)
        assert (local.hour, local.minute) == (8, 0)
        assert occurrence.ends_at - occurrence.starts_at == timedelta(hours=4)
        assert occurrence.starts_at.tzinfo == UTC
    assert occurrences[0].starts_at == datetime(2026, 12, 2, 0, tzinfo=UTC)
    # UNTIL is an instant (08:00 local on the 30th): the last morning is included.
    assert occurrences[-1].starts_at == datetime(2026, 12, 30, 0, tzinfo=UTC)


def test_a_floating_until_is_local_time_and_rrule_prefix_is_taken() -> None:
    # 07:59 local on the 30th: the 30th's 08:00 is after it.
    occurrences = rules.expand(
        template(), "RRULE:FREQ=DAILY;UNTIL=20261230T075900", "Asia/Shanghai"
    )
    assert occurrences[-1].starts_at.astimezone(SHANGHAI).day == 29


def test_weekdays_only_and_fill_by_keeps_its_lead() -> None:
    occurrences = rules.expand(
        template(lead_s=3600), "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR;COUNT=10", "Asia/Shanghai"
    )
    assert len(occurrences) == 10
    assert {o.starts_at.astimezone(SHANGHAI).weekday() for o in occurrences} <= set(range(5))
    assert all(o.starts_at - o.fill_by == timedelta(hours=1) for o in occurrences)


def test_local_hours_stay_across_a_daylight_saving_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = datetime(2026, 3, 27, 8, tzinfo=berlin)  # DST starts on the 29th
    occurrences = rules.expand(template(start), "FREQ=DAILY;COUNT=4", "Europe/Berlin")
    assert [o.starts_at.astimezone(berlin).hour for o in occurrences] == [8, 8, 8, 8]
    assert occurrences[3].starts_at - occurrences[2].starts_at == timedelta(hours=24)
    assert occurrences[2].starts_at - occurrences[1].starts_at == timedelta(hours=23)


def test_occurrences_are_named_by_series_and_start() -> None:
    first = rules.expand(template(), "FREQ=DAILY;COUNT=2", "Asia/Shanghai")[0]
    assert first.key("ser_1") == "ser_1:20261202T000000Z"
    assert first.key("ser_1") == rules.occurrence_key("ser_1", first.starts_at.astimezone(SHANGHAI))


@pytest.mark.parametrize(
    ("rule", "refusal", "says"),
    [
        ("FREQ=DAILY", RuleTooLong, "no end"),
        ("FREQ=DAILY;COUNT=367", RuleTooLong, "more than 366"),
        ("FREQ=DAILY;COUNT=99999999999999999999", RuleTooLong, "more than 366"),
        ("FREQ=HOURLY;UNTIL=20301230T000000Z", RuleTooLong, "more than 366"),
        ("FREQ=SOMETIMES;COUNT=3", InvalidRrule, "FREQ"),
        ("COUNT=3", InvalidRrule, "FREQ is required"),
        ("FREQ=DAILY;BYDAY=XX;COUNT=3", InvalidRrule, "BYDAY"),
        ("FREQ=DAILY;UNTIL=tomorrow", InvalidRrule, "UNTIL"),
        ("FREQ=DAILY;INTERVAL=0;COUNT=3", InvalidRrule, "INTERVAL"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20261230T000000Z", InvalidRrule, "COUNT and UNTIL"),
        ("FREQ=DAILY;COUNT=3;COLOUR=red", InvalidRrule, "COLOUR"),
        ("DTSTART:20261202T000000Z\nRRULE:FREQ=DAILY;COUNT=3", InvalidRrule, "one RRULE line"),
        ("FREQ=DAILY;COUNT=3;BYHOUR=25", InvalidRrule, "hour"),
        ("", InvalidRrule, "one RRULE line"),
        # Rules that select no day: refused before dateutil searches to the year 9999.
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30;COUNT=3", InvalidRrule, "no day that exists"),
        ("FREQ=MONTHLY;BYDAY=6FR;COUNT=3", InvalidRrule, "ordinal"),
        ("FREQ=DAILY;BYSETPOS=1;COUNT=3", InvalidRrule, "BYSETPOS"),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TU;COUNT=3", InvalidRrule, "7th day"),
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;COUNT=1", RuleTooLong, "within 5 years"),
        ("FREQ=DAILY;UNTIL=20991230", RuleTooLong, "past 5 years"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule(
    rule: str, refusal: type[Exception], says: str
) -> None:
    with pytest.raises(refusal) as raised:
        rules.checked(template(), rule, "Asia/Shanghai", NOW)
    assert says in str(raised.value)
    assert raised.value.errors[0]["loc"] == ["body", "rrule"]  # type: ignore[attr-defined]


def test_no_rule_keeps_the_search_busy() -> None:
    # An impossible day, searched only as far as a series may reach (not to the year 9999).
    started = time.monotonic()
    with pytest.raises(RuleTooLong):
        rules.expand(template(), "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO;COUNT=9", "UTC")
    assert time.monotonic() - started < 5


def test_an_unknown_zone_is_refused() -> None:
    with pytest.raises(UnknownTimeZone, match="unknown time zone"):
        rules.expand(template(), "FREQ=DAILY;COUNT=3", "Mars/Olympus")


def test_a_rule_with_nothing_ahead_or_past_five_years_is_refused() -> None:
    with pytest.raises(NoOccurrences):
        rules.checked(template(), "FREQ=DAILY;COUNT=3", "Asia/Shanghai", NOW + timedelta(days=9))
    with pytest.raises(RuleTooLong, match="5 years"):
        rules.checked(template(), "FREQ=YEARLY;COUNT=7", "Asia/Shanghai", NOW)


def test_ahead_and_next_run_say_what_is_left() -> None:
    occurrences = rules.expand(template(), "FREQ=DAILY;COUNT=5", "Asia/Shanghai")
    since = occurrences[2].starts_at
    assert rules.ahead(occurrences, since) == occurrences[2:]
    done = {o.key("s") for o in occurrences[:3]}
    horizon = timedelta(days=1)
    assert rules.next_run(occurrences, done, "s", horizon) == occurrences[3].starts_at - horizon
    assert rules.next_run(occurrences, {o.key("s") for o in occurrences}, "s", horizon) is None
