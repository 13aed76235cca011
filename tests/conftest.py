"""Fixtures that find the real services (see tests/support/infra.py) and run ours."""

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.auth import make_token
from tests.support.brokers import brokers, route_every_binding
from tests.support.infra import Rabbit, mongodb, rabbit
from tests.support.processes import ServiceProcess

# Production is the default everywhere else (fail closed); the tests say development, which
# accepts the development secrets and lets webhooks reach the test's loopback receivers.
os.environ["WHISTLE_ENV"] = "development"

__all__ = ["brokers"]  # the memory-and-real broker fixture (tests/support/brokers.py)


@pytest.fixture(scope="session", autouse=True)
def _memory_broker_routes_every_binding() -> Iterator[None]:
    """TestRabbitBroker routes by all of a queue's bindings, as RabbitMQ does."""
    with route_every_binding():
        yield


@pytest.fixture(scope="session")
def rabbit_server() -> Iterator[Rabbit]:
    with rabbit() as server:
        yield server


@pytest.fixture(scope="session")
def mongodb_url() -> Iterator[str]:
    with mongodb() as url:
        yield url


@pytest.fixture
def rabbitmq_url(rabbit_server: Rabbit) -> Iterator[str]:
    """A fresh vhost for this test on the real broker."""
    with rabbit_server.vhost() as url:
        yield url


@pytest.fixture
def db_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}_"


def make_service_env(rabbitmq_url: str, mongodb_url: str, db_prefix: str) -> dict[str, str]:
    return {
        "RABBITMQ_URL": rabbitmq_url,
        "MONGODB_URL": mongodb_url,
        "WHISTLE_DB_PREFIX": db_prefix,
        "WHISTLE_ENV": "development",
        "WHISTLE_LOG_LEVEL": "INFO",
        "WHISTLE_OUTBOX_POLL_S": "0.1",
        "WHISTLE_TIMER_POLL_S": "0.2",
    }


@pytest.fixture
def service_env(rabbitmq_url: str, mongodb_url: str, db_prefix: str) -> dict[str, str]:
    """Environment for this test's service processes: its vhost, its databases."""
    return make_service_env(rabbitmq_url, mongodb_url, db_prefix)


@contextmanager
def service_starter(env: dict[str, str], log_dir: Path) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    # Audit's development key and signed checkpoints stay with the test, not in var/.
    audit_files = {
        "WHISTLE_AUDIT_SIGNING_KEY_FILE": str(log_dir / "audit-signing-key"),
        "WHISTLE_AUDIT_CHECKPOINT_FILE": str(log_dir / "audit-checkpoints.jsonl"),
    }

    def start(name: str, wait: bool = True, **extra_env: str) -> ServiceProcess:
        process = ServiceProcess(name, {**audit_files, **env, **extra_env}, log_dir)
        started.append(process)
        process.start()
        return process.wait_ready() if wait else process

    try:
        yield start
    finally:
        for process in started:
            process.terminate()


@pytest.fixture
def start_service(
    service_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Start a real service process (`whistle serve NAME`) and wait until it is ready."""
    with service_starter(service_env, tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def module_service_env(rabbit_server: Rabbit, mongodb_url: str) -> Iterator[dict[str, str]]:
    """One vhost and database prefix shared by a module's tests (services started once)."""
    with rabbit_server.vhost() as url:
        yield make_service_env(url, mongodb_url, f"m{uuid.uuid4().hex[:10]}_")


@pytest.fixture(scope="module")
def start_module_service(
    module_service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., ServiceProcess]]:
    """Like start_service, but the processes live for the whole module."""
    with service_starter(module_service_env, tmp_path_factory.mktemp("services")) as start:
        yield start


@pytest.fixture
def token() -> Callable[..., str]:
    """`token("secretary", community="c1")` signs with the dev secret the test services use."""
    return make_token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
