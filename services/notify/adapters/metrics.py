"""Notify's own Prometheus metrics (served with the shared ones on `GET /metrics`)."""

from prometheus_client import Counter, Gauge

DELIVERY_ATTEMPTS = Counter(
    "whistle_notify_delivery_attempts_total",
    "Webhook and email delivery attempts, by outcome (sent, retry, dead)",
    ["channel", "outcome"],
)

STREAMS_OPEN = Gauge("whistle_notify_streams_open", "SSE inbox streams open in this process")
STREAM_WATCH_ROUNDS = Counter(
    "whistle_notify_stream_watch_rounds_total",
    "Rounds of the process's one inbox-counter query for all its open streams",
)
STREAM_INBOX_READS = Counter(
    "whistle_notify_stream_inbox_reads_total",
    "Inbox reads made by SSE streams (one when a stream opens, then only when woken)",
)
