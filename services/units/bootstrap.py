"""Wires units: settings, runtime, indexes, consumers, timers, HTTP."""

from fastapi import FastAPI

from services.topology import ALL_CONSUMER_QUEUES
from services.units.adapters import repository
from services.units.config import UnitsSettings
from services.units.entrypoints import commitments_http, events, fitness_http, http, problems
from shared.http.app import create_service_app
from shared.runtime import ServiceRuntime


def load_settings() -> UnitsSettings:
    return UnitsSettings()


def build_app(settings: UnitsSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime("units", settings, topology=ALL_CONSUMER_QUEUES)
    runtime.add_indexes(repository.ensure_indexes)
    events.register_consumers(runtime)
    return create_service_app(
        runtime,
        [http.router, commitments_http.router, fitness_http.router],
        description="Units and volunteers answer the whistle: registry, open demands, claims.",
        refusals=problems.REFUSALS,
    )
