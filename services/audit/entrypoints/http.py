"""Audit's HTTP side for auditors: the log, paged."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from services.audit.adapters import log_store
from shared.auth import Principal, Role, forbidden, require_roles
from shared.runtime import ServiceRuntime

router = APIRouter(prefix="/v1", tags=["audit"])

Reader = Annotated[Principal, require_roles(Role.AUDITOR, Role.SECRETARY)]


def runtime_of(request: Request) -> ServiceRuntime:
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


def _record_out(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq": record["_id"],
        "hash": record["hash"],
        "prev_hash": record["prev_hash"],
        "event": record["event"],
    }


@router.get("/events")
async def list_events(
    principal: Reader,
    runtime: Runtime,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    type: Annotated[str | None, Query(max_length=100)] = None,
    subject: Annotated[str | None, Query(max_length=200)] = None,
    community_id: Annotated[str | None, Query(max_length=64)] = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> dict[str, Any]:
    if principal.role is Role.SECRETARY:
        if community_id not in (None, principal.community):
            raise forbidden("a secretary reads only their own community's events")
        community_id = principal.community
    query: dict[str, Any] = {}
    if type:
        query["type"] = type
    if subject:
        query["subject"] = subject
    if community_id:
        query["community_id"] = community_id
    if since or until:
        bounds: dict[str, str] = {}
        if since:
            bounds["$gte"] = since.isoformat()
        if until:
            bounds["$lt"] = until.isoformat()
        query["time"] = bounds
    records = await log_store.page(runtime.db, query, after, limit)
    items = [_record_out(record) for record in records]
    return {"items": items, "next_after": items[-1]["seq"] if items else after}
