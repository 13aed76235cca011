"""What the wall screen shows, from the demands and claims the services returned: people
needed in the next 3 hours, unfilled critical and urgent demands, escalations, people on site
now and the work done today. Pure: the same inputs always give the same wall."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

SOON = timedelta(hours=3)


@dataclass
class Wall:
    soon: list[dict[str, Any]] = field(default_factory=list)
    needed_soon: int = 0
    urgent: list[dict[str, Any]] = field(default_factory=list)
    escalated: list[dict[str, Any]] = field(default_factory=list)
    on_site: int = 0
    on_site_demands: list[dict[str, Any]] = field(default_factory=list)
    done_demands: int = 0
    done_people: int = 0


def _at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def build(
    demands: list[dict[str, Any]],
    claims: dict[str, list[dict[str, Any]]],
    now: datetime,
    zone: ZoneInfo,
) -> Wall:
    """`claims`: demand id -> its claims (for the demands under way or done today)."""
    wall = Wall()
    today = now.astimezone(zone).date()
    for demand in demands:
        demand["remaining"] = max(0, int(demand["slots"]) - int(demand["filled"]))
        starts = _at(demand["starts_at"])
        if demand["status"] == "open":
            if now - timedelta(minutes=1) <= starts <= now + SOON and demand["remaining"]:
                wall.soon.append(demand)
                wall.needed_soon += demand["remaining"]
            if demand["priority"] in ("critical", "urgent") and demand["remaining"]:
                wall.urgent.append(demand)
            if demand["level"] != "community":
                wall.escalated.append(demand)
        here = [c for c in claims.get(demand["id"], []) if c["status"] == "checked_in"]
        if here and demand["status"] in ("open", "filled", "in_progress"):
            people = sum(int(c["headcount"]) for c in here)
            wall.on_site += people
            wall.on_site_demands.append({**demand, "on_site": people})
        closed = demand.get("closed_at")
        if (
            demand["status"] == "completed"
            and closed
            and _at(closed).astimezone(zone).date() == today
        ):
            wall.done_demands += 1
            wall.done_people += sum(
                int(c["headcount"])
                for c in claims.get(demand["id"], [])
                if c["status"] == "completed"
            )
    wall.soon.sort(key=lambda d: d["starts_at"])
    wall.urgent.sort(key=lambda d: (d["priority"] != "critical", d["fill_by"]))
    wall.escalated.sort(key=lambda d: d["fill_by"])
    return wall
