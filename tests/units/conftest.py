"""One units service per test module, and a fresh `UnitsWorld` on it per test (a module
that needs more services, or its own process, defines its own `world`)."""

from collections.abc import AsyncIterator, Callable

import pytest

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
