"""What dispatch's series routes accept and return."""

from datetime import datetime, timedelta
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.dispatch.domain.commands import CreateSeries, SeriesChanges
from services.dispatch.domain.series import Occurrence, SeriesStatus
from services.dispatch.handlers.series import SeriesView
from shared.events.catalogue import DemandKind, Exposure, Location, Priority


class SeriesIn(CreateSeries):
    """A demand template and its recurrence rule (RFC 5545 RRULE, e.g.
    `FREQ=DAILY;UNTIL=20261230T000000Z`): `starts_at`/`ends_at` (and `fill_by`) are the
    first occurrence's, read as local hours in `timezone` (the community's; the service's
    `WHISTLE_TIMEZONE`, Asia/Shanghai, if not given). COUNT or UNTIL is required, at most
    366 occurrences. Each occurrence is published as its own demand `horizon_days` before it
    starts (7 by default)."""


class SeriesPatch(SeriesChanges):
    """An edit of the rest of the series: the fields to change, at least one."""

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("name at least one of: " + ", ".join(SeriesChanges.model_fields))
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"{', '.join(nulls)} cannot be null: leave a field out to keep it")
        return self


class SeriesCancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, Field(min_length=1, max_length=1000, pattern=r"\S")]


class OccurrenceOut(BaseModel):
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    # Its demand once published; None: still ahead of the horizon.
    demand_id: str | None = None

    @classmethod
    def of(cls, occurrence: Occurrence, demand_id: str | None = None) -> Self:
        return cls(
            starts_at=occurrence.starts_at,
            ends_at=occurrence.ends_at,
            fill_by=occurrence.fill_by,
            demand_id=demand_id,
        )


class PublishedOut(BaseModel):
    """An occurrence the series took care of: its demand, or `missed` (it ended while
    nobody could publish it), or `superseded` (an edit cancelled its demand)."""

    starts_at: datetime
    status: str
    demand_id: str | None = None
    replaced: list[str] = []


class SeriesOut(BaseModel):
    id: str
    community_id: str
    status: SeriesStatus
    rrule: str
    timezone: str
    horizon_days: float
    kind: DemandKind
    title: str
    description: str | None
    location: Location
    skills: list[str]
    slots: int
    starts_at: datetime
    ends_at: datetime
    fill_by: datetime
    priority: Priority
    exposure: Exposure
    version: int
    created_at: datetime
    created_by: str
    cancel_reason: str | None = None
    next_occurrences: list[OccurrenceOut]
    published: list[PublishedOut]
    # The published demands' ids, in start order (those `published` names).
    demand_ids: list[str]

    @classmethod
    def of(cls, shown: SeriesView) -> Self:
        series, template = shown.series, shown.series.template
        published = [
            PublishedOut(
                starts_at=record["starts_at"],
                status=record["status"],
                demand_id=record.get("demand_id"),
                replaced=record.get("replaced", []),
            )
            for record in shown.records
        ]
        return cls(
            id=series.id,
            community_id=series.community_id,
            status=series.status,
            rrule=series.rrule,
            timezone=series.timezone,
            horizon_days=series.horizon_days,
            kind=template.kind,
            title=template.title,
            description=template.description,
            location=template.location,
            skills=list(template.skills),
            slots=template.slots,
            starts_at=template.starts_at,
            ends_at=template.ends_at,
            fill_by=template.starts_at - timedelta(seconds=template.lead_s),
            priority=template.priority,
            exposure=template.exposure,
            version=series.version,
            created_at=series.created_at,
            created_by=series.created_by,
            cancel_reason=series.cancel_reason,
            next_occurrences=[OccurrenceOut.of(o, d) for o, d in shown.upcoming],
            published=published,
            demand_ids=[p.demand_id for p in published if p.status == "published" and p.demand_id],
        )


class SeriesSummary(BaseModel):
    id: str
    community_id: str
    status: SeriesStatus
    title: str
    rrule: str
    starts_at: datetime
    ends_at: datetime


class SeriesList(BaseModel):
    items: list[SeriesSummary]


class PreviewOut(BaseModel):
    """The occurrences a series would have from now; nothing is stored."""

    count: int
    occurrences: list[OccurrenceOut]
