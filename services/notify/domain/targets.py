"""SSRF guard: which webhook addresses may be called.

Only public addresses, always; development (`allow_loopback`) also lets a webhook reach this
machine's loopback, never a private or link-local range (another host, a cloud metadata
endpoint)."""

import ipaddress
from urllib.parse import urlsplit

from services.notify.domain.refusals import RefusedTarget

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public(address: IPAddress) -> bool:
    """False for private, loopback, link-local (cloud metadata), reserved and the like."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_public(address.ipv4_mapped)
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def parse_webhook_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an http(s) URL; anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise RefusedTarget(f"webhook URL scheme must be http or https, not '{parts.scheme}'")
    if not parts.hostname:
        raise RefusedTarget("webhook URL has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as error:
        raise RefusedTarget(f"webhook URL has a bad port: {error}") from None
    return parts.scheme, parts.hostname, port


def is_loopback(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_addresses(host: str, addresses: list[str], *, allow_loopback: bool = False) -> None:
    """Refuse the host if any address it resolves to is not public (or it resolves to none);
    with `allow_loopback` (development only) loopback addresses pass too."""
    if not addresses:
        raise RefusedTarget(f"webhook host '{host}' does not resolve")
    for raw in addresses:
        address = ipaddress.ip_address(raw.split("%", 1)[0])
        if allow_loopback and is_loopback(address):
            continue
        if not is_public(address):
            raise RefusedTarget(
                f"webhook host '{host}' resolves to {address}, a non-public address"
            )
