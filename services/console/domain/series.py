"""Repeating a demand: over several days (the list of shifts, previewed before any is
posted), or as a series dispatch publishes (a pattern in words turned into an RRULE)."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

MAX_DAYS = 31


@dataclass(frozen=True)
class Shift:
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime | None


def repeat_daily(
    starts_at: datetime, ends_at: datetime, fill_by: datetime | None, days: int
) -> list[Shift]:
    """`days` shifts, each a whole day after the one before (24 h: the console's default zone,
    Asia/Shanghai, has no daylight saving, so that is the same local hours each day)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS}")
    return [
        Shift(
            starts_at + timedelta(days=day),
            ends_at + timedelta(days=day),
            fill_by + timedelta(days=day) if fill_by else None,
        )
        for day in range(days)
    ]


# --- a real series (dispatch's `/v1/series`): the pattern in words, turned into an RRULE ---

Pattern = Literal["daily", "weekdays", "days"]
PATTERNS: tuple[Pattern, ...] = ("daily", "weekdays", "days")
# RFC 5545's two-letter weekdays, Monday first (Python's weekday() order).
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
WORKING_DAYS = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class Rule:
    """A series' rule as the secretary chose it: a pattern, its weekdays, its last day."""

    pattern: Pattern
    until: date
    weekdays: tuple[int, ...] = ()

    @property
    def days(self) -> tuple[int, ...]:
        """The weekdays it runs on (all seven for `daily`)."""
        if self.pattern == "daily":
            return tuple(range(7))
        return WORKING_DAYS if self.pattern == "weekdays" else self.weekdays

    def rrule(self) -> str:
        """The RRULE dispatch reads: UNTIL the end of the last day, in local time (no `Z`:
        dispatch reads a floating UNTIL in the series' zone)."""
        until = f"UNTIL={self.until:%Y%m%d}T235959"
        if self.pattern == "daily":
            return f"FREQ=DAILY;{until}"
        return f"FREQ=WEEKLY;BYDAY={','.join(WEEKDAYS[d] for d in self.days)};{until}"


class RuleUnreadable(ValueError):
    pass


def rule_of(pattern: str, weekdays: list[str], until: str) -> Rule:
    """The form's choices as a rule (refused: no pattern, no weekday chosen, no last day)."""
    if pattern not in PATTERNS:
        raise RuleUnreadable("pattern")
    try:
        last = date.fromisoformat(until)
    except ValueError:
        raise RuleUnreadable("until") from None
    days = tuple(sorted({int(d) for d in weekdays if d.isdigit() and int(d) < 7}))
    if pattern == "days" and not days:
        raise RuleUnreadable("weekdays")
    return Rule(pattern, last, days if pattern == "days" else ())


def read_rule(text: str) -> Rule | None:
    """A rule this console wrote, read back for its words (None: another rule, shown as is)."""
    parts = dict(
        part.partition("=")[::2] for part in text.upper().removeprefix("RRULE:").split(";")
    )
    until = parts.get("UNTIL", "")
    if len(until) < 8 or not until[:8].isdigit() or set(parts) - {"FREQ", "UNTIL", "BYDAY"}:
        return None
    try:
        last = date(int(until[:4]), int(until[4:6]), int(until[6:8]))
    except ValueError:
        return None
    if parts.get("FREQ") == "DAILY" and "BYDAY" not in parts:
        return Rule("daily", last)
    if parts.get("FREQ") != "WEEKLY" or "BYDAY" not in parts:
        return None
    names = parts["BYDAY"].split(",")
    if any(name not in WEEKDAYS for name in names):
        return None
    days = tuple(sorted(WEEKDAYS.index(name) for name in names))
    return Rule("weekdays", last) if days == WORKING_DAYS else Rule("days", last, days)
