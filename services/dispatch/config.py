from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator

from shared.settings import WhistleSettings


class DispatchSettings(WhistleSettings):
    port: int = Field(8001, validation_alias=AliasChoices("WHISTLE_DISPATCH_PORT"))
    # How long a demand waits at the street level before it goes to the district, unless its
    # community sets its own step (`WHISTLE_ESCALATION_STEP_S`).
    escalation_step_s: float = Field(1800.0, gt=0)
    # A demand in progress at `ends_at` waits this long for the secretary's confirmation
    # before it expires (`WHISTLE_COMPLETION_GRACE_S`).
    completion_grace_s: float = Field(24 * 3600.0, gt=0)
    # The zone a series' local hours are read in unless it names its own: the communities'
    # (`WHISTLE_TIMEZONE`, as the console's).
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value
