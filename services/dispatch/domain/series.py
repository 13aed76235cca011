"""A series: a demand template with a recurrence rule, and its occurrences (pure: no I/O).

The rule is an RFC 5545 RRULE (`FREQ=DAILY;UNTIL=20261230T000000Z`), read by python-dateutil.
The template's `starts_at` is the rule's DTSTART, read as wall-clock time in the series' time
zone (the community's; the service's `WHISTLE_TIMEZONE`, Asia/Shanghai, unless the series
names one): every occurrence starts at the same local hour and lasts as long as the template
(`ends_at - starts_at`), whatever the zone's offset that day, and its `fill_by` lies as far
before its start as the template's. An UNTIL given in UTC (`...Z`) is that instant; one
without a zone (`UNTIL=20261230T235959`) is local time in the series' zone.

An occurrence is named by its series and its start (`ser_x:20261202T000000Z`): the store
keeps one record per name, so publishing again (a timer run again after a crash) never makes
a second demand for a day, and a day not yet recorded is still to be published.

A series is bounded: its rule needs COUNT or UNTIL and at most `MAX_OCCURRENCES` occurrences,
all within `MAX_AHEAD` of now (the demand's own bound). BYYEARDAY, BYWEEKNO, BYEASTER and
BYSETPOS are not taken, nor a BYMONTH/BYMONTHDAY naming no real day: a rule that selects no
day at all keeps dateutil searching to the year 9999 (seconds of CPU per request).
"""

import itertools
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrule, rrulestr
from pydantic import BaseModel, ConfigDict

from services.dispatch.domain.commands import MAX_AHEAD
from services.dispatch.domain.refusals import (
    InvalidRrule,
    NoOccurrences,
    RuleTooLong,
    UnknownTimeZone,
)
from shared.events.catalogue import DemandKind, Exposure, Location, Priority

MAX_OCCURRENCES = 366
# An occurrence starting this little before its series was created (or edited) still counts.
PAST_LEEWAY = timedelta(minutes=1)
MAX_RULE_LENGTH = 500
# Parts of an iCalendar rule set a series does not take: the series' own fields say them.
_NOT_TAKEN = ("DTSTART", "RDATE", "EXDATE", "EXRULE")
# Rule parts a shift pattern does not need, and which can select no day at all: dateutil would
# then search to the year 9999 (seconds of CPU) before saying the rule is empty.
_NOT_NEEDED = ("BYYEARDAY", "BYWEEKNO", "BYEASTER", "BYSETPOS")
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _some_day(parts: dict[str, str]) -> bool:
    """Whether BYMONTH and BYMONTHDAY (when both given) name a day that exists."""
    if "BYMONTH" not in parts or "BYMONTHDAY" not in parts:
        return True
    try:
        months = [int(m) for m in parts["BYMONTH"].split(",")]
        days = [int(d) for d in parts["BYMONTHDAY"].split(",")]
    except ValueError:
        return True  # dateutil says what is wrong with it
    return any(1 <= m <= 12 and 0 < abs(d) <= _MONTH_DAYS[m - 1] for m in months for d in days)


SeriesStatus = Literal["active", "finished", "cancelled"]
OccurrenceStatus = Literal["published", "superseded", "missed"]


class Template(BaseModel):
    """What every occurrence's demand says; its times are the first occurrence's."""

    model_config = ConfigDict(frozen=True)

    kind: DemandKind
    title: str
    description: str | None = None
    location: Location = Location()
    skills: tuple[str, ...] = ()
    slots: int
    starts_at: datetime
    ends_at: datetime
    # How long before each occurrence's start the street hears of it unfilled.
    lead_s: float = 0.0
    priority: Priority = "routine"
    exposure: Exposure = "low"


