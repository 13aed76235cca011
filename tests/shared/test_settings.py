"""Settings: conventional broker/database variable names; production is the default and
refuses dev secrets, short secrets and a remote broker's guest account."""

import pytest
from pydantic import ValidationError

from services.dispatch.config import DispatchSettings
from shared.settings import DEV_JWT_SECRET, InsecureSettingsError, WhistleSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("WHISTLE_") or name in {"RABBITMQ_URL", "MONGODB_URL"}:
            monkeypatch.delenv(name)


REAL_SECRET = "a-real-secret-from-the-vault-0123456789"


def test_production_is_the_default() -> None:
    assert WhistleSettings.model_fields["env"].default == "production"
    with pytest.raises(ValidationError, match="WHISTLE_JWT_SECRET"):
        WhistleSettings()  # nothing set: production, which refuses the public dev secret


def test_production_refuses_a_short_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_JWT_SECRET", "x" * 31)
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        WhistleSettings()
    monkeypatch.setenv("WHISTLE_JWT_SECRET", "x" * 32)
    assert WhistleSettings().is_production


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("amqp://guest:guest@rabbit.example.org:5672/", True),
        ("amqp://rabbit.example.org/", True),  # no user: the client logs in as guest
        ("amqp://guest:guest@10.0.0.5:5672/", True),
        ("amqp://guest:guest@localhost:5672/", False),
        ("amqp://guest:guest@127.0.0.1:5672/", False),
        ("amqp://guest:guest@[::1]:5672/", False),
        ("amqp://whistle:s3cret@rabbit.example.org:5672/", False),
    ],
)
def test_production_refuses_the_guest_account_off_loopback(
    monkeypatch: pytest.MonkeyPatch, url: str, refused: bool
) -> None:
    monkeypatch.setenv("WHISTLE_JWT_SECRET", REAL_SECRET)
    monkeypatch.setenv("RABBITMQ_URL", url)
    if refused:
        with pytest.raises(ValidationError, match="guest"):
            WhistleSettings()
    else:
        assert WhistleSettings().rabbitmq_url == url
    monkeypatch.setenv("WHISTLE_ENV", "development")
    assert WhistleSettings().rabbitmq_url == url  # development takes any broker


def test_production_refuses_the_dev_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_ENV", "production")
    with pytest.raises(ValidationError, match="WHISTLE_JWT_SECRET") as raised:
        WhistleSettings()
    assert any(
        isinstance(error.get("ctx", {}).get("error"), InsecureSettingsError)
        for error in raised.value.errors()
    )


def test_production_accepts_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_ENV", "production")
    monkeypatch.setenv("WHISTLE_JWT_SECRET", REAL_SECRET)
    settings = WhistleSettings()
    assert settings.jwt_secret.get_secret_value() != DEV_JWT_SECRET
    assert DEV_JWT_SECRET not in repr(settings)


def test_development_uses_the_dev_secret_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_ENV", "development")
    assert WhistleSettings().jwt_secret.get_secret_value() == DEV_JWT_SECRET


def test_broker_and_database_urls_take_the_conventional_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WHISTLE_JWT_SECRET", REAL_SECRET)
    monkeypatch.setenv("RABBITMQ_URL", "amqp://u:p@rabbit:5672/whistle")
    monkeypatch.setenv("MONGODB_URL", "mongodb://mongo:27017/?replicaSet=rs0")
    settings = WhistleSettings()
    assert settings.rabbitmq_url == "amqp://u:p@rabbit:5672/whistle"
    assert settings.mongodb_url == "mongodb://mongo:27017/?replicaSet=rs0"


def test_service_port_and_database_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_ENV", "development")
    monkeypatch.setenv("WHISTLE_DISPATCH_PORT", "9101")
    monkeypatch.setenv("WHISTLE_DB_PREFIX", "trial_")
    settings = DispatchSettings()
    assert settings.port == 9101
    assert settings.database_name("dispatch") == "trial_dispatch"
    assert DispatchSettings.model_fields["port"].default == 8001


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_ENV", "staging")
    with pytest.raises(ValidationError):
        WhistleSettings()
