"""One running notify for a module, with a real webhook receiver and a real SMTP server."""

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.notify.receivers import Mailbox, WebhookReceiver, smtp_server, webhook_receiver
from tests.notify.scenario import Notify
from tests.support.processes import ServiceProcess

MAX_ATTEMPTS = 3

NOTIFY_ENV = {
    "WHISTLE_DELIVERY_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    "WHISTLE_DELIVERY_BACKOFF_BASE_S": "0.2",
    "WHISTLE_DELIVERY_BACKOFF_MAX_S": "1",
    "WHISTLE_DELIVERY_POLL_S": "0.2",
    # Few slots and one per receiver, so a hanging receiver could starve the rest if the
    # per-receiver share did not hold.
    "WHISTLE_DELIVERY_CONCURRENCY": "3",
    "WHISTLE_DELIVERY_PER_TARGET": "1",
    # Long enough that a receiver hanging 30 s really holds its delivery for 30 s.
    "WHISTLE_WEBHOOK_TIMEOUT_S": "40",
    "WHISTLE_STREAM_POLL_S": "0.5",
    # Small fan-out batches, so every test that reaches a few people crosses batches.
    "WHISTLE_FANOUT_BATCH": "4",
    "WHISTLE_STREAM_PING_S": "1",
}


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as running:
        yield running


@pytest.fixture(scope="module")
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as running:
        yield running


@pytest.fixture(scope="module")
def notify_process(
    start_module_service: Callable[..., ServiceProcess],
    receiver: WebhookReceiver,
    mailbox: Mailbox,
) -> ServiceProcess:
    return start_module_service("notify", WHISTLE_SMTP_URL=mailbox.url, **NOTIFY_ENV)


@pytest.fixture(scope="module")
def rabbitmq(module_service_env: dict[str, str]) -> str:
    return module_service_env["RABBITMQ_URL"]


@pytest.fixture
async def notify(
    notify_process: ServiceProcess,
    module_service_env: dict[str, str],
    token: Callable[..., str],
) -> AsyncIterator[Notify]:
    client = Notify(
        notify_process.url,
        module_service_env["MONGODB_URL"],
        module_service_env["WHISTLE_DB_PREFIX"],
        token,
    )
    yield client
    await client.close()
