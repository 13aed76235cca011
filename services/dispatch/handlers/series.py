"""A series' commands and its publishing timer (see `domain/series.py`).

Creating a series publishes the occurrences within its horizon at once; then a stored timer
(`series.publish`, a new key each run) wakes when the next occurrence comes within the
horizon, publishes what is due, and schedules the next run. Each run happens inside the
transaction that marks its timer fired, and each occurrence is recorded by its name, so a run
cut short by a crash left nothing behind and the run after it publishes every day once.

An occurrence whose time passed while nobody ran the timer (dispatch down longer than the
horizon) is published late if it has not ended yet, and recorded `missed` if it has.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.dispatch.adapters import repository, series_store
from services.dispatch.domain import access, refusals
from services.dispatch.domain import series as rules
from services.dispatch.domain.commands import (
    CancelDemand,
    CancelSeries,
    CreateSeries,
    DemandChanges,
    LocationIn,
    PublishDemand,
    UpdateDemand,
    UpdateSeries,
)
from services.dispatch.domain.model import Community, Demand
from services.dispatch.domain.series import Occurrence, Series, Template
from services.dispatch.handlers import commands
from shared.auth import Principal, Role
from shared.clock import utcnow
from shared.events.catalogue import Location, SeriesCancelled, SeriesChanged, SeriesPublished
from shared.http.problems import not_found
from shared.ids import new_id
from shared.store import timers
from shared.store.mongo import Database, Document
from shared.store.unit_of_work import Tx

PUBLISH = "series.publish"
# Occurrences one run publishes at most (one transaction); the rest in the next run, at once.
BATCH = 20
# The fields of an occurrence's demand that `demand.updated` carries: an edit of only these
# updates the published demands in place; any other field makes them new demands.
IN_PLACE = ("title", "slots", "priority", "skills")
_SEE_ALL = (Role.AUDITOR, Role.ADMIN)


@dataclass(frozen=True)
class SeriesView:
    series: Series
    records: list[Document]
    # The next occurrences from now, each with its demand's id once published.
    upcoming: list[tuple[Occurrence, str | None]]


def _timer_key(series_id: str, generation: int) -> str:
    return f"series:{series_id}:{generation}"


def _template_of(command: CreateSeries) -> Template:
    lead = (command.starts_at - command.fill_by).total_seconds() if command.fill_by else 0.0
    return Template(
        kind=command.kind,
        title=command.title,
        description=command.description,
        location=Location(**command.location.model_dump()),
        skills=tuple(command.skills),
        slots=command.slots,
        starts_at=repository.stored(command.starts_at),
        ends_at=repository.stored(command.ends_at),
        lead_s=lead,
        priority=command.priority,
        exposure=command.exposure,
    )


def _demand_command(series: Series, occurrence: Occurrence) -> PublishDemand:
    template = series.template
    return PublishDemand(
        community_id=series.community_id,
        kind=template.kind,
        title=template.title,
        description=template.description,
        location=LocationIn(**template.location.model_dump()),
        skills=list(template.skills),
        slots=template.slots,
        starts_at=occurrence.starts_at,
        ends_at=occurrence.ends_at,
        fill_by=occurrence.fill_by,
        priority=template.priority,
        exposure=template.exposure,
    )


def _may_manage(actor: Principal, community_id: str, action: str) -> None:
    if not access.may_manage(actor, community_id):
        raise refusals.NotYours(f"only the secretary of community '{community_id}' {action}")


def may_post(actor: Principal, community_id: str) -> None:
    _may_manage(actor, community_id, "posts its series")


async def _community(tx: Tx, community_id: str) -> Community:
    community = await repository.get_community(tx.db, community_id, tx)
    if community is None:
        raise refusals.UnknownCommunity(community_id)
    return community


def preview(command: CreateSeries, default_zone: str, now: datetime) -> list[Occurrence]:
    """The occurrences a series would have from now (refused as creating it would be)."""
    zone = command.timezone or default_zone
    occurrences = rules.checked(_template_of(command), command.rrule, zone, now)
    return rules.ahead(occurrences, now)


async def create_series(
    tx: Tx, command: CreateSeries, actor: Principal, default_zone: str
) -> SeriesView:
    may_post(actor, command.community_id)
    community = await _community(tx, command.community_id)
    now = utcnow()
    template = _template_of(command)
    zone = command.timezone or default_zone
    rules.checked(template, command.rrule, zone, now)
    series = Series(
        id=new_id("ser"),
        community_id=community.id,
        street=community.street,
        district=community.district,
        template=template,
        rrule=command.rrule.strip(),
        timezone=zone,
        horizon_days=command.horizon_days,
        created_at=now,
        created_by=actor.sub,
        since=now,
    )
    series = await _publish_due(tx, series, community, now, announce=True)
    await series_store.insert_series(tx, series)
    return await _view(tx.db, series, tx=tx)


async def _publish_due(
    tx: Tx, series: Series, community: Community, now: datetime, *, announce: bool
) -> Series:
    """Publish the occurrences due by now, say so, and schedule the next run; the series as
    it is to be stored (its timer moved on)."""
    expanded = rules.expand(series.template, series.rrule, series.timezone)
    occurrences = rules.ahead(expanded, series.since)
    records = {r["_id"]: r for r in await series_store.occurrences(tx.db, series.id, tx)}
    done = {key for key, r in records.items() if r["status"] in ("published", "missed")}
    published: list[tuple[str, datetime]] = []
    cut_short = False
    for occurrence in occurrences:
        key = occurrence.key(series.id)
        if key in done:
            continue
        if occurrence.ends_at <= now:
            await series_store.record_occurrence(
                tx, key, series.id, occurrence.starts_at, "missed", None, records.get(key)
            )
            done.add(key)
            continue
        if occurrence.starts_at > now + series.horizon:
            break
        if len(published) == BATCH:
            cut_short = True
            break
        demand = await commands.create_demand(
            tx,
            community,
            _demand_command(series, occurrence),
            series.created_by,
            series_id=series.id,
        )
        await series_store.record_occurrence(
            tx, key, series.id, occurrence.starts_at, "published", demand.id, records.get(key)
        )
        done.add(key)
        published.append((demand.id, occurrence.starts_at))
    if published or announce:
        data = SeriesPublished(
            series_id=series.id,
            community_id=series.community_id,
            rrule=series.rrule,
            demand_ids=tuple(demand_id for demand_id, _ in published),
            starts=tuple(start for _, start in published),
        )
        tx.emit(data, subject=series.id)
    return await _reschedule(tx, series, occurrences, done, now, at_once=cut_short)


async def _reschedule(
    tx: Tx,
    series: Series,
    occurrences: list[Occurrence],
    done: set[str],
    now: datetime,
    *,
    at_once: bool,
) -> Series:
    if series.timer is not None:
        await timers.cancel(tx, series.timer)
    due = now if at_once else rules.next_run(occurrences, done, series.id, series.horizon)
    if due is None:
        return series.model_copy(update={"timer": None, "status": "finished"})
    generation = series.generation + 1
    key = _timer_key(series.id, generation)
    await timers.schedule(tx, key, PUBLISH, max(due, now), {"series_id": series.id})
    return series.model_copy(update={"timer": key, "generation": generation, "status": "active"})


async def on_timer(tx: Tx, timer: Document) -> None:
    """The series' next occurrences came within its horizon: publish them."""
    series = await series_store.get_series(tx.db, timer["payload"]["series_id"], tx)
    if series is None or series.status == "cancelled" or series.timer != timer["_id"]:
        return  # cancelled, or an edit moved the series to another timer
    community = await _community(tx, series.community_id)
    changed = await _publish_due(tx, series, community, utcnow(), announce=False)
    await series_store.save_series(tx, changed)


