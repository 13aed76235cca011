from pydantic import AliasChoices, Field

from shared.settings import WhistleSettings


class AuditSettings(WhistleSettings):
    port: int = Field(8004, validation_alias=AliasChoices("WHISTLE_AUDIT_PORT"))
