"""Audit's own Prometheus metrics, exposed with the shared ones on `GET /metrics`."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_APPENDED = Counter("whistle_audit_events_appended_total", "Events appended to the log")
DUPLICATES_IGNORED = Counter(
    "whistle_audit_duplicates_ignored_total", "Deliveries of events the log already holds"
)
HEAD_SEQ = Gauge(
    "whistle_audit_head_seq",
    "A partition's head seq after this process's last append to it",
    ["partition"],
)
BATCH_SIZE = Histogram(
    "whistle_audit_append_batch_size",
    "Events per append transaction (group commit, per partition)",
    buckets=(1, 2, 5, 10, 20, 50, 100),
)
