"""Notify's one refusal table: each domain refusal, the problem it answers with."""

from services.notify.domain.refusals import (
    InvalidLastEventId,
    NoInbox,
    StreamsFull,
    TooManyStreams,
    UnknownStreamTicket,
)
from shared.http.problems import Refusal, RefusalTable

REFUSALS: RefusalTable = {
    NoInbox: Refusal(403, "forbidden", "Forbidden"),
    TooManyStreams: Refusal(429, "too-many-streams", "Too many streams"),
    StreamsFull: Refusal(503, "busy", "Busy"),
    InvalidLastEventId: Refusal(400, "invalid-last-event-id", "Invalid Last-Event-ID"),
    UnknownStreamTicket: Refusal(401, "unauthorized", "Not authenticated"),
}
