"""What the log reads off a stored wire event (a CloudEvent as its producer sent it): pure.

Both the log's records (their filter fields, their partition) and the replay of a demand
read these, so they live here rather than in either.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.clock import as_utc


def event_time(event: Mapping[str, Any]) -> datetime:
    return as_utc(datetime.fromisoformat(str(event["time"])))


def data_of(event: Mapping[str, Any]) -> Mapping[str, Any]:
    data = event.get("data")
    return data if isinstance(data, Mapping) else {}


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def demand_id_of(event: Mapping[str, Any]) -> str | None:
    return _text(data_of(event).get("demand_id"))


def community_id_of(event: Mapping[str, Any]) -> str | None:
    return _text(data_of(event).get("community_id"))


def district_of(event: Mapping[str, Any]) -> str | None:
    return _text(data_of(event).get("district"))
