"""Audit's HTTP side for auditors: the log, a demand's timeline and state, the report, verify.

Auditors and admins read everything; a secretary reads their own community only (every
question is narrowed to it, and asking for another community is 403); anyone else is 403.
"""

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from services.audit.adapters.log_store import LogQuery
from services.audit.config import AuditSettings
from services.audit.domain import access, merkle, responsiveness
from services.audit.domain.partitions import MAX_NAME
from services.audit.domain.refusals import BadQuestion, OtherCommunity
from services.audit.domain.responsiveness import Grouping
from services.audit.entrypoints import schemas
from services.audit.handlers import queries
from shared.auth import Principal, Role, require_roles
from shared.clock import as_utc, utcnow
from shared.http.dependencies import Runtime
from shared.http.negotiation import MAX_INT64, Rfc3339, negotiate
from shared.http.problems import not_found
from shared.runtime import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["audit"])

Reader = Annotated[Principal, require_roles(Role.AUDITOR, Role.SECRETARY)]
Auditor = Annotated[Principal, require_roles(Role.AUDITOR)]
NDJSON = "application/x-ndjson"
DemandId = Annotated[str, Path(min_length=1, max_length=200)]
PartitionName = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_NAME,
        description="one partition of the log (see `GET /v1/partitions`); default: all",
    ),
]
DEFAULT_REPORT_WINDOW = timedelta(days=30)
MAX_REPORT_WINDOW = timedelta(days=400)


def community_scope(principal: Principal, asked: str | None) -> str | None:
    if not access.may_ask_about(principal, asked):
        raise OtherCommunity("a secretary reads only their own community's events")
    return access.narrowed_to(principal, asked)


def check_community(principal: Principal, community_id: str | None) -> None:
    if not access.may_read_community(principal, community_id):
        raise OtherCommunity("this demand belongs to another community")


