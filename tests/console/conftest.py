"""Fixtures for the console's tests: one real stack and one browser per module."""

from collections.abc import Iterator

import pytest

from tests.console.stack import Stack, start_stack


@pytest.fixture(scope="module")
def stack(
    module_service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    yield from start_stack(module_service_env, tmp_path_factory.mktemp("console"))
