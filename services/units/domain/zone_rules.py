"""Who may take risky work, tightened by the risk zones (issues 13 and 14). Pure rules.

A community's zone rule says, per zone level, the exposure a demand in a grid of that level
counts as at least: with `{"red": "high", "orange": "high"}` a `low` demand in a 红 grid is
kept from the vulnerable as a `high` one is. The rule only tightens: a demand's own exposure
is never lowered by its zone.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from shared.events.catalogue import Exposure, ZoneLevel

_RANK: dict[Exposure, int] = {"low": 0, "medium": 1, "high": 2}
# The rule's name, as the refusal says it (which rule, never why it applied to a person).
ZONE_EXPOSURE_RULE = "zone-exposure"


@dataclass(frozen=True)
class Exposed:
    """The exposure a claim is judged by, and the zone level that raised it (if one did)."""

    exposure: Exposure
    raised_by: ZoneLevel | None = None


def effective_exposure(
    own: Exposure, level: ZoneLevel | None, rule: Mapping[ZoneLevel, Exposure]
) -> Exposed:
    if level is None or level not in rule:
        return Exposed(own)
    floor = rule[level]
    if _RANK[floor] > _RANK[own]:
        return Exposed(floor, level)
    return Exposed(own)
