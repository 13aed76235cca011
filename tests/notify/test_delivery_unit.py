"""Delivery helpers without I/O: backoff, SSRF checks, signatures, settings."""

import hashlib
import hmac
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import ValidationError

from services.notify.adapters.channels import webhook_body
from services.notify.adapters.email import SmtpServer
from services.notify.adapters.webhook import (
    MAX_RESPONSE_BYTES,
    WebhookSender,
    guard,
    pinned,
    read_bounded,
    sign,
)
from services.notify.config import NotifySettings
from services.notify.domain.refusals import RefusedTarget
from services.notify.domain.rules import exhausted, next_attempt_at
from services.notify.domain.targets import check_addresses, parse_webhook_url
from shared.settings import DEV_JWT_SECRET

pytestmark = pytest.mark.unit

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(7)
    delays = [
        (next_attempt_at(NOW, n, base_s=1, max_s=30, rng=rng) - NOW).total_seconds()
        for n in range(1, 9)
    ]
    for attempts, delay in enumerate(delays, start=1):
        ceiling = min(30, 2 ** (attempts - 1))
        assert ceiling / 2 <= delay <= ceiling
    spread = {next_attempt_at(NOW, 4, base_s=1, max_s=30, rng=rng) for _ in range(20)}
    assert len(spread) > 10  # jitter: retries of many deliveries do not line up
    assert exhausted(5, 5)
    assert not exhausted(4, 5)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.9",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "0.0.0.0",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "100.64.0.1",  # carrier-grade NAT
        "224.0.0.1",
    ],
)
def test_private_loopback_and_link_local_targets_are_refused(address: str) -> None:
    with pytest.raises(RefusedTarget):
        check_addresses("hooks.example", [address])


def test_public_targets_pass_and_one_bad_address_among_many_refuses() -> None:
    check_addresses("hooks.example", ["93.184.216.34", "2606:2800:220:1::1"])
    with pytest.raises(RefusedTarget):
        check_addresses("hooks.example", ["93.184.216.34", "10.0.0.1"])
    with pytest.raises(RefusedTarget):
        check_addresses("hooks.example", [])


@pytest.mark.parametrize("url", ["ftp://x.example/", "file:///etc/passwd", "http:///nohost"])
def test_only_http_urls_with_a_host_are_webhooks(url: str) -> None:
    with pytest.raises(RefusedTarget):
        parse_webhook_url(url)


async def test_the_guard_resolves_the_host_and_checks_every_address() -> None:
    asked: list[tuple[str, int]] = []

    async def resolver(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return {"public.example": ["93.184.216.34"], "sneaky.example": ["127.0.0.1"]}[host]

    await guard("https://public.example/hook", resolver)
    with pytest.raises(RefusedTarget, match=r"127\.0\.0\.1"):
        await guard("http://sneaky.example:8080/hook", resolver)
    assert asked == [("public.example", 443), ("sneaky.example", 8080)]
    # A literal address resolves to itself with the real resolver.
    with pytest.raises(RefusedTarget):
        await guard("http://127.0.0.1:9/hook")
    with pytest.raises(RefusedTarget):
        await guard("http://localhost:9/hook")


async def test_a_production_sender_refuses_before_connecting() -> None:
    sender = WebhookSender(timeout_s=1)
    try:
        with pytest.raises(RefusedTarget):
            await sender.send("http://localhost:9/hook", b"{}", {}, "whsec_k")
        with pytest.raises(RefusedTarget):
            await sender.send("ftp://hooks.example/", b"{}", {}, "whsec_k")
    finally:
        await sender.close()


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.8/hook",
        "http://192.168.1.1/hook",
        "http://172.16.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata endpoint
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0:9/hook",
    ],
)
async def test_a_development_sender_refuses_private_and_link_local_ranges(url: str) -> None:
    sender = WebhookSender(timeout_s=1, allow_loopback=True)
    try:
        with pytest.raises(RefusedTarget, match="non-public"):
            await sender.send(url, b"{}", {}, "whsec_k")
    finally:
        await sender.close()