async def _series_to_change(tx: Tx, series_id: str, actor: Principal, action: str) -> Series:
    series = await series_store.get_series(tx.db, series_id, tx)
    if series is None:
        raise not_found("series", series_id)
    _may_manage(actor, series.community_id, action)
    if series.status == "cancelled":
        raise refusals.SeriesClosed(f"series '{series_id}' was cancelled: it changes no more")
    return series


def _future(demand: Demand | None, now: datetime) -> bool:
    """Not yet started: open or filled, its start ahead."""
    return demand is not None and demand.status in ("open", "filled") and demand.starts_at > now


async def update_series(
    tx: Tx, command: UpdateSeries, actor: Principal, default_step_s: float
) -> SeriesView:
    """Edit the rest of the series: the future occurrences already published are updated in
    place (`demand.updated`) or, when the rule or times no longer have them or a field no
    demand event carries changed, cancelled (and published again if the rule still has
    them); those already started are left as they are."""
    series = await _series_to_change(tx, command.series_id, actor, "edits its series")
    changes = command.changes.model_dump(exclude_unset=True, exclude_none=True)
    template_update: dict[str, Any] = {
        k: v for k, v in changes.items() if k in Template.model_fields and k != "location"
    }
    if "skills" in template_update:
        template_update["skills"] = tuple(template_update["skills"])
    for moment in ("starts_at", "ends_at"):
        if moment in template_update:
            template_update[moment] = repository.stored(template_update[moment])
    if command.changes.location is not None:
        template_update["location"] = Location(**command.changes.location.model_dump())
    template = series.template.model_copy(update=template_update)
    if template.ends_at <= template.starts_at:
        raise refusals.SeriesTimes()
    rrule = (command.changes.rrule or series.rrule).strip()
    horizon_days = command.changes.horizon_days or series.horizon_days
    changed = [
        name
        for name in Template.model_fields
        if getattr(template, name) != getattr(series.template, name)
    ]
    changed += [
        name
        for name, old, new in (
            ("rrule", series.rrule, rrule),
            ("horizon_days", series.horizon_days, horizon_days),
        )
        if old != new
    ]
    if not changed:
        return await _view(tx.db, series, tx=tx)
    now = utcnow()
    by_key = {o.key(series.id): o for o in rules.checked(template, rrule, series.timezone, now)}
    reshaped = any(name not in (*IN_PLACE, "horizon_days") for name in changed)
    updated: list[str] = []
    cancelled: list[str] = []
    for record in await series_store.occurrences(tx.db, series.id, tx):
        if record["status"] != "published" or not record.get("demand_id"):
            continue
        demand = await repository.get_demand(tx.db, record["demand_id"], tx)
        if demand is None or not _future(demand, now):
            continue
        occurrence = by_key.get(record["_id"])
        if occurrence is not None and not reshaped:
            edit = DemandChanges(
                title=template.title,
                slots=template.slots,
                priority=template.priority,
                skills=list(template.skills),
            )
            saved = await commands.update_demand(
                tx, UpdateDemand(demand_id=demand.id, changes=edit), actor, default_step_s
            )
            if saved.version != demand.version:
                updated.append(demand.id)
            continue
        reason = f"series {series.id} changed ({', '.join(changed)})"
        await commands.cancel_demand(tx, CancelDemand(demand_id=demand.id, reason=reason), actor)
        await series_store.mark_occurrence(tx, record["_id"], "superseded")
        cancelled.append(demand.id)
    edited = series.model_copy(
        update={"template": template, "rrule": rrule, "horizon_days": horizon_days}
    )
    if "rrule" in changed or "starts_at" in changed:
        # The new rule takes effect from now: what it would have had before is not its own.
        edited = edited.model_copy(update={"since": now})
    data = SeriesChanged(
        series_id=series.id,
        community_id=series.community_id,
        version=series.version + 1,
        changed=tuple(changed),
        rrule=rrule,
        updated=tuple(updated),
        cancelled=tuple(cancelled),
    )
    tx.emit(data, subject=series.id)
    community = await _community(tx, series.community_id)
    edited = await _publish_due(tx, edited, community, now, announce=False)
    return await _view(tx.db, await series_store.save_series(tx, edited), tx=tx)


