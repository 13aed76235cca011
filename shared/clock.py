"""One place that says what "now" is, so tests and timers agree on UTC."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current instant, timezone-aware, truncated to milliseconds (MongoDB's precision)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; a naive one is taken as UTC (MongoDB returns naive)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
