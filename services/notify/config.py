from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator

from shared.settings import WhistleSettings


class NotifySettings(WhistleSettings):
    port: int = Field(8003, validation_alias=AliasChoices("WHISTLE_NOTIFY_PORT"))
    # Each receiver has its own webhook secret (units makes it, the private exchange brings
    # it): there is no shared key to configure any more.
    webhook_timeout_s: float = Field(10.0, gt=0, le=300)
    # `smtp://[user:password@]host[:port]` (STARTTLS when offered) or `smtps://` (TLS);
    # unset means no email channel.
    smtp_url: str | None = None
    smtp_from: str = "whistle@localhost"
    smtp_timeout_s: float = Field(10.0, gt=0, le=300)
    # Deliveries (webhook, email) run off the consuming path, at most this many at a time.
    delivery_concurrency: int = Field(16, ge=1, le=500)
    # At most this many of those to one webhook URL or email address: a receiver that
    # hangs ties up its own share, never every slot.
    delivery_per_target: int = Field(4, ge=1, le=500)
    delivery_poll_s: float = Field(0.5, gt=0)
    # Attempts before a delivery is dead-lettered; the delay doubles from base up to max,
    # with full jitter so a receiver that comes back is not hit by every retry at once.
    delivery_max_attempts: int = Field(8, ge=1, le=50)
    delivery_backoff_base_s: float = Field(2.0, gt=0)
    delivery_backoff_max_s: float = Field(600.0, gt=0)
    # Shift reminder: this long before `starts_at` (2h15m: time to cross a city).
    reminder_lead_s: float = Field(2 * 3600 + 15 * 60, ge=0)
    # The SSE stream checks for new items this often even when no local commit woke it
    # (another replica may have written them).
    stream_poll_s: float = Field(1.0, gt=0)
    stream_ping_s: float = Field(15.0, gt=0)
    # Open SSE streams: per principal (the next is 429) and per process (the next is 503).
    # Recipients notified per transaction when a demand fans out (see notifying.fan_out).
    fanout_batch: int = Field(200, ge=1, le=5000)
    stream_per_principal: int = Field(5, ge=1, le=100)
    stream_max: int = Field(2000, ge=1)
    # A stream ticket must be redeemed this soon (it is single-use).
    stream_ticket_ttl_s: float = Field(30.0, gt=0, le=300)

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url_shape(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("WHISTLE_SMTP_URL must look like smtp://[user:password@]host[:port]")
        return value

    @property
    def webhooks_may_reach_loopback(self) -> bool:
        """The SSRF guard is always on; only development lets a webhook reach this machine
        (so people can try one locally). Private and link-local ranges are refused always.
        There is deliberately no setting to turn the guard off."""
        return not self.is_production