async def cancel_series(tx: Tx, command: CancelSeries, actor: Principal) -> SeriesView:
    """Cancel the rest: every published occurrence not yet started, and the timer."""
    series = await _series_to_change(tx, command.series_id, actor, "cancels its series")
    now = utcnow()
    cancelled: list[str] = []
    for record in await series_store.occurrences(tx.db, series.id, tx):
        if record["status"] != "published" or not record.get("demand_id"):
            continue
        demand = await repository.get_demand(tx.db, record["demand_id"], tx)
        if demand is None or not _future(demand, now):
            continue
        await commands.cancel_demand(
            tx, CancelDemand(demand_id=demand.id, reason=command.reason), actor
        )
        cancelled.append(demand.id)
    if series.timer is not None:
        await timers.cancel(tx, series.timer)
    data = SeriesCancelled(
        series_id=series.id,
        community_id=series.community_id,
        reason=command.reason,
        cancelled=tuple(cancelled),
    )
    tx.emit(data, subject=series.id)
    closed = series.model_copy(
        update={"status": "cancelled", "timer": None, "cancel_reason": command.reason}
    )
    return await _view(tx.db, await series_store.save_series(tx, closed), tx=tx)


def may_read(principal: Principal, series: Series) -> bool:
    return principal.role in _SEE_ALL or access.may_manage(principal, series.community_id)


async def view(
    db: Database, principal: Principal, series_id: str, upcoming: int = 10
) -> SeriesView:
    series = await series_store.get_series(db, series_id)
    if series is None or not may_read(principal, series):
        raise not_found("series", series_id)
    return await _view(db, series, upcoming)


async def _view(
    db: Database, series: Series, upcoming: int = 10, tx: Tx | None = None
) -> SeriesView:
    records = await series_store.occurrences(db, series.id, tx)
    demand_of = {r["_id"]: r.get("demand_id") for r in records if r["status"] == "published"}
    now = utcnow()
    next_ones: list[tuple[Occurrence, str | None]] = []
    if series.status != "cancelled":
        occurrences = rules.expand(series.template, series.rrule, series.timezone)
        for occurrence in rules.ahead(occurrences, series.since):
            if occurrence.ends_at <= now:
                continue
            if len(next_ones) == upcoming:
                break
            next_ones.append((occurrence, demand_of.get(occurrence.key(series.id))))
    return SeriesView(series, records, next_ones)


async def list_for(db: Database, principal: Principal, community_id: str | None) -> list[Series]:
    """A secretary's community's series (newest first); everyone's for auditors and admins."""
    if principal.role not in _SEE_ALL:
        community_id = principal.community
        if community_id is None:
            return []
    return await series_store.list_series(db, community_id)
