"""Settings: one pydantic-settings class per service on this shared base.

Broker and database URLs take the conventional unprefixed names (`RABBITMQ_URL`,
`MONGODB_URL`); everything Whistle-specific is `WHISTLE_*`.
"""

from typing import Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "whistle-dev-secret-do-not-use-in-production"  # noqa: S105
DEFAULT_RABBITMQ_URL = "amqp://guest:guest@localhost:5672/"
DEFAULT_MONGODB_URL = "mongodb://localhost:27017/?directConnection=true"


class InsecureSettingsError(ValueError):
    pass


class WhistleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WHISTLE_", extra="ignore", populate_by_name=True)

    env: Literal["development", "test", "production"] = "development"
    rabbitmq_url: str = Field(
        DEFAULT_RABBITMQ_URL, validation_alias=AliasChoices("RABBITMQ_URL", "WHISTLE_RABBITMQ_URL")
    )
    mongodb_url: str = Field(
        DEFAULT_MONGODB_URL, validation_alias=AliasChoices("MONGODB_URL", "WHISTLE_MONGODB_URL")
    )
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    # Each service owns the database `<db_prefix><service>`; tests give each run its own prefix.
    db_prefix: str = "whistle_"
    host: str = "127.0.0.1"
    log_level: str = "INFO"
    max_body_bytes: int = 64 * 1024
    prefetch: int = Field(32, ge=1, le=1000)
    outbox_poll_s: float = Field(0.25, gt=0)
    lease_ttl_s: float = Field(10.0, gt=0)
    timer_poll_s: float = Field(0.5, gt=0)
    readiness_timeout_s: float = Field(2.0, gt=0)

    @model_validator(mode="after")
    def _refuse_dev_secrets_in_production(self) -> Self:
        if self.env == "production" and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            raise InsecureSettingsError(
                "WHISTLE_ENV=production refuses the development JWT secret: set WHISTLE_JWT_SECRET"
            )
        return self

    def database_name(self, service: str) -> str:
        return f"{self.db_prefix}{service}"