def _utc(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


@router.get(
    "/events",
    response_model=schemas.EventsPage,
    responses={200: {"content": {NDJSON: {"schema": schemas.Record.model_json_schema()}}}},
)
async def list_events(
    request: Request,
    principal: Reader,
    runtime: Runtime,
    partition: PartitionName = None,
    after: Annotated[
        int,
        Query(
            ge=0,
            le=MAX_INT64,
            description="a seq of the partition named by `partition` (needs `partition`)",
        ),
    ] = 0,
    cursor: Annotated[
        str | None,
        Query(
            min_length=3,
            max_length=MAX_NAME + 20,
            description="`next_cursor` of the previous page (across partitions)",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    community_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    since: Rfc3339 | None = None,
    until: Rfc3339 | None = None,
) -> JSONResponse | StreamingResponse:
    """The log: one partition in seq order (`partition`, paged with `after`), or every
    partition in (partition, seq) order (paged with `cursor`); `Accept:
    application/x-ndjson` streams every match instead."""
    if since and until and since >= until:
        raise BadQuestion("'since' must be before 'until'")
    if after and partition is None:
        raise BadQuestion(
            "'after' is a seq within one partition: name it with 'partition', or page "
            "across partitions with 'cursor'"
        )
    if cursor is not None and partition is not None:
        raise BadQuestion("'cursor' pages across partitions; with 'partition' use 'after'")
    start = queries.parse_cursor(cursor) if cursor is not None else None
    if cursor is not None and start is None:
        raise BadQuestion("'cursor' is not one this service gave (next_cursor)")
    query = LogQuery(
        type=type,
        subject=subject,
        community_id=community_scope(principal, community_id),
        since=_utc(since),
        until=_utc(until),
    )
    # Every parameter is checked above, before a streamed answer could begin.
    media_type = negotiate(request.headers.get("accept"), ("application/json", NDJSON))
    if media_type == NDJSON:
        upto = await queries.heads(runtime.db)
        head_seq = upto.get(partition, (0, ""))[0] if partition is not None else None
        headers = {"Vary": "Accept"}
        if head_seq is not None:
            headers["X-Whistle-Head-Seq"] = str(head_seq)
        else:
            headers["X-Whistle-Events"] = str(sum(seq for seq, _ in upto.values()))
        return StreamingResponse(
            _ndjson(queries.events_stream(runtime.db, query, partition, after, upto)),
            media_type=NDJSON,
            headers=headers,
        )
    found = await queries.events_page(
        runtime.db, query, partition=partition, after=after, cursor=start, limit=limit
    )
    return JSONResponse(
        {"items": found.items, "next_after": found.next_after, "next_cursor": found.next_cursor},
        headers={"Vary": "Accept"},
    )


@router.get("/partitions", response_model=schemas.Partitions)
async def list_partitions(_: Auditor, runtime: Runtime) -> dict[str, Any]:
    """Every partition of the log with its head (seq and hash), and their Merkle root."""
    heads = await queries.heads(runtime.db)
    return {
        "root": merkle.root(heads),
        "items": [
            {"partition": name, "seq": seq, "hash": h} for name, (seq, h) in sorted(heads.items())
        ],
    }


async def _ndjson(items: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    async for item in items:
        yield json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


@router.get("/timeline/{demand_id}", response_model=schemas.Timeline)
async def get_timeline(
    demand_id: DemandId,
    principal: Reader,
    runtime: Runtime,
    after: Annotated[int, Query(ge=0, le=MAX_INT64)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = queries.TIMELINE_PAGE,
) -> dict[str, Any]:
    """Every event of the demand, its claims and notifications, in order (the demand's story
    is in one partition), timed from the whistle; a page at a time (`next_after` is the
    `after` of the next page, null at the end)."""
    found = await queries.timeline(runtime.db, demand_id, after=after, limit=limit)
    if found is None:
        raise not_found("demand", demand_id)
    check_community(principal, found.community_id)
    return {
        "demand_id": demand_id,
        "partition": found.partition,
        "items": found.items,
        "next_after": found.next_after,
    }


@router.get("/demands/{demand_id}/state", response_model=schemas.DemandState)
async def get_demand_state(
    demand_id: DemandId,
    principal: Reader,
    runtime: Runtime,
    as_of: Rfc3339 | None = None,
) -> dict[str, Any]:
    """The demand as it stood at `as_of` (default: after every event of it), from the log."""
    at = _utc(as_of)
    state = await queries.demand_state(runtime.db, demand_id, at)
    if state is None:
        raise not_found("demand", demand_id)  # none in the log (published by `as_of`)
    check_community(principal, state.community_id)
    return {"as_of": at.isoformat() if at else None, **state.as_dict()}


@router.get(
    "/reports/responsiveness",
    response_model=schemas.Report,
    responses={200: {"content": {"text/csv": {}}}},
)
async def get_responsiveness(
    principal: Reader,
    runtime: Runtime,
    start: Annotated[Rfc3339 | None, Query(alias="from")] = None,
    end: Annotated[Rfc3339 | None, Query(alias="to")] = None,
    by: Grouping = "unit",
    as_of: Rfc3339 | None = None,
    community_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | PlainTextResponse:
    """Per unit, volunteer or community: how fast, how full, who showed up; scored and ranked;
    and how evenly the hours were shared across units and across volunteers (Jain's index:
    1.0 evenly, 1/n when one of n carried it all).

    Without `from`/`to`: the last 30 days (`to` defaults to now, `from` to 30 days before
    `to`). A window is at most 400 days.
    """
    end = as_utc(end) if end is not None else utcnow()
    start = as_utc(start) if start is not None else end - DEFAULT_REPORT_WINDOW
    if start >= end:
        raise BadQuestion("'from' must be before 'to'")
    if end - start > MAX_REPORT_WINDOW:
        raise BadQuestion(
            f"the window is {(end - start).days} days; at most {MAX_REPORT_WINDOW.days} days"
        )
    report = await queries.responsiveness_report(
        runtime.db,
        queries.ReportQuery(
            start=as_utc(start),
            end=as_utc(end),
            by=by,
            as_of=_utc(as_of),
            community_id=community_scope(principal, community_id),
            zone=_zone(runtime),
        ),
    )
    if format == "csv":
        return PlainTextResponse(
            queries.report_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="responsiveness.csv"'},
        )
    return report


def _zone(runtime: ServiceRuntime) -> tzinfo:
    settings = runtime.settings
    return settings.zone if isinstance(settings, AuditSettings) else responsiveness.DEFAULT_ZONE


@router.get("/verify", response_model=schemas.Verdict, response_model_exclude_none=True)
async def verify(
    _: Auditor, runtime: Runtime, partition: PartitionName = None, full: bool = False
) -> dict[str, Any]:
    """Walk one partition's hash chain (`partition`), or every partition's, from the last
    verified point (`full=true`: from the start); the first bad seq when anything was changed."""
    return await queries.verify(runtime.db, partition=partition, full=full)
