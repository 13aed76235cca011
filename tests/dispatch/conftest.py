"""The fixtures every dispatch module shares: one dispatch process per module (a module
whose dispatch needs other settings overrides `dispatch`), its broker and its database."""

from collections.abc import AsyncIterator, Callable

import pytest

from tests.dispatch.support import DispatchDb, dispatch_db
from tests.support.processes import ServiceProcess


@pytest.fixture(scope="module")
def dispatch(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_module_service("dispatch")


@pytest.fixture(scope="module")
def module_rabbitmq_url(module_service_env: dict[str, str]) -> str:
    return module_service_env["RABBITMQ_URL"]


@pytest.fixture(scope="module")
async def db(module_service_env: dict[str, str]) -> AsyncIterator[DispatchDb]:
    async with dispatch_db(
        module_service_env["MONGODB_URL"], module_service_env["WHISTLE_DB_PREFIX"]
    ) as database:
        yield database