class Series(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    street: str
    district: str
    template: Template
    rrule: str
    timezone: str
    horizon_days: float
    status: SeriesStatus = "active"
    version: int = 1
    created_at: datetime
    created_by: str
    # The pending publishing timer's key (a new key each time: a fired timer stays fired).
    timer: str | None = None
    generation: int = 0
    cancel_reason: str | None = None
    # Occurrences starting before this (the creation, or the last edit of the rule) are not
    # the series' to publish: they lie before the rule as it now is took effect.
    since: datetime

    @property
    def horizon(self) -> timedelta:
        return timedelta(days=self.horizon_days)


@dataclass(frozen=True)
class Occurrence:
    starts_at: datetime  # UTC
    ends_at: datetime
    fill_by: datetime

    def key(self, series_id: str) -> str:
        return occurrence_key(series_id, self.starts_at)


def occurrence_key(series_id: str, starts_at: datetime) -> str:
    return f"{series_id}:{starts_at.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def zone_of(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UnknownTimeZone(name) from None


def _byday(parts: dict[str, str]) -> list[str]:
    days = [day.strip() for day in parts.get("BYDAY", "").split(",") if day.strip()]
    return [day for day in days if day[:-2].lstrip("+-").isdigit() or len(day) == 2]


def _read_rule(text: str, dtstart: datetime) -> rrule:
    """The rule as dateutil reads it from DTSTART `dtstart` (aware, in the series' zone)."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[len("RRULE:") :]
    if not body or len(body) > MAX_RULE_LENGTH or any(c in body for c in "\r\n"):
        raise InvalidRrule(f"give one RRULE line of at most {MAX_RULE_LENGTH} characters")
    upper = body.upper()
    if any(part in upper for part in _NOT_TAKEN):
        raise InvalidRrule("DTSTART, RDATE and EXDATE are not taken: starts_at is the start")
    parts = dict(part.partition("=")[::2] for part in upper.split(";"))
    if "FREQ" not in parts:
        raise InvalidRrule("FREQ is required (DAILY, WEEKLY, MONTHLY, ...)")
    if taken := [part for part in _NOT_NEEDED if part in parts]:
        raise InvalidRrule(f"{', '.join(taken)} not taken (FREQ, INTERVAL, BYDAY, BYMONTH, ...)")
    if not _some_day(parts):
        raise InvalidRrule("BYMONTH and BYMONTHDAY name no day that exists")
    if any(len(day) > 2 and abs(int(day[:-2] or 0)) > 5 for day in _byday(parts)):
        raise InvalidRrule("a BYDAY ordinal is at most 5 (e.g. 1MO, -1FR)")
    if "COUNT" in parts and "UNTIL" in parts:
        raise InvalidRrule("COUNT and UNTIL together are not allowed (RFC 5545)")
    if not parts.get("INTERVAL", "1").isdigit() or int(parts.get("INTERVAL", "1")) < 1:
        raise InvalidRrule("INTERVAL must be a whole number, 1 or more")
    if "COUNT" not in parts and "UNTIL" not in parts:
        raise RuleTooLong(
            "the recurrence rule has no end: give COUNT or UNTIL"
            f" (at most {MAX_OCCURRENCES} occurrences)"
        )
    interval = int(parts.get("INTERVAL", "1"))
    weekdays = {day[-2:] for day in _byday(parts)}
    # Every 7n days is always the start's weekday: any other BYDAY selects nothing.
    start_day = _WEEKDAYS[dtstart.weekday()]
    if parts["FREQ"] == "DAILY" and interval % 7 == 0 and weekdays and start_day not in weekdays:
        raise InvalidRrule("every 7th day falls on the start's weekday, not on BYDAY's")
    try:
        return _parse(body, dtstart)
    except (TypeError, OverflowError) as error:
        raise InvalidRrule(str(error)) from None
    except ValueError as error:
        if "UNTIL" not in str(error):
            raise InvalidRrule(str(error)) from None
    # A floating UNTIL (no `Z`): local time, as the floating DTSTART it then goes with.
    try:
        floating = _parse(body, dtstart.replace(tzinfo=None))
    except (ValueError, TypeError, OverflowError) as error:
        raise InvalidRrule(str(error)) from None
    # dateutil keeps the parsed UNTIL only on the rule itself.
    until: datetime | None = getattr(floating, "_until", None)
    assert until is not None
    return floating.replace(dtstart=dtstart, until=until.replace(tzinfo=dtstart.tzinfo))


def _parse(body: str, dtstart: datetime) -> rrule:
    rule = rrulestr(body, dtstart=dtstart, forceset=False, compatible=False)
    if not isinstance(rule, rrule):
        raise InvalidRrule("give one RRULE")
    return rule


def expand(template: Template, rule_text: str, zone_name: str) -> list[Occurrence]:
    """Every occurrence of the rule (refused: an unreadable or unbounded rule)."""
    zone = zone_of(zone_name)
    local_start = template.starts_at.astimezone(zone)
    length = template.ends_at - template.starts_at
    lead = timedelta(seconds=template.lead_s)
    rule = _read_rule(rule_text, local_start)
    # dateutil looks for occurrences up to year 9999: a rule no day matches (the 30th of
    # February, every hour) would keep it busy for many seconds. Nothing past the bound is
    # a series' anyway, so the search stops there.
    bound = local_start + MAX_AHEAD + timedelta(days=1)
    until: datetime | None = getattr(rule, "_until", None)
    count: int | None = getattr(rule, "_count", None)
    if until is not None and until > bound:
        raise RuleTooLong("the recurrence rule runs past 5 years: end it sooner")
    try:
        with warnings.catch_warnings():
            # COUNT with an UNTIL of our own: both bounds hold (dateutil only warns of it).
            warnings.simplefilter("ignore", DeprecationWarning)
            bounded = rule.replace(until=bound) if until is None else rule
        starts = list(itertools.islice(iter(bounded), MAX_OCCURRENCES + 1))
    except (ValueError, OverflowError) as error:
        raise InvalidRrule(str(error)) from None
    if count is not None and len(starts) < min(count, MAX_OCCURRENCES + 1):
        # COUNT is always reached unless the search stopped at the bound first.
        raise RuleTooLong(
            f"the recurrence rule does not reach COUNT={count} within 5 years: end it sooner"
        )
    if len(starts) > MAX_OCCURRENCES:
        raise RuleTooLong(
            f"the recurrence rule gives more than {MAX_OCCURRENCES} occurrences:"
            " end it sooner (COUNT or UNTIL)"
        )
    occurrences = []
    for start in starts:
        # Wall-clock arithmetic in the zone: the same local hours whatever the offset.
        end = start + length
        occurrences.append(
            Occurrence(start.astimezone(UTC), end.astimezone(UTC), (start - lead).astimezone(UTC))
        )
    return occurrences


def ahead(occurrences: list[Occurrence], since: datetime) -> list[Occurrence]:
    """The occurrences a series publishes: those starting at or after `since`."""
    return [o for o in occurrences if o.starts_at >= since - PAST_LEEWAY]


def checked(template: Template, rule_text: str, zone_name: str, now: datetime) -> list[Occurrence]:
    """The occurrences of a rule a series may have: bounded, some starting after `now`, none
    later than a demand may be."""
    occurrences = expand(template, rule_text, zone_name)
    if not ahead(occurrences, now):
        raise NoOccurrences()
    if occurrences[-1].ends_at > now + MAX_AHEAD:
        raise RuleTooLong("the recurrence rule runs past 5 years from now: end it sooner")
    return occurrences


def next_run(
    occurrences: list[Occurrence], done: set[str], series_id: str, horizon: timedelta
) -> datetime | None:
    """When the next occurrence not yet done falls within the horizon (None: all done)."""
    for occurrence in occurrences:
        if occurrence.key(series_id) not in done:
            return occurrence.starts_at - horizon
    return None
