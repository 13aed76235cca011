"""bench/stack.py: the caller's WHISTLE_* settings reach the services, the bench's own win."""

import pytest

from bench.stack import stack_environment
from services.cli.registry import SERVICES

pytestmark = pytest.mark.unit


def test_the_callers_whistle_settings_reach_the_services(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_AUDIT_PARTITION", "community")
    monkeypatch.setenv("WHISTLE_OUTBOX_POLL_S", "0.5")
    monkeypatch.setenv("UNRELATED", "kept")
    env, _ = stack_environment("amqp://guest:guest@127.0.0.1:5672/bench")
    assert env["WHISTLE_AUDIT_PARTITION"] == "community"
    assert env["WHISTLE_OUTBOX_POLL_S"] == "0.5"
    assert env["UNRELATED"] == "kept"
    assert env["RABBITMQ_URL"] == "amqp://guest:guest@127.0.0.1:5672/bench"


def test_the_bench_sets_its_own_ports_mode_and_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_ENV", "production")
    monkeypatch.setenv("WHISTLE_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("WHISTLE_AUDIT_PORT", "1")
    env, urls = stack_environment("amqp://x")
    assert env["WHISTLE_ENV"] == "development"
    assert env["WHISTLE_LOG_LEVEL"] == "WARNING"
    assert set(urls) == set(SERVICES)
    for name, url in urls.items():
        assert url == f"http://127.0.0.1:{env[f'WHISTLE_{name.upper()}_PORT']}"
    assert env["WHISTLE_AUDIT_PORT"] != "1"
