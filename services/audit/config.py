from pydantic import AliasChoices, Field

from shared.settings import WhistleSettings


class AuditSettings(WhistleSettings):
    port: int = Field(8004, validation_alias=AliasChoices("WHISTLE_AUDIT_PORT"))
    # The head (seq, hash) is logged every so many events or seconds, for outside pinning.
    head_log_every: int = Field(
        1000, ge=1, validation_alias=AliasChoices("WHISTLE_AUDIT_HEAD_LOG_EVERY")
    )
    head_log_interval_s: float = Field(
        60.0, gt=0, validation_alias=AliasChoices("WHISTLE_AUDIT_HEAD_LOG_S")
    )
