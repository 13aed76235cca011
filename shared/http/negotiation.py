"""HTTP semantics shared by every service (RFC 9110): content negotiation with q-values,
entity-tag comparison, and the integer bound MongoDB can store."""

import re
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator

from shared.http.problems import ProblemError

# MongoDB stores 8-byte signed integers: a larger number cannot even be compared in a query.
MAX_INT64 = 2**63 - 1
# `*` or a list of entity tags, as RFC 9110 writes them (the schema of If-Match/If-None-Match).
ENTITY_TAGS = r'^\s*(\*|(W/)?"[^"]*"(\s*,\s*(W/)?"[^"]*")*)\s*$'


_RFC3339_START = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}")


def _rfc3339_text(value: Any) -> Any:
    # pydantic would also take a number of seconds since 1970; the contract says RFC 3339.
    if not isinstance(value, str) or not _RFC3339_START.match(value):
        raise ValueError("use an RFC 3339 time with an offset, e.g. 2026-03-01T08:00:00+08:00")
    return value


# A time given as a query parameter: RFC 3339 with an offset, nothing else.
Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_rfc3339_text)]


def _ranges(accept: str) -> list[tuple[str, float, int]]:
    """(media range, q, specificity) of each element of an Accept header."""
    ranges = []
    for element in accept.split(","):
        media, *params = (part.strip() for part in element.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        media = media.lower()
        specificity = 0 if media == "*/*" else 1 if media.endswith("/*") else 2
        ranges.append((media, q, specificity))
    return ranges


def _quality(offer: str, ranges: list[tuple[str, float, int]]) -> float:
    """The q of the most specific range that matches `offer` (0 when none does)."""
    kind = offer.split("/", 1)[0]
    best: tuple[int, float] | None = None
    for media, q, specificity in ranges:
        if media in (offer, f"{kind}/*", "*/*") and (best is None or specificity > best[0]):
            best = (specificity, q)
    return best[1] if best else 0.0


def negotiate(accept: str | None, offers: Sequence[str]) -> str:
    """The offer the client prefers (ties go to the first offer); 406 when none is acceptable.
    No Accept header means anything goes."""
    if accept is None or not accept.strip():
        return offers[0]
    ranges = _ranges(accept)
    scored = [(_quality(offer, ranges), -index, offer) for index, offer in enumerate(offers)]
    q, _, offer = max(scored)
    if q <= 0:
        raise ProblemError(
            406,
            "not-acceptable",
            "Not acceptable",
            f"this resource is available as {', '.join(offers)}",
        )
    return offer


def entity_tags(header: str) -> list[str] | None:
    """The entity tags of an If-Match / If-None-Match list, None for `*` (RFC 9110 13.1)."""
    if header.strip() == "*":
        return None
    tags = []
    for raw in header.split(","):
        tag = raw.strip()
        if not tag:
            continue
        if not (tag.removeprefix("W/").startswith('"') and tag.endswith('"') and len(tag) >= 2):
            raise ProblemError(
                400,
                "invalid-precondition",
                "Invalid precondition",
                'If-Match and If-None-Match take entity tags such as "3" (the ETag of GET)',
            )
        tags.append(tag)
    return tags


def strong_match(tags: list[str] | None, etag: str) -> bool:
    """If-Match: the strong comparison; a weak tag (W/"3") never matches."""
    return tags is None or any(not tag.startswith("W/") and tag == etag for tag in tags)


def weak_match(tags: list[str] | None, etag: str) -> bool:
    """If-None-Match: the weak comparison (W/"3" matches "3")."""
    return tags is None or any(tag.removeprefix("W/") == etag.removeprefix("W/") for tag in tags)
