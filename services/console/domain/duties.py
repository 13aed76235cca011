"""My duties: which claims are ahead, which are past, and the hours of this week."""

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

ACTIVE = ("accepted", "waitlisted", "checked_in")
COUNTED = ("accepted", "checked_in", "completed")


def split(claims: Iterable[Mapping[str, Any]], now: datetime) -> tuple[list[Any], list[Any]]:
    """(upcoming soonest first, past newest first); an active claim is upcoming until it ends."""
    upcoming, past = [], []
    for claim in claims:
        if claim["status"] in ACTIVE and claim["ends_at"] > now:
            upcoming.append(claim)
        else:
            past.append(claim)
    upcoming.sort(key=lambda claim: claim["starts_at"])
    past.sort(key=lambda claim: claim["starts_at"], reverse=True)
    return upcoming, past


def week_bounds(now: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """Monday 00:00 to the next Monday 00:00, in the person's zone."""
    local = now.astimezone(zone)
    monday = (local - timedelta(days=local.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    return monday, monday + timedelta(days=7)


def hours_this_week(claims: Iterable[Mapping[str, Any]], now: datetime, zone: ZoneInfo) -> float:
    """Hours of the week's shifts that count (accepted, checked in, completed), clipped to
    the week."""
    start, end = week_bounds(now, zone)
    total = 0.0
    for claim in claims:
        if claim["status"] not in COUNTED:
            continue
        begins, ends = max(claim["starts_at"], start), min(claim["ends_at"], end)
        if ends > begins:
            total += (ends - begins).total_seconds() / 3600
    return round(total, 1)
