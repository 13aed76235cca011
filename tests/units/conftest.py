"""One units service per test module, and a fresh `UnitsWorld` on it per test (a module
that needs more services, or its own process, defines its own `world`)."""

import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from services.units.adapters import repository
from services.units.config import UnitsSettings
from shared.runtime import ServiceRuntime
from tests.support.processes import ServiceProcess
from tests.units.support import UnitsWorld


@pytest.fixture(scope="module")
def units(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_module_service("units")


@pytest.fixture
async def world(
    units: ServiceProcess, module_service_env: dict[str, str]
) -> AsyncIterator[UnitsWorld]:
    async with UnitsWorld.opened(units.url, module_service_env) as world:
        yield world


@pytest.fixture
async def units_store(mongodb_url: str) -> AsyncIterator[ServiceRuntime]:
    """Units' store on the Mongo wire server, with its indexes, no service around it; its
    database is dropped after the test."""
    settings = UnitsSettings(
        mongodb_url=mongodb_url,
        rabbitmq_url="amqp://guest:guest@127.0.0.1:5672/",
        db_prefix=f"store{uuid.uuid4().hex[:8]}_",
    )
    runtime = ServiceRuntime("units", settings)
    await repository.ensure_indexes(runtime.db)
    try:
        yield runtime
    finally:
        await runtime.client.drop_database(runtime.db.name)
        await runtime.client.close()
