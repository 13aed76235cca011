"""The console's settings: where it listens, where the four services answer, and the rules of
sessions, sign-in throttling and invitations."""

import os
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AliasChoices, Field, field_validator

from shared.settings import WhistleSettings

# High to low: 红 / 橙 / 黄 / 蓝 / 绿.
ZONE_PALETTE = {
    "red": "#d7191c",
    "orange": "#f28e2b",
    "yellow": "#f6d743",
    "blue": "#5b9bd5",
    "green": "#5cb85c",
}


def _local(port_env: str, default_port: int) -> str:
    return f"http://127.0.0.1:{os.environ.get(port_env, default_port)}"


class ConsoleSettings(WhistleSettings):
    port: int = Field(8000, validation_alias=AliasChoices("WHISTLE_CONSOLE_PORT"))
    # The four services' public HTTP APIs (on one machine: their local ports).
    dispatch_url: str = Field(default_factory=lambda: _local("WHISTLE_DISPATCH_PORT", 8001))
    units_url: str = Field(default_factory=lambda: _local("WHISTLE_UNITS_PORT", 8002))
    notify_url: str = Field(default_factory=lambda: _local("WHISTLE_NOTIFY_PORT", 8003))
    audit_url: str = Field(default_factory=lambda: _local("WHISTLE_AUDIT_PORT", 8004))
    # Where people reach the console: invitation links and check-in QR codes point here.
    public_url: str = Field(
        default_factory=lambda: f"http://localhost:{os.environ.get('WHISTLE_CONSOLE_PORT', 8000)}",
        validation_alias=AliasChoices("WHISTLE_PUBLIC_URL", "WHISTLE_CONSOLE_PUBLIC_URL"),
    )
    timezone: str = "Asia/Shanghai"
    upstream_timeout_s: float = Field(10.0, gt=0, le=120)
    # A token minted for one call to a service lives this long (the browser never sees it).
    call_token_ttl_s: float = Field(120.0, gt=0, le=3600)
    session_idle_s: float = Field(12 * 3600, gt=0)
    sign_in_limit: int = Field(5, ge=1, le=100)
    sign_in_window_s: float = Field(15 * 60, gt=0)
    invitation_ttl_s: float = Field(7 * 24 * 3600, gt=0)
    # Live pages look for changes this often (the board, a demand, the unread badge).
    live_poll_s: float = Field(1.0, gt=0, le=60)
    # The risk zones' colours on the map (`WHISTLE_ZONE_PALETTE`, JSON: a level left out
    # keeps its default). Each grid carries its level's word as well: never colour alone.
    zone_palette: dict[str, str] = Field(default_factory=lambda: dict(ZONE_PALETTE))

    @field_validator("zone_palette")
    @classmethod
    def _known_colours(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(ZONE_PALETTE))
        if unknown:
            raise ValueError(f"zone_palette names no such level: {', '.join(unknown)}")
        for level, colour in value.items():
            if not re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
                raise ValueError(f"zone_palette.{level} must be a colour like #d7191c")
        return {**ZONE_PALETTE, **value}

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from None
        return value

    @property
    def secure_cookies(self) -> bool:
        """Cookies go over HTTPS only, except on a developer's machine and in tests."""
        return self.env == "production"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
