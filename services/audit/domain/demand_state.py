"""A demand as it stood, rebuilt by folding its events in log order (pure: no I/O).

`fold(events)` is what `GET /v1/demands/{id}/state` answers and what the responsiveness report
scores, so the two can never disagree. Events are the stored wire dicts. The log records
arrival order, which can put a claim before the whistle it answers (two producers, one
queue), so a claim event on an unknown demand starts a partial state that the later
`demand.published` completes. An event whose `data` does not fit its catalogue model changes
nothing: the log keeps it, the fold cannot interpret it.
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from services.audit.domain.wire import demand_id_of, event_time
from shared.clock import as_utc
from shared.events import catalogue as c

DemandStatus = Literal["open", "filled", "in_progress", "completed", "cancelled", "expired"]
ClaimStatus = Literal[
    "waitlisted", "accepted", "withdrawn", "released", "checked_in", "completed", "no_show"
]
CLOSED: frozenset[str] = frozenset({"completed", "cancelled", "expired"})


@dataclass(frozen=True)
class ClaimState:
    claim_id: str
    claimant_type: str
    claimant_id: str
    headcount: int
    status: ClaimStatus
    accepted_at: datetime | None = None
    checked_in_at: datetime | None = None
    completed_at: datetime | None = None
    no_show: bool = False
    hours: float = 0.0
    person_times: int = 0

    @property
    def holds_slots(self) -> bool:
        """Counted as filling the demand: accepted and not given back by the claimant.

        A claim released because the demand was cancelled still filled it until then.
        """
        return self.accepted_at is not None and self.status != "withdrawn"

    def as_dict(self) -> dict[str, Any]:
        return {
            "claim_id": self.claim_id,
            "claimant": {"type": self.claimant_type, "id": self.claimant_id},
            "headcount": self.headcount,
            "status": self.status,
            "accepted_at": _iso(self.accepted_at),
            "checked_in_at": _iso(self.checked_in_at),
            "completed_at": _iso(self.completed_at),
            "hours": self.hours,
            "person_times": self.person_times,
        }


@dataclass(frozen=True)
class DemandState:
    demand_id: str
    community_id: str | None = None
    published: bool = False
    title: str | None = None
    kind: str | None = None
    priority: str | None = None
    skills: tuple[str, ...] = ()
    slots: int = 0
    filled: int = 0
    peak_filled: int = 0
    status: DemandStatus = "open"
    level: str = "community"
    whistle_at: datetime | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    fill_by: datetime | None = None
    first_claim_at: datetime | None = None
    updated_at: datetime | None = None
    series_id: str | None = None
    events: int = 0
    claims: Mapping[str, ClaimState] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "demand_id": self.demand_id,
            "community_id": self.community_id,
            "title": self.title,
            "kind": self.kind,
            "priority": self.priority,
            "skills": list(self.skills),
            "status": self.status,
            "level": self.level,
            "slots": self.slots,
            "filled": self.filled,
            "whistle_at": _iso(self.whistle_at),
            "starts_at": _iso(self.starts_at),
            "ends_at": _iso(self.ends_at),
            "fill_by": _iso(self.fill_by),
            "first_claim_at": _iso(self.first_claim_at),
            "updated_at": _iso(self.updated_at),
            "series_id": self.series_id,
            "events": self.events,
            "claimants": [claim.as_dict() for claim in self.claims.values()],
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def fold(events: Iterable[Mapping[str, Any]], demand_id: str) -> DemandState | None:
    """The demand after every given event of it, in the order given; None when none applied."""
    state: DemandState | None = None
    for event in events:
        state = apply(state, event, demand_id)
    return state


def apply(
    state: DemandState | None, event: Mapping[str, Any], demand_id: str
) -> DemandState | None:
    """One step of the fold; events of other demands and non-demand events change nothing."""
    model = c.CATALOGUE.get(str(event.get("type")))
    if model is None or demand_id_of(event) != demand_id:
        return state
    try:
        data = c.read_data(model, dict(event["data"]), int(event.get("dataversion", 1)))
        at = event_time(event)
    except (ValidationError, ValueError, KeyError, TypeError):
        return state
    current = state or DemandState(demand_id=demand_id)
    step = _STEPS.get(type(data))
    if step is None:
        return state
    moved = step(current, data, at)
    return replace(
        moved,
        community_id=moved.community_id or getattr(data, "community_id", None),
        updated_at=at,
        events=current.events + 1,
    )


def _published(state: DemandState, data: c.DemandPublished, at: datetime) -> DemandState:
    return replace(
        state,
        published=True,
        community_id=data.community_id,
        title=data.title,
        kind=data.kind,
        priority=data.priority,
        slots=data.slots,
        level=data.level,
        whistle_at=at,
        skills=tuple(data.skills),
        starts_at=as_utc(data.starts_at),
        ends_at=as_utc(data.ends_at),
        fill_by=as_utc(data.fill_by),
        series_id=data.series_id,
    )


def _updated(state: DemandState, data: c.DemandUpdated, at: datetime) -> DemandState:
    """A secretary's edit: the editable fields as the event states them (all of them, so the
    state after it needs no earlier edit; the log's order is the order they were applied)."""
    return replace(
        state,
        title=data.title,
        slots=data.slots,
        priority=data.priority,
        skills=tuple(data.skills),
        fill_by=as_utc(data.fill_by),
    )


