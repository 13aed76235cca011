"""Dispatch's series routes: a demand template with a recurrence rule, published as its own
demands ahead of time (`handlers/series.py`)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from services.dispatch.config import DispatchSettings
from services.dispatch.domain.commands import CancelSeries, UpdateSeries
from services.dispatch.entrypoints.series_schemas import (
    OccurrenceOut,
    PreviewOut,
    SeriesCancelIn,
    SeriesIn,
    SeriesList,
    SeriesOut,
    SeriesPatch,
    SeriesSummary,
)
from services.dispatch.handlers import series as handlers
from shared.auth import CurrentPrincipal, Principal, Role, require_roles
from shared.clock import utcnow
from shared.http.commands import execute
from shared.http.dependencies import Runtime
from shared.http.idempotency_keys import StoredResponse

router = APIRouter(prefix="/v1", tags=["dispatch"])

Secretary = Annotated[Principal, require_roles(Role.SECRETARY)]
PREVIEWED = 20


async def _settings_of(request: Request) -> DispatchSettings:
    settings = request.app.state.settings
    assert isinstance(settings, DispatchSettings)
    return settings


Settings = Annotated[DispatchSettings, Depends(_settings_of)]


def _answer(shown: handlers.SeriesView) -> StoredResponse:
    return StoredResponse.of(SeriesOut.of(shown), headers={"ETag": f'"{shown.series.version}"'})


@router.post("/series", status_code=201, response_model=SeriesOut)
async def create_series(
    body: SeriesIn, request: Request, principal: Secretary, runtime: Runtime, settings: Settings
) -> JSONResponse:
    """A series (its community's secretary): the occurrences within the horizon are published
    at once, each as a demand with `series_id`; a stored timer publishes the rest as they
    come within it. `series.published`."""
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handlers.create_series(tx, body, principal, settings.timezone),
        present=lambda shown: StoredResponse.of(
            SeriesOut.of(shown), 201, {"Location": f"/v1/series/{shown.series.id}"}
        ),
    )


@router.post("/series/preview", response_model=PreviewOut)
async def preview_series(body: SeriesIn, principal: Secretary, settings: Settings) -> PreviewOut:
    """The occurrences the series would have from now (the first 20, and how many): refused
    as creating it would be; nothing is stored or published."""
    handlers.may_post(principal, body.community_id)
    occurrences = handlers.preview(body, settings.timezone, utcnow())
    return PreviewOut(
        count=len(occurrences),
        occurrences=[OccurrenceOut.of(o) for o in occurrences[:PREVIEWED]],
    )


@router.get("/series", response_model=SeriesList)
async def list_series(
    principal: CurrentPrincipal,
    runtime: Runtime,
    community_id: Annotated[str | None, Query(max_length=64)] = None,
) -> SeriesList:
    """Newest first: a secretary's community's series; any community's for auditors and
    admins (`community_id` narrows it)."""
    found = await handlers.list_for(runtime.db, principal, community_id)
    return SeriesList(
        items=[
            SeriesSummary(
                id=s.id,
                community_id=s.community_id,
                status=s.status,
                title=s.template.title,
                rrule=s.rrule,
                starts_at=s.template.starts_at,
                ends_at=s.template.ends_at,
            )
            for s in found
        ]
    )


@router.get("/series/{series_id}", response_model=SeriesOut)
async def get_series(series_id: str, principal: CurrentPrincipal, runtime: Runtime) -> SeriesOut:
    """The rule, the next occurrences (with their demands once published) and every
    occurrence published so far."""
    return SeriesOut.of(await handlers.view(runtime.db, principal, series_id))


@router.patch("/series/{series_id}", response_model=SeriesOut)
async def update_series(
    series_id: str,
    body: SeriesPatch,
    request: Request,
    principal: Secretary,
    runtime: Runtime,
    settings: Settings,
) -> JSONResponse:
    """Edit the rest of the series in one step: future occurrences already published are
    updated (`demand.updated`) when only title, slots, priority or skills change, else
    cancelled and published again as the new rule has them; started ones are left as they
    are. `series.changed`."""
    command = UpdateSeries(series_id=series_id, changes=body)
    step = settings.escalation_step_s
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handlers.update_series(tx, command, principal, step),
        present=_answer,
    )


@router.post("/series/{series_id}/cancel", response_model=SeriesOut)
async def cancel_series(
    series_id: str, body: SeriesCancelIn, request: Request, principal: Secretary, runtime: Runtime
) -> JSONResponse:
    """Cancel the rest of the series: its published occurrences not yet started
    (`demand.cancelled` each) and its timer. `series.cancelled`."""
    command = CancelSeries(series_id=series_id, reason=body.reason)
    return await execute(
        runtime,
        request,
        principal,
        lambda tx: handlers.cancel_series(tx, command, principal),
        present=_answer,
    )
