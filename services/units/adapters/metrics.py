"""Units' own metrics, next to the shared ones on `GET /metrics`."""

from prometheus_client import Counter

CLAIMS_DECIDED = Counter(
    "whistle_units_claims_total",
    "Claims decided: accepted, waitlisted, or the refusal's problem slug",
    ["outcome"],
)
