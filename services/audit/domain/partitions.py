"""Which partition of the log an event goes to: a key that keeps a demand's whole story together.

The log is split into partitions, each with its own gap-free `seq` and hash chain, so appends
to different partitions never wait for one another. `WHISTLE_AUDIT_PARTITION` says by what:

- `district` (the default): the district of the event's community.
- `community`: the event's community.
- `none`: one partition, `default` (the single chain of earlier versions).

Where each event type goes under `district`:

- `community.registered`, `demand.published` carry `district`: that district (and the
  community is routed to it).
- every other `demand.*`, `claim.*`, `volunteer.*`, `community.updated` carry `community_id`:
  the district the community was first seen in.
- `notification.*`: as above when it names a community; none: `default`.
- `unit.*` (a unit serves a list of communities, perhaps in several districts): `default`.
- an event of a community audit has not seen yet (no district learnt): `default`. That is
  also where an event goes that races its community's registration (another replica still
  appending it): audit does not hold events back for a route, so in that race a demand's
  story is kept whole in `default` rather than split.

Routes are fixed at first sight and never move: a community stays in the partition it was
first seen in (a later `community.updated` naming another district changes nothing), and a
demand stays in the partition its first event went to, whatever its later events carry.
So a demand's events, its claims' and its notifications' are all in one partition, and
its timeline, its state as of a time and the report read them in that partition's order.

A log written before partitions existed is partition `default`, and its demands stay there.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.audit.domain.wire import community_id_of, demand_id_of, district_of

DEFAULT = "default"
MAX_NAME = 200


class PartitionBy(StrEnum):
    DISTRICT = "district"
    COMMUNITY = "community"
    NONE = "none"


def demand_route(demand_id: str) -> str:
    return f"demand:{demand_id}"


def community_route(community_id: str) -> str:
    return f"community:{community_id}"


@dataclass(frozen=True)
class Routed:
    """An event's partition and the routes its append fixes (route key -> partition)."""

    partition: str
    fixes: Mapping[str, str] = field(default_factory=dict)


def route_keys(event: Mapping[str, Any]) -> list[str]:
    """The routes to look up before the event can be placed."""
    keys = []
    if (demand := demand_id_of(event)) is not None:
        keys.append(demand_route(demand))
    if (community := community_id_of(event)) is not None:
        keys.append(community_route(community))
    return keys


def _usable(name: str | None) -> str | None:
    return name if name is not None and len(name) <= MAX_NAME else None


def place(event: Mapping[str, Any], by: PartitionBy, known: Mapping[str, str]) -> Routed:
    """The partition for `event`, given the routes already fixed (`known`)."""
    demand = demand_id_of(event)
    community = community_id_of(event)
    if demand is not None and (fixed := known.get(demand_route(demand))) is not None:
        partition = fixed
    elif by is PartitionBy.NONE:
        partition = DEFAULT
    elif by is PartitionBy.COMMUNITY:
        partition = _usable(community) or DEFAULT
    elif community is not None and (fixed := known.get(community_route(community))):
        partition = fixed
    else:
        partition = _usable(district_of(event)) or DEFAULT
    fixes: dict[str, str] = {}
    if demand is not None:
        fixes[demand_route(demand)] = partition
    district = _usable(district_of(event))
    if by is PartitionBy.DISTRICT and community is not None and district is not None:
        fixes[community_route(community)] = district
    return Routed(partition, {k: v for k, v in fixes.items() if k not in known})
