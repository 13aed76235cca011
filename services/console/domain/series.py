"""Repeating a demand over several days: the list of shifts, previewed before any is posted."""

from dataclasses import dataclass
from datetime import datetime, timedelta

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
