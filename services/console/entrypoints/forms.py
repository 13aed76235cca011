"""Reading form fields: text as the person typed it, lists split on commas."""

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData


def text(form: FormData, name: str, limit: int = 4000) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def items(form: FormData, name: str) -> list[str]:
    """`a, b；c` -> ["a", "b", "c"] (Chinese commas too)."""
    return [part.strip() for part in re.split(r"[,，;；\n]", text(form, name)) if part.strip()]


def local_instant(value: str, zone: ZoneInfo) -> str | None:
    """A `datetime-local` field (wall clock, no offset) as an RFC 3339 instant in `zone`;
    anything else goes to the service as typed, to be refused there with its reason."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.isoformat()


def local_field(instant: datetime | None, zone: ZoneInfo) -> str:
    """An instant as a `datetime-local` field's value in `zone`."""
    if instant is None:
        return ""
    return instant.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
