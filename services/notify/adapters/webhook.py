"""Webhook delivery: POST the notification JSON, signed, with a timeout and an SSRF guard."""

import asyncio
import hashlib
import hmac
import socket
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.notify.domain.targets import RefusedTarget, check_addresses, parse_webhook_url

SIGNATURE_HEADER = "X-Whistle-Signature"

Resolver = Callable[[str, int], Awaitable[list[str]]]


class DeliveryFailed(Exception):
    """The receiver did not take the delivery (error status, timeout, connection): retry."""


def sign(secret: bytes, body: bytes) -> str:
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


async def resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def guard(url: str, resolver: Resolver = resolve, *, allow_loopback: bool = False) -> str:
    """Raise RefusedTarget unless every address the URL's host resolves to is public
    (or loopback, with `allow_loopback`); returns the address to connect to."""
    _, host, port = parse_webhook_url(url)
    try:
        addresses = await resolver(host, port)
    except OSError as error:
        raise DeliveryFailed(f"cannot resolve '{host}': {error}") from error
    check_addresses(host, addresses, allow_loopback=allow_loopback)
    return addresses[0]


def pinned(url: str, address: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The request for `url` sent to the checked `address`: (url, headers, extensions).

    Connecting to the address that was checked, not to whatever the name resolves to a
    moment later, closes the DNS-rebinding way around the guard. The Host header and the
    TLS server name (SNI, certificate check) stay those of the original host.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    literal = f"[{address}]" if ":" in address else address
    userinfo, _, hostport = parts.netloc.rpartition("@")
    netloc = (f"{userinfo}@" if userinfo else "") + literal
    if parts.port is not None:
        netloc += f":{parts.port}"
    headers = {"Host": hostport}
    return urlunsplit(parts._replace(netloc=netloc)), headers, {"sni_hostname": host}


class WebhookSender:
    def __init__(
        self,
        secret: bytes,
        *,
        timeout_s: float,
        allow_loopback: bool = False,
        resolver: Resolver = resolve,
    ) -> None:
        self._secret = secret
        self._timeout_s = timeout_s
        self._allow_loopback = allow_loopback
        self._resolver = resolver
        # No redirects (a 3xx could point past the SSRF guard), no proxies from the env.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s), follow_redirects=False, trust_env=False
        )

    async def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST `body`; returns the status on 2xx, raises DeliveryFailed or RefusedTarget."""
        parse_webhook_url(url)
        # Always guarded, in every environment: the address checked is the one connected to.
        address = await guard(url, self._resolver, allow_loopback=self._allow_loopback)
        url, pinned_headers, extensions = pinned(url, address)
        request_headers = {
            **headers,
            **pinned_headers,
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(self._secret, body),
        }
        try:
            # The overall bound also covers a receiver that trickles its answer byte by byte.
            async with asyncio.timeout(self._timeout_s):
                response = await self._client.post(
                    url, content=body, headers=request_headers, extensions=extensions
                )
        except (TimeoutError, httpx.TimeoutException) as error:
            raise DeliveryFailed(f"timed out after {self._timeout_s:g}s") from error
        except httpx.HTTPError as error:
            raise DeliveryFailed(f"{type(error).__name__}: {error}") from error
        if not 200 <= response.status_code < 300:
            raise DeliveryFailed(f"receiver answered {response.status_code}")
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()


__all__ = ["DeliveryFailed", "RefusedTarget", "WebhookSender", "guard", "sign"]
