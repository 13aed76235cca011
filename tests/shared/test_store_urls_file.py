"""`whistle run` tells the CLI beside it where each embedded store listens (var/stores.json):
`whistle account create` must write into the console's store, not the first one's."""

from pathlib import Path

import pytest

from services.cli.supervisor import STORES_FILE, embedded_store_url, write_store_urls

pytestmark = pytest.mark.unit


def test_the_consoles_store_is_read_back_from_the_running_stacks_file(tmp_path: Path) -> None:
    urls = {
        "dispatch": "mongodb://127.0.0.1:27017/?directConnection=true",
        "console": "mongodb://127.0.0.1:27021/?directConnection=true",
    }
    write_store_urls(tmp_path, urls)
    assert embedded_store_url("console", tmp_path) == urls["console"]
    assert embedded_store_url("audit", tmp_path) is None


def test_no_running_stack_or_a_broken_file_gives_no_url(tmp_path: Path) -> None:
    assert embedded_store_url("console", tmp_path) is None
    (tmp_path / STORES_FILE).write_text("{not json")
    assert embedded_store_url("console", tmp_path) is None
