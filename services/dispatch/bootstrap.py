"""Wires dispatch: settings, runtime, indexes, consumers, timers, HTTP."""

from fastapi import FastAPI

from services.dispatch.adapters import reach, repository, rosters, series_store, zones_store
from services.dispatch.config import DispatchSettings
from services.dispatch.entrypoints import (
    events,
    http,
    problems,
    rosters_http,
    series_http,
    zones_http,
)
from services.topology import ALL_CONSUMER_QUEUES
from shared.http.app import create_service_app
from shared.runtime import ServiceRuntime


def load_settings() -> DispatchSettings:
    return DispatchSettings()


def build_app(settings: DispatchSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime("dispatch", settings, topology=ALL_CONSUMER_QUEUES)
    runtime.add_indexes(repository.ensure_indexes)
    runtime.add_indexes(reach.ensure_indexes)
    runtime.add_indexes(rosters.ensure_indexes)
    runtime.add_indexes(zones_store.ensure_indexes)
    runtime.add_indexes(series_store.ensure_indexes)
    events.register_consumers(runtime, settings)
    return create_service_app(
        runtime,
        [http.router, rosters_http.router, zones_http.router, series_http.router],
        description="Secretaries post demands; the escalation ladder runs here.",
        refusals=problems.REFUSALS,
    )
