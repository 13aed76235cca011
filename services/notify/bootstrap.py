"""Wires notify: settings, runtime, indexes, consumers, timers, the delivery worker, HTTP."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from services.notify.adapters import deliveries, directory, inbox, stream_tickets
from services.notify.adapters.channels import Channels
from services.notify.adapters.email import EmailSender, SmtpServer
from services.notify.adapters.webhook import WebhookSender
from services.notify.config import NotifySettings
from services.notify.domain.model import Policy
from services.notify.entrypoints import events, http
from services.notify.entrypoints.deliveries import DeliveryWorker
from services.notify.entrypoints.problems import REFUSALS
from services.notify.entrypoints.streams import InboxWatch
from services.notify.handlers.deliveries import Retries
from services.topology import ALL_CONSUMER_QUEUES
from shared.http.app import create_service_app
from shared.runtime import ServiceRuntime

# A delivery's lease outlives its longest possible attempt, so no second worker starts it.
LEASE_MARGIN_S = 30.0


def load_settings() -> NotifySettings:
    return NotifySettings()


def build_app(settings: NotifySettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime("notify", settings, topology=ALL_CONSUMER_QUEUES)
    runtime.add_indexes(directory.ensure_indexes)
    runtime.add_indexes(inbox.ensure_indexes)
    runtime.add_indexes(inbox.count_unread_where_missing)
    runtime.add_indexes(deliveries.ensure_indexes)
    runtime.add_indexes(deliveries.ensure_recipient_index)
    runtime.add_indexes(stream_tickets.ensure_indexes)

    webhook = WebhookSender(
        timeout_s=settings.webhook_timeout_s,
        allow_loopback=settings.webhooks_may_reach_loopback,
    )
    email = (
        EmailSender(
            SmtpServer.from_url(settings.smtp_url),
            settings.smtp_from,
            timeout_s=settings.smtp_timeout_s,
        )
        if settings.smtp_url
        else None
    )
    worker = DeliveryWorker(
        runtime.uow,
        owner=runtime.instance,
        channels=Channels(runtime.db, webhook, email),
        concurrency=settings.delivery_concurrency,
        per_target=settings.delivery_per_target,
        poll_s=settings.delivery_poll_s,
        lease_s=max(settings.webhook_timeout_s, settings.smtp_timeout_s) + LEASE_MARGIN_S,
        retries=Retries(
            max_attempts=settings.delivery_max_attempts,
            backoff_base_s=settings.delivery_backoff_base_s,
            backoff_max_s=settings.delivery_backoff_max_s,
        ),
    )
    watch = InboxWatch(
        runtime.db,
        poll_s=settings.stream_poll_s,
        max_streams=settings.stream_max,
        per_principal=settings.stream_per_principal,
    )

    def committed() -> None:
        worker.wake()
        watch.ring()

    policy = Policy(
        reminder_lead=timedelta(seconds=settings.reminder_lead_s),
        email_enabled=email is not None,
        fanout_batch=settings.fanout_batch,
    )
    events.register_consumers(runtime, policy, committed)
    app = create_service_app(
        runtime,
        [http.router],
        description="Inboxes, live streams, webhooks and email: the right people hear of it.",
        refusals=REFUSALS,
    )
    app.state.inbox_watch = watch
    runtime_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        async with runtime_lifespan(application):
            worker.start()
            watching = asyncio.create_task(watch.run(), name="inbox-watch")
            try:
                yield
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
                await worker.stop()
                await webhook.close()

    app.router.lifespan_context = lifespan
    return app
