"""Email delivery over SMTP (aiosmtplib), when `WHISTLE_SMTP_URL` is set."""

from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from services.notify.adapters.webhook import DeliveryFailed


@dataclass(frozen=True)
class SmtpServer:
    hostname: str
    port: int
    use_tls: bool
    username: str | None
    password: str | None

    @classmethod
    def from_url(cls, url: str) -> "SmtpServer":
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("WHISTLE_SMTP_URL must look like smtp://[user:pass@]host[:port]")
        use_tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname,
            port=parts.port or (465 if use_tls else 25),
            use_tls=use_tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class EmailSender:
    def __init__(self, server: SmtpServer, sender: str, *, timeout_s: float) -> None:
        self._server = server
        self._sender = sender
        self._timeout_s = timeout_s

    async def send(self, to: str, subject: str, text: str, message_id: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        # Stable per notification, so a mail client can drop the rare repeat after a crash.
        message["Message-ID"] = f"<{message_id}@whistle>"
        message.set_content(text)
        try:
            await aiosmtplib.send(
                message,
                hostname=self._server.hostname,
                port=self._server.port,
                username=self._server.username,
                password=self._server.password,
                use_tls=self._server.use_tls,
                timeout=self._timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
