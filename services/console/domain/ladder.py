"""The escalation ladder of one demand (community -> street -> district) and how long each
step took, from what dispatch says of the demand: when it was posted, its `fill_by` (when
dispatch's timer takes it to the street), its level now and when it last rose.

Dispatch keeps only the last rise (`escalated_at`); for a demand at the district, the moment it
reached the street is its `fill_by`, when the timer fired (`approximate`: a busy broker may have
delivered it a little later)."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

LEVELS = ("community", "street", "district")


@dataclass(frozen=True)
class Rung:
    level: str
    reached_at: datetime | None  # None: not reached
    took: timedelta | None  # how long it stayed at this level (still there: so far)
    current: bool
    approximate: bool = False


def _instant(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def ladder(demand: dict[str, Any], now: datetime) -> list[Rung]:
    level = str(demand.get("level", "community"))
    top = LEVELS.index(level) if level in LEVELS else 0
    created = _instant(demand.get("created_at"))
    escalated = _instant(demand.get("escalated_at"))
    fill_by = _instant(demand.get("fill_by"))
    reached: list[tuple[datetime | None, bool]] = [(created, False)]
    if top >= 1:
        reached.append((escalated, False) if top == 1 else (fill_by, True))
    if top >= 2:
        reached.append((escalated, False))
    # A closed demand stops climbing: its last step ended when it closed.
    end = _instant(demand.get("closed_at")) or now
    rungs: list[Rung] = []
    for index, name in enumerate(LEVELS):
        if index > top:
            rungs.append(Rung(name, None, None, False))
            continue
        at, approximate = reached[index]
        after = reached[index + 1][0] if index < top else end
        took = after - at if at is not None and after is not None else None
        rungs.append(Rung(name, at, took, index == top, approximate))
    return rungs
