"""A community's grid and its five-colour risk zones (issue 13), and the zone rule that
tightens who may serve in them (issue 14). Plain data and pure rules, no I/O.

Dispatch keeps every rating (its history is the map's history): the map as of a moment is,
for each grid, the last rating made at or before it. The zone rule says, per level, the
exposure a demand in such a grid counts as at least (units refuses the vulnerable by it).
"""

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.dispatch.domain.model import Community
from shared.auth import Principal, Role
from shared.events.catalogue import Exposure, ZoneLevel

_SEE_ALL = (Role.AUDITOR, Role.ADMIN)


class GridSet(BaseModel):
    """The grid in force for a community: the last upload, whole."""

    model_config = ConfigDict(frozen=True)

    community_id: str
    version: int
    uploaded_at: datetime
    uploaded_by: str
    grid_ids: tuple[str, ...]
    buildings: int
    digest: str
    geojson: dict[str, Any]


class Rating(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    grid_id: str
    level: ZoneLevel
    reason: str
    rated_by: str
    rated_at: datetime
    version: int  # the grid's ratings so far, this one included


class ZoneRule(BaseModel):
    model_config = ConfigDict(frozen=True)

    community_id: str
    version: int
    exposure_by_level: dict[ZoneLevel, Exposure]
    set_by: str
    set_at: datetime


Reason = Annotated[str, Field(min_length=1, max_length=500)]


class RateZone(BaseModel):
    """A rating as the secretary or the street gives it: the level and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    level: ZoneLevel
    reason: Reason

    @field_validator("reason")
    @classmethod
    def _reason_says_something(cls, reason: str) -> str:
        if not reason.strip():
            raise ValueError("reason must say why the grid has this level")
        return reason


class SetZoneRule(BaseModel):
    """Per level, the exposure a demand in a grid of that level counts as at least; a level
    left out tightens nothing. `{}` lifts the rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exposure_by_level: dict[ZoneLevel, Exposure]


def grid_key(community_id: str, grid_id: str) -> str:
    """A grid's id is its community's own: the pair names it everywhere (the event's
    subject, the stored level's key)."""
    return f"{community_id}/{grid_id}"


def map_as_of(ratings: Iterable[Rating], moment: datetime | None) -> dict[str, Rating]:
    """Each grid's rating in force at `moment` (None: now, the last one): the latest made at
    or before it, by time and then by the grid's version."""
    current: dict[str, Rating] = {}
    for rating in ratings:
        if moment is not None and rating.rated_at > moment:
            continue
        held = current.get(rating.grid_id)
        if held is None or (rating.rated_at, rating.version) > (held.rated_at, held.version):
            current[rating.grid_id] = rating
    return current


def may_read_map(principal: Principal, community: Community) -> bool:
    """Auditors and admins; the community's secretary; its street's and district's staff."""
    if principal.role in _SEE_ALL:
        return True
    return principal.role is Role.SECRETARY and principal.community in (
        community.id,
        community.street,
        community.district,
    )


def may_rate(principal: Principal, community: Community) -> bool:
    """The community's secretary or its street's staff (and an admin)."""
    return principal.is_admin or (
        principal.role is Role.SECRETARY and principal.community in (community.id, community.street)
    )


def may_set_rule(principal: Principal, community: Community) -> bool:
    """The street decides how far its communities' zones keep the vulnerable out (and an
    admin): a rule the community's own secretary could ease would protect nobody."""
    return principal.is_admin or principal.is_secretary_of(community.street)