async def test_development_lets_a_webhook_reach_loopback_only() -> None:
    await guard("http://127.0.0.1:9/hook", allow_loopback=True)
    await guard("http://[::1]:9/hook", allow_loopback=True)
    check_addresses("mapped.example", ["::ffff:127.0.0.1"], allow_loopback=True)
    with pytest.raises(RefusedTarget):
        # One private address among loopback ones still refuses the host.
        check_addresses("mixed.example", ["127.0.0.1", "10.1.2.3"], allow_loopback=True)


@pytest.mark.parametrize(
    ("url", "address", "expected_url", "host"),
    [
        (
            "https://hooks.example/a?b=1",
            "93.184.216.34",
            "https://93.184.216.34/a?b=1",
            "hooks.example",
        ),
        (
            "http://u:p@hooks.example:8080/a",
            "2606:2800:220:1::1",
            "http://u:p@[2606:2800:220:1::1]:8080/a",
            "hooks.example:8080",
        ),
    ],
)
def test_a_guarded_request_goes_to_the_checked_address_under_its_own_name(
    url: str, address: str, expected_url: str, host: str
) -> None:
    sent_url, headers, extensions = pinned(url, address)
    assert sent_url == expected_url
    assert headers == {"Host": host}
    assert extensions == {"sni_hostname": "hooks.example"}


def test_the_signature_is_the_hex_hmac_sha256_of_the_timestamp_dot_raw_body() -> None:
    body = webhook_body({"b": 1, "a": "哨"})
    expected = hmac.new(b"whsec_k", b"1767225600." + body, hashlib.sha256).hexdigest()
    assert sign("whsec_k", body, 1767225600) == f"t=1767225600,v1={expected}"
    assert sign("whsec_k", body, 1767225601) != sign("whsec_k", body, 1767225600)
    assert body == webhook_body({"a": "哨", "b": 1})  # the same bytes on every attempt


def test_there_is_no_shared_webhook_secret_to_configure() -> None:
    # Each receiver has its own secret; the old WHISTLE_WEBHOOK_SECRET is not a setting.
    assert "webhook_secret" not in NotifySettings.model_fields
    settings = NotifySettings(env="production", jwt_secret="j" * 32)
    assert not settings.webhooks_may_reach_loopback
    development = NotifySettings(env="development", jwt_secret=DEV_JWT_SECRET)
    assert development.webhooks_may_reach_loopback


def test_there_is_no_switch_that_turns_the_ssrf_guard_off() -> None:
    switches = [name for name in NotifySettings.model_fields if "private" in name or "ssrf" in name]
    assert switches == []
    assert "allow_loopback" in WebhookSender.__init__.__code__.co_varnames
    assert "refuse_private" not in WebhookSender.__init__.__code__.co_varnames


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert NotifySettings().port == 8003
    assert timedelta(seconds=NotifySettings().reminder_lead_s) == timedelta(hours=2, minutes=15)
    monkeypatch.setenv("WHISTLE_NOTIFY_PORT", "9103")
    monkeypatch.setenv("WHISTLE_SMTP_URL", "smtps://me%40x:p%3Ass@mail.example")
    settings = NotifySettings()
    assert settings.port == 9103
    assert settings.smtp_url is not None
    server = SmtpServer.from_url(settings.smtp_url)
    assert (server.hostname, server.port, server.use_tls) == ("mail.example", 465, True)
    assert (server.username, server.password) == ("me@x", "p:ss")
    with pytest.raises(ValidationError, match="WHISTLE_SMTP_URL"):
        NotifySettings(smtp_url="mail.example:25")
    assert NotifySettings(smtp_url="").smtp_url is None


async def test_a_receiver_answer_is_read_up_to_64_kib_only() -> None:
    produced = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal produced
        while True:  # a receiver that never stops answering
            produced += 1
            yield b"x" * 4096

    response = httpx.Response(200, stream=_Stream(endless()))
    read = await read_bounded(response)
    assert read == MAX_RESPONSE_BYTES == 64 * 1024
    assert produced * 4096 <= MAX_RESPONSE_BYTES + 4096


class _Stream(httpx.AsyncByteStream):
    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._chunks:
            yield chunk
