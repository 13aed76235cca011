"""Sign-in throttling: after `limit` failures for one login or one address within a window,
sign-in answers 429 until the oldest of those failures leaves the window."""

from collections.abc import Sequence
from datetime import datetime, timedelta


def locked_until(
    failures: Sequence[datetime], *, now: datetime, limit: int, window: timedelta
) -> datetime | None:
    """When the lock ends, or None when sign-in is open. `failures` are any order."""
    recent = sorted(at for at in failures if at > now - window)
    if len(recent) < limit:
        return None
    # The lock lasts until enough failures age out to leave fewer than `limit`.
    return recent[-limit] + window
