from pathlib import Path
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator

from services.audit.domain.partitions import PartitionBy
from shared.settings import InsecureSettingsError, WhistleSettings


class AuditSettings(WhistleSettings):
    port: int = Field(8004, validation_alias=AliasChoices("WHISTLE_AUDIT_PORT"))
    # Group commit (handlers/events.py): a round takes up to 100 waiting events, and the next
    # round's events arrive while it runs, so the window holds two rounds. With the other
    # services' 32 a round averaged 16 events.
    prefetch: int = Field(
        200, ge=1, le=1000, validation_alias=AliasChoices("WHISTLE_AUDIT_PREFETCH")
    )
    # What splits the log into partitions (see domain/partitions.py). Every replica of one
    # log must use the same: a demand's story stays in the partition it started in anyway.
    partition_by: PartitionBy = Field(
        PartitionBy.DISTRICT, validation_alias=AliasChoices("WHISTLE_AUDIT_PARTITION")
    )
    # Every partition's head is pinned (its Merkle root logged and signed into the checkpoint
    # file) every so many events appended by a process, or seconds.
    head_log_every: int = Field(
        1000, ge=1, validation_alias=AliasChoices("WHISTLE_AUDIT_HEAD_LOG_EVERY")
    )
    head_log_interval_s: float = Field(
        60.0, gt=0, validation_alias=AliasChoices("WHISTLE_AUDIT_HEAD_LOG_S")
    )
    # The Ed25519 private key (32 bytes, base64) that signs checkpoints; required in production.
    signing_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("WHISTLE_AUDIT_SIGNING_KEY")
    )
    # Where development keeps the key it generates when none is given.
    signing_key_file: Path = Field(
        Path("var/audit-signing-key"),
        validation_alias=AliasChoices("WHISTLE_AUDIT_SIGNING_KEY_FILE"),
    )
    # Append-only; keep it where the database's writers cannot change it.
    checkpoint_file: Path = Field(
        Path("var/audit-checkpoints.jsonl"),
        validation_alias=AliasChoices("WHISTLE_AUDIT_CHECKPOINT_FILE"),
    )

    # The report's night hours (22:00-06:00) are local time: the deployment's, as units'.
    timezone: str = Field("Asia/Shanghai", validation_alias=AliasChoices("WHISTLE_TIMEZONE"))

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _production_signs_with_its_own_key(self) -> Self:
        if self.env == "production" and self.signing_key is None:
            raise InsecureSettingsError(
                "WHISTLE_ENV=production needs WHISTLE_AUDIT_SIGNING_KEY (a base64 Ed25519 "
                "private key: `whistle audit-key` makes one) to sign the log's checkpoints"
            )
        return self
