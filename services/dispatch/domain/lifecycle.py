"""The demand's status machine: which command or fact moves a demand where, and what is refused.

A demand is `open` until units reports its slots taken (`filled`), `in_progress` from the first
on-site check-in, and ends `completed` (the secretary confirms), `cancelled` (the secretary
calls it off) or `expired` (`ends_at` passed without completion). The three ends are final:
a command on a closed demand is refused, never silently ignored. Facts from units (fills,
reopenings, check-ins) arriving after the end are recorded but move the status no more.
"""

from dataclasses import dataclass
from typing import Literal

from services.dispatch.domain.refusals import DemandClosed, DemandNotStarted, SlotsBelowAccepted
from shared.events.catalogue import Level

Status = Literal["open", "filled", "in_progress", "completed", "cancelled", "expired"]


CLOSED: frozenset[Status] = frozenset({"completed", "cancelled", "expired"})
# Where the whistle goes when nobody answers at the current level.
NEXT_LEVEL: dict[Level, Level] = {"community": "street", "street": "district"}


@dataclass(frozen=True)
class Lifecycle:
    """What the status depends on: the end reached (if any), a check-in seen, the fill."""

    status: Status
    filled: int
    slots: int

    @property
    def closed(self) -> bool:
        return self.status in CLOSED


def _closed(state: Lifecycle, action: str) -> DemandClosed:
    return DemandClosed(f"the demand is already {state.status}: {action}")


def with_fill(state: Lifecycle, filled: int) -> Lifecycle:
    """Units' count of accepted people changed: `open` <-> `filled` follows it."""
    filled = max(0, min(filled, state.slots))
    if state.closed or state.status == "in_progress":
        return Lifecycle(state.status, filled, state.slots)
    return Lifecycle("filled" if filled >= state.slots else "open", filled, state.slots)


def start(state: Lifecycle) -> Lifecycle:
    """The first on-site check-in: the work has begun."""
    if state.closed or state.status == "in_progress":
        return state
    return Lifecycle("in_progress", state.filled, state.slots)


def cancel(state: Lifecycle) -> Lifecycle:
    if state.closed:
        raise _closed(state, "it cannot be cancelled")
    return Lifecycle("cancelled", state.filled, state.slots)


def complete(state: Lifecycle) -> Lifecycle:
    if state.closed:
        raise _closed(state, "it cannot be completed")
    if state.status == "open" and state.filled == 0:
        raise DemandNotStarted(
            "nobody has claimed or checked in for this demand yet: cancel it instead",
        )
    return Lifecycle("completed", state.filled, state.slots)


def resize(state: Lifecycle, slots: int) -> Lifecycle:
    """A secretary's edit of a live demand: never below the people already accepted; the
    status follows the new count (`filled` <-> `open`)."""
    if state.closed:
        raise _closed(state, "it cannot be edited")
    if slots < state.filled:
        raise SlotsBelowAccepted(slots, state.filled)
    return with_fill(Lifecycle(state.status, state.filled, slots), state.filled)


def expire(state: Lifecycle) -> Lifecycle | None:
    """`ends_at` passed: an unfinished demand expires (None: nothing to do, it was closed)."""
    if state.closed:
        return None
    return Lifecycle("expired", state.filled, state.slots)


def should_escalate(state: Lifecycle, level: Level) -> Level | None:
    """The next level while slots are open and nobody has started; None stops the ladder."""
    if state.status != "open":
        return None
    return NEXT_LEVEL.get(level)


def expires_at_end(state: Lifecycle) -> bool:
    """At `ends_at`: a demand that never started expires; one in progress gets a grace period
    for the secretary to confirm it (they confirm after the shift, not during it)."""
    return not state.closed and state.status != "in_progress"
