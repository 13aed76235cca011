"""Settings: one pydantic-settings class per service on this shared base.

Broker and database URLs take the conventional unprefixed names (`RABBITMQ_URL`,
`MONGODB_URL`); everything Whistle-specific is `WHISTLE_*`.

Fail closed: `WHISTLE_ENV` is `production` unless something says otherwise (`whistle run`,
`make run` and the tests say `development`). Production refuses the development secrets,
secrets shorter than 32 bytes, and RabbitMQ's `guest` account on a broker that is not on
this machine.
"""

import ipaddress
import re
from datetime import timedelta
from typing import Any, Literal, Self
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "whistle-dev-secret-do-not-use-in-production"  # noqa: S105
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_MONGODB_URL = "mongodb://localhost:27017/?directConnection=true"
# HS256 keys shorter than the hash output are guessable offline from one token (RFC 7518 3.2).
MIN_SECRET_BYTES = 32
# Clock skew tolerated between whoever minted a token and the service checking it.
TOKEN_LEEWAY = timedelta(seconds=30)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class InsecureSettingsError(ValueError):
    pass


def parse_duration(text: str) -> timedelta:
    """`30m`, `8h`, `2d`, `90s` (or plain seconds) as a timedelta."""
    if (match := _DURATION.match(text)) is not None:
        return timedelta(seconds=float(match[1]) * _DURATION_UNITS[match[2]])
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        raise ValueError(f"'{text}' is not a duration: use e.g. 30m, 8h, 2d") from None


def format_duration(duration: timedelta) -> str:
    """`24h`, `30m`, `90s`: the way WHISTLE_JWT_MAX_TTL and `--ttl` are written."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        # Days only from two on: "24h" reads better than "1d".
        if seconds and seconds % size == 0 and (unit != "d" or seconds >= 2 * size):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def is_loopback_host(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_secret(name: str, secret: SecretStr, development_value: str) -> None:
    """Production refuses a development secret or one too short to resist guessing."""
    value = secret.get_secret_value()
    if value == development_value:
        raise InsecureSettingsError(
            f"WHISTLE_ENV=production refuses the development secret: set {name} "
            "(e.g. openssl rand -hex 32)"
        )
    if len(value.encode()) < MIN_SECRET_BYTES:
        raise InsecureSettingsError(
            f"WHISTLE_ENV=production needs {name} of at least {MIN_SECRET_BYTES} bytes "
            "(e.g. openssl rand -hex 32)"
        )


class TokenSettings(BaseSettings):
    """What minting and checking a token needs; `whistle token` reads only this."""

    model_config = SettingsConfigDict(env_prefix="WHISTLE_", extra="ignore", populate_by_name=True)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = Field("whistle", min_length=1)
    jwt_audience: str = Field("whistle", min_length=1)
    # The longest a token may live: one minted (or presented) for longer is refused.
    jwt_max_ttl: timedelta = timedelta(hours=24)

    @field_validator("jwt_max_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value) if isinstance(value, str) else value

    @field_validator("jwt_max_ttl")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("WHISTLE_JWT_MAX_TTL must be positive")
        return value


class WhistleSettings(TokenSettings):
    # "test" is the development behaviour under another name, kept for existing callers.
    env: Literal["development", "test", "production"] = "production"
    rabbitmq_url: str = Field(
        DEFAULT_RABBITMQ_URL, validation_alias=AliasChoices("RABBITMQ_URL", "WHISTLE_RABBITMQ_URL")
    )
    mongodb_url: str = Field(
        DEFAULT_MONGODB_URL, validation_alias=AliasChoices("MONGODB_URL", "WHISTLE_MONGODB_URL")
    )
    # Each service owns the database `<db_prefix><service>`; tests give each run its own prefix.
    db_prefix: str = "whistle_"
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    max_body_bytes: int = 64 * 1024
    prefetch: int = Field(32, ge=1, le=1000)
    outbox_poll_s: float = Field(0.25, gt=0)
    lease_ttl_s: float = Field(10.0, gt=0)
    timer_poll_s: float = Field(0.5, gt=0)
    # How long a replica holds a timer it is firing; a firing cut short by a crash is taken
    # up by another (or the restarted) process once this lapses (`WHISTLE_TIMER_LEASE_S`).
    timer_lease_s: float = Field(30.0, gt=0)
    readiness_timeout_s: float = Field(2.0, gt=0)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @model_validator(mode="after")
    def _fail_closed_in_production(self) -> Self:
        if self.is_production:
            check_secret("WHISTLE_JWT_SECRET", self.jwt_secret, DEV_JWT_SECRET)
            self._refuse_guest_on_a_remote_broker()
        return self

    def _refuse_guest_on_a_remote_broker(self) -> None:
        # RabbitMQ's guest/guest is public knowledge; the broker only lets it in from
        # loopback by default, and a production deployment must not rely on that default.
        parts = urlsplit(self.rabbitmq_url)
        user = unquote(parts.username) if parts.username is not None else "guest"
        if user == "guest" and not is_loopback_host(parts.hostname or "localhost"):
            raise InsecureSettingsError(
                "WHISTLE_ENV=production refuses RabbitMQ's 'guest' account on a broker that is "
                f"not on loopback ({parts.hostname}): put a real user in RABBITMQ_URL"
            )

    def database_name(self, service: str) -> str:
        return f"{self.db_prefix}{service}"
