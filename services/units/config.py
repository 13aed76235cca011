from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator

from shared.settings import WhistleSettings


class UnitsSettings(WhistleSettings):
    port: int = Field(8002, validation_alias=AliasChoices("WHISTLE_UNITS_PORT"))
    # The volunteers' weekly hour cap counts ISO weeks, the consecutive-days limit dates and
    # the night (22:00-06:00) hours, all in the deployment's local time: WHISTLE_TIMEZONE
    # (the console's too), or the older WHISTLE_WEEK_TIMEZONE.
    # How long a registration naming a community units has not heard of waits for its
    # `community.registered` (dispatch answered 201 a moment ago) before it is refused
    # `unknown-community`.
    community_arrival_s: float = Field(
        5.0, ge=0, le=60, validation_alias=AliasChoices("WHISTLE_UNITS_COMMUNITY_ARRIVAL_S")
    )
    week_timezone: str = Field(
        "Asia/Shanghai",
        validation_alias=AliasChoices("WHISTLE_TIMEZONE", "WHISTLE_WEEK_TIMEZONE"),
    )

    @field_validator("week_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown time zone {value!r}") from error
        return value

    @property
    def week_zone(self) -> ZoneInfo:
        return ZoneInfo(self.week_timezone)