def _escalated(state: DemandState, data: c.DemandEscalated, at: datetime) -> DemandState:
    return replace(state, level=data.to_level, **_counts(state, data.filled, data.slots))


def _filled(state: DemandState, data: c.DemandFilled, at: datetime) -> DemandState:
    status = state.status if state.status in CLOSED else "filled"
    return replace(state, status=status, **_counts(state, data.filled, data.slots))


def _reopened(state: DemandState, data: c.DemandReopened, at: datetime) -> DemandState:
    status = state.status if state.status in CLOSED else "open"
    return replace(state, status=status, **_counts(state, data.filled, data.slots))


def _closed(status: DemandStatus) -> Callable[[DemandState, Any, datetime], DemandState]:
    def step(state: DemandState, data: c.EventData, at: datetime) -> DemandState:
        return replace(state, status=status)

    return step


def _counts(state: DemandState, filled: int, slots: int) -> dict[str, Any]:
    return {"filled": filled, "slots": slots, "peak_filled": max(state.peak_filled, filled)}


def _with_claim(state: DemandState, claim: ClaimState, **changes: Any) -> DemandState:
    return replace(state, claims={**state.claims, claim.claim_id: claim}, **changes)


def _claim_of(state: DemandState, data: c.ClaimData) -> ClaimState:
    return state.claims.get(data.claim_id) or ClaimState(
        claim_id=data.claim_id,
        claimant_type=data.claimant.type,
        claimant_id=data.claimant.id,
        headcount=data.headcount,
        status="accepted",
    )


def _accepted(
    state: DemandState, data: c.ClaimAccepted | c.ClaimPromoted, at: datetime
) -> DemandState:
    claim = _claim_of(state, data)
    claim = replace(
        claim, status="accepted", headcount=data.headcount, accepted_at=claim.accepted_at or at
    )
    first = min(state.first_claim_at, at) if state.first_claim_at else at
    return _with_claim(
        state, claim, first_claim_at=first, **_counts(state, data.filled, data.slots)
    )


def _waitlisted(state: DemandState, data: c.ClaimWaitlisted, at: datetime) -> DemandState:
    return _with_claim(state, replace(_claim_of(state, data), status="waitlisted"))


def _withdrawn(state: DemandState, data: c.ClaimWithdrawn, at: datetime) -> DemandState:
    claim = replace(_claim_of(state, data), status="withdrawn")
    return _with_claim(state, claim, **_counts(state, data.filled, data.slots))


def _released(state: DemandState, data: c.ClaimReleased, at: datetime) -> DemandState:
    return _with_claim(state, replace(_claim_of(state, data), status="released"))


def _checked_in(state: DemandState, data: c.ClaimCheckedIn, at: datetime) -> DemandState:
    claim = replace(
        _claim_of(state, data), status="checked_in", checked_in_at=as_utc(data.checked_in_at)
    )
    status = "in_progress" if state.status in ("open", "filled") else state.status
    return _with_claim(state, claim, status=status)


def _completed(state: DemandState, data: c.ClaimCompleted, at: datetime) -> DemandState:
    claim = replace(
        _claim_of(state, data),
        status="completed",
        completed_at=at,
        hours=data.hours,
        person_times=data.person_times,
    )
    return _with_claim(state, claim)


def _no_show(state: DemandState, data: c.ClaimNoShow, at: datetime) -> DemandState:
    return _with_claim(state, replace(_claim_of(state, data), status="no_show", no_show=True))


Step = Callable[[DemandState, Any, datetime], DemandState]

_STEPS: dict[type[c.EventData], Step] = {
    c.DemandPublished: _published,
    c.DemandEscalated: _escalated,
    c.DemandUpdated: _updated,
    c.DemandFilled: _filled,
    c.DemandReopened: _reopened,
    c.DemandCancelled: _closed("cancelled"),
    c.DemandCompleted: _closed("completed"),
    c.DemandExpired: _closed("expired"),
    c.ClaimAccepted: _accepted,
    c.ClaimPromoted: _accepted,
    c.ClaimWaitlisted: _waitlisted,
    c.ClaimWithdrawn: _withdrawn,
    c.ClaimReleased: _released,
    c.ClaimCheckedIn: _checked_in,
    c.ClaimCompleted: _completed,
    c.ClaimNoShow: _no_show,
}
