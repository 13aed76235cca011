from pydantic import AliasChoices, Field

from shared.settings import WhistleSettings


class DispatchSettings(WhistleSettings):
    port: int = Field(8001, validation_alias=AliasChoices("WHISTLE_DISPATCH_PORT"))
    # How long a demand waits at the street level before it goes to the district.
    escalation_step_s: float = Field(1800.0, gt=0)
