"""A small, hand-computable history: five demands in two communities, two units, a volunteer.

Times are given in +08:00 (Beijing) on purpose: the audit must compare instants, not strings.
The expected report figures are worked out by hand in `test_responsiveness.py`.
"""

from datetime import datetime, timedelta, timezone
from typing import Any

from shared.events import catalogue as c
from shared.events.envelope import CloudEvent, make_event

BEIJING = timezone(timedelta(hours=8))
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=BEIJING)  # 2026-03-01T00:00:00Z
PERIOD_FROM = T0 - timedelta(hours=1)
PERIOD_TO = T0 + timedelta(days=1)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


class History:
    """Builds events in order; `prefix` keeps ids unique when several tests share one log."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.events: list[CloudEvent] = []
        self._claims = 0

    def id(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def add(self, data: c.EventData, at: datetime, subject: str, actor: str = "tests") -> None:
        demand_id = getattr(data, "demand_id", None) or subject
        self.events.append(
            make_event(
                data,
                source="/whistle/tests",
                subject=subject,
                correlationid=demand_id,
                causationid=f"cause-{len(self.events)}",
                actor=actor,
                time=at,
            )
        )

    def whistle(self, demand: str, community: str, slots: int, at: datetime) -> None:
        data = c.DemandPublished(
            demand_id=self.id(demand),
            community_id=self.id(community),
            street="s-1",
            district="d-1",
            kind="staffing",
            title=f"demand {demand}",
            slots=slots,
            starts_at=at + timedelta(hours=2),
            ends_at=at + timedelta(hours=10),
            fill_by=at + timedelta(hours=1),
            priority="urgent",
            created_by="secretary",
        )
        self.add(data, at, self.id(demand))

    def claim_data(
        self, claim: str, demand: str, community: str, claimant: str, headcount: int
    ) -> dict[str, Any]:
        kind = "volunteer" if claimant.startswith("v-") else "unit"
        return {
            "claim_id": self.id(claim),
            "demand_id": self.id(demand),
            "community_id": self.id(community),
            "claimant": c.Claimant(type=kind, id=self.id(claimant)),
            "headcount": headcount,
        }

    def claim_event(
        self, model: type[c.EventData], claim: dict[str, Any], at: datetime, **extra: Any
    ) -> None:
        self.add(model(**claim, **extra), at, claim["demand_id"])


def scenario(prefix: str = "") -> History:
    h = History(prefix)
    north, south = "c-north", "c-south"
    # d1: north, 4 slots. u-a takes 2 after 5 min, u-b 2 after 20 min; u-b never shows.
    h.whistle("d1", north, 4, T0)
    a1 = h.claim_data("k1", "d1", north, "u-a", 2)
    b1 = h.claim_data("k2", "d1", north, "u-b", 2)
    h.claim_event(c.ClaimAccepted, a1, T0 + minutes(5), filled=2, slots=4)
    h.add(
        c.NotificationSent(
            notification_id=h.id("n1"),
            recipient=c.Recipient(type="secretary", id="sec-north"),
            channel="inbox",
            cause_event_id="x",
            cause_type="claim.accepted",
            demand_id=h.id("d1"),
            community_id=h.id(north),
        ),
        T0 + minutes(6),
        h.id("n1"),
    )
    h.claim_event(c.ClaimAccepted, b1, T0 + minutes(20), filled=4, slots=4)
    h.add(
        c.DemandFilled(demand_id=h.id("d1"), community_id=h.id(north), filled=4, slots=4),
        T0 + minutes(20),
        h.id("d1"),
    )
    h.claim_event(c.ClaimCheckedIn, a1, T0 + minutes(120), checked_in_at=T0 + minutes(120))
    h.claim_event(c.ClaimCompleted, a1, T0 + minutes(360), report="done", hours=4, person_times=2)
    h.claim_event(c.ClaimNoShow, b1, T0 + minutes(720))
    # d2: north, 2 slots, whistle at +1h. u-a takes 1 after 30 min and withdraws; v-1 comes.
    h.whistle("d2", north, 2, T0 + minutes(60))
    a2 = h.claim_data("k3", "d2", north, "u-a", 1)
    v2 = h.claim_data("k4", "d2", north, "v-1", 1)
    h.claim_event(c.ClaimAccepted, a2, T0 + minutes(90), filled=1, slots=2)
    h.claim_event(c.ClaimWithdrawn, a2, T0 + minutes(120), filled=0, slots=2)
    h.claim_event(c.ClaimAccepted, v2, T0 + minutes(180), filled=1, slots=2)
    h.claim_event(c.ClaimCheckedIn, v2, T0 + minutes(190), checked_in_at=T0 + minutes(190))
    h.claim_event(c.ClaimCompleted, v2, T0 + minutes(400), report="done", hours=3, person_times=1)
    # d3: south, 1 slot, whistle at +2h; u-b after an hour, completes.
    h.whistle("d3", south, 1, T0 + minutes(120))
    b3 = h.claim_data("k5", "d3", south, "u-b", 1)
    h.claim_event(c.ClaimAccepted, b3, T0 + minutes(180), filled=1, slots=1)
    h.claim_event(c.ClaimCheckedIn, b3, T0 + minutes(240), checked_in_at=T0 + minutes(240))
    h.claim_event(c.ClaimCompleted, b3, T0 + minutes(500), report="done", hours=2, person_times=1)
    h.add(
        c.DemandCompleted(demand_id=h.id("d3"), community_id=h.id(south)),
        T0 + minutes(510),
        h.id("d3"),
    )
    # d4: south, 3 slots, whistle at +3h, nobody comes, cancelled.
    h.whistle("d4", south, 3, T0 + minutes(180))
    h.add(
        c.DemandCancelled(demand_id=h.id("d4"), community_id=h.id(south), reason="rain"),
        T0 + minutes(300),
        h.id("d4"),
    )
    # d5: north, after the period: it must not count.
    h.whistle("d5", north, 1, T0 + timedelta(days=3))
    a5 = h.claim_data("k6", "d5", north, "u-a", 1)
    h.claim_event(c.ClaimAccepted, a5, T0 + timedelta(days=3, minutes=1), filled=1, slots=1)
    return h
