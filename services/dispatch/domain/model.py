"""Communities and demands as dispatch knows them: plain data, no I/O."""

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.events.catalogue import DemandKind, Level, Location, Priority

Status = Literal["open", "filled", "in_progress", "completed", "cancelled", "expired"]


class Community(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    street: str
    district: str


class Demand(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    community_id: str
    street: str
    district: str
    kind: DemandKind
    title: str
    description: str | None
    location: Location
    skills: tuple[str, ...]
    slots: int
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    priority: Priority
    status: Status
    filled: int
    level: Level
    created_at: datetime
    created_by: str
    version: int
