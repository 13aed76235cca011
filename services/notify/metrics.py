"""Notify's own Prometheus metrics (served with the shared ones on `GET /metrics`)."""

from prometheus_client import Counter

DELIVERY_ATTEMPTS = Counter(
    "whistle_notify_delivery_attempts_total",
    "Webhook and email delivery attempts, by outcome (sent, retry, dead)",
    ["channel", "outcome"],
)
