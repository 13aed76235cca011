"""Wires audit: settings, runtime, indexes, the recorder, checkpoints, HTTP."""

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from services.audit.adapters import log_store
from services.audit.adapters.checkpoint_file import CheckpointWriter, development_key
from services.audit.config import AuditSettings
from services.audit.domain.checkpoints import private_key_from, public_key_text
from services.audit.domain.merkle import Head
from services.audit.entrypoints import checkpoints, events, http
from services.audit.entrypoints.problems import REFUSALS
from services.audit.handlers.timers import Checkpointing
from services.topology import ALL_CONSUMER_QUEUES
from shared.http.app import create_service_app
from shared.runtime import ServiceRuntime


def load_settings() -> AuditSettings:
    return AuditSettings()


def signing_key(settings: AuditSettings) -> Ed25519PrivateKey:
    if settings.signing_key is not None:
        return private_key_from(settings.signing_key.get_secret_value())
    return development_key(settings.signing_key_file)  # production refused this in settings


def build_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime("audit", settings, topology=ALL_CONSUMER_QUEUES)
    runtime.add_indexes(log_store.ensure_indexes)

    async def heads() -> dict[str, Head]:
        return await log_store.heads(runtime.db)

    key = signing_key(settings)
    checkpointing = Checkpointing(
        heads,
        every=settings.head_log_every,
        interval_s=settings.head_log_interval_s,
        checkpoints=CheckpointWriter(key, settings.checkpoint_file),
    )
    latest = checkpoints.checkpoints_router(
        settings.checkpoint_file, public_key_text(key.public_key())
    )
    events.register_consumers(runtime, checkpointing, settings.partition_by)
    return create_service_app(
        runtime,
        [http.router, latest],
        description="The hash-chained history, for auditors.",
        refusals=REFUSALS,
    )
