"""Notify's refusals, one class per refusal, each carrying what its problem says.

Pure: no HTTP here; `entrypoints/problems.py` maps each to its status and problem type.
"""

from collections.abc import Mapping


class NoInbox(Exception):
    """A token whose role has no inbox (auditors, admins, a secretary without a community)."""

    def __init__(self, role: str) -> None:
        super().__init__(
            f"a '{role}' token has no inbox: inboxes belong to units, volunteers and "
            "secretaries (of a community, street or district)"
        )


class TooManyStreams(Exception):
    headers: Mapping[str, str] = {"Retry-After": "5"}

    def __init__(self, per_principal: int) -> None:
        super().__init__(
            f"this principal already has {per_principal} open streams; close one "
            "(or reuse it) before opening another"
        )


class StreamsFull(Exception):
    """This process serves its maximum of streams (another replica may have room)."""

    headers: Mapping[str, str] = {"Retry-After": "5"}

    def __init__(self, max_streams: int) -> None:
        super().__init__(
            f"this notify process serves its maximum of {max_streams} streams; "
            "retry shortly (another replica may have room)"
        )


class InvalidLastEventId(Exception):
    def __init__(self) -> None:
        super().__init__("Last-Event-ID must be the id of an event this stream sent (a number)")


class UnknownStreamTicket(Exception):
    headers: Mapping[str, str] = {"WWW-Authenticate": "Bearer"}

    def __init__(self) -> None:
        super().__init__(
            "the stream ticket is unknown, already used or expired: ask for a new one with "
            "POST /v1/inbox/stream-ticket"
        )


class RefusedTarget(ValueError):
    """The webhook URL may not be called: a permanent failure, never retried."""
