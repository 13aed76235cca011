"""What `whistle run` prints about where things are: addresses, never passwords."""

import pytest

from services.cli.supervisor import environment_lines, redacted, service_addresses
from shared.settings import WhistleSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://guest:****@127.0.0.1:5672/"),
        (
            "mongodb://u:s3cret@db:27017/?replicaSet=rs0",
            "mongodb://u:****@db:27017/?replicaSet=rs0",
        ),
        (
            "mongodb://127.0.0.1:27017/?directConnection=true",
            "mongodb://127.0.0.1:27017/?directConnection=true",
        ),
    ],
)
def test_urls_are_printed_without_their_password(url: str, shown: str) -> None:
    assert redacted(url) == shown


def test_service_addresses_follow_the_port_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPATCH", "UNITS", "NOTIFY", "AUDIT", "CONSOLE"):
        monkeypatch.delenv(f"WHISTLE_{name}_PORT", raising=False)
    monkeypatch.delenv("WHISTLE_HOST", raising=False)
    monkeypatch.setenv("WHISTLE_AUDIT_PORT", "9904")
    assert service_addresses() == {
        "dispatch": "http://127.0.0.1:8001",
        "units": "http://127.0.0.1:8002",
        "notify": "http://127.0.0.1:8003",
        "audit": "http://127.0.0.1:9904",
        "console": "http://127.0.0.1:8000",
    }


def test_whistle_run_says_it_runs_in_development_and_what_that_allows() -> None:
    lines = environment_lines(WhistleSettings(env="development"))
    assert lines[0].startswith("environment: development")
    assert "loopback" in lines[1]
    assert "private and link-local addresses are refused" in lines[1]
    production = environment_lines(WhistleSettings(env="production", jwt_secret="k" * 32))
    assert production[0].startswith("environment: production")
