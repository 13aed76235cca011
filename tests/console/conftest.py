"""Fixtures for the console's tests: one real stack and one browser for the whole package.

Starting the four services, the console and Chromium is most of a browser module's set-up,
so the modules share them (package scope: torn down after the last console test, so the
stack's pollers do not run on beside the rest of the suite). A module sharing the stack uses
logins, communities and ids of its own, and leaves shared state as it found it (as
test_sessions clears the sign-in failures it made); a module that needs other settings starts
its own stack under the same fixture name (test_oversight_browser: a short escalation step).
"""

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.conftest import make_service_env
from tests.console.browser import Outside, chromium
from tests.console.stack import Stack, start_stack
from tests.support.infra import Rabbit


@pytest.fixture(scope="package")
def console_service_env(rabbit_server: Rabbit, mongodb_url: str) -> Iterator[dict[str, str]]:
    """One vhost and database prefix for the package's shared stack."""
    with rabbit_server.vhost() as url:
        yield make_service_env(url, mongodb_url, f"c{uuid.uuid4().hex[:10]}_")


@pytest.fixture(scope="package")
def stack(
    console_service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    yield from start_stack(console_service_env, tmp_path_factory.mktemp("console"))


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def outside() -> Outside:
    """The requests that tried to leave the machine, per module (each asserts there were none)."""
    return Outside()
