"""Wires audit: settings, runtime, indexes, the recorder, HTTP."""

from fastapi import FastAPI

from services.audit.adapters import log_store
from services.audit.config import AuditSettings
from services.audit.entrypoints import events, http
from services.audit.handlers import HeadPinning
from shared.http.app import create_service_app
from shared.runtime import ServiceRuntime


def load_settings() -> AuditSettings:
    return AuditSettings()


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime("audit", settings)
    runtime.add_indexes(log_store.ensure_indexes)
    pinning = HeadPinning(every=settings.head_log_every, interval_s=settings.head_log_interval_s)
    events.register_consumers(runtime, pinning)
    return create_service_app(
        runtime, [http.router], description="The hash-chained history, for auditors."
    )
