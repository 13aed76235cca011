"""Dispatch's ledger of the claims on one demand, built from units' events in any order.

Units owns the slot accounting; dispatch only mirrors it, from events that may arrive twice
or out of order. Each claim keeps a record with its headcount; a withdrawal or release is a
tombstone that a late `accepted` cannot revive. `filled` is derived from the live records.

Most of units' events also carry units' own count (`filled`) at the moment they happened.
That figure is trusted when it is the newest news about the demand's claims: then it already
includes events still in flight to us (so a demand shows `filled` as soon as units says so).
When a figureless fact is newer (a release), or two figures of the same instant disagree, the
ledger's own count is used until a newer figure arrives.

The ledger does not hold every claim: that list grew with each claim/withdraw cycle inside
the demand's document. It keeps the running totals (accepted headcount, whether anyone has
checked in) and only the records at hand, the ones the fact being applied names; the store
keeps one record per claim in a collection of its own, read by key.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

ClaimState = Literal["accepted", "withdrawn", "released"]
TOMBSTONES: frozenset[ClaimState] = frozenset({"withdrawn", "released"})


class ClaimRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    headcount: int
    state: ClaimState
    checked_in: bool = False


class FillFigure(BaseModel):
    """Units' count at an instant; `ambiguous` when another figure of that instant disagreed."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    filled: int
    ambiguous: bool = False


def _counted(record: ClaimRecord | None) -> int:
    return record.headcount if record is not None and record.state == "accepted" else 0


class ClaimLedger(BaseModel):
    model_config = ConfigDict(frozen=True)

    # The records at hand: those loaded for the fact being applied, and those it changed.
    claims: tuple[ClaimRecord, ...] = ()
    # Running totals over every claim on the demand, kept as each record changes.
    accepted_headcount: int = 0
    any_checked_in: bool = False
    figure: FillFigure | None = None
    # The newest fact without a figure that changed the count (a release, a late check-in).
    figureless_at: datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _totals_of_a_full_list(cls, value: Any) -> Any:
        # A demand stored before the ledger moved out kept every claim and no totals.
        if isinstance(value, dict) and value.get("claims") and "accepted_headcount" not in value:
            records = [ClaimRecord.model_validate(claim) for claim in value["claims"]]
            return {
                **value,
                "accepted_headcount": sum(_counted(record) for record in records),
                "any_checked_in": any(record.checked_in for record in records),
            }
        return value

    def record(self, claim_id: str) -> ClaimRecord | None:
        return next((claim for claim in self.claims if claim.id == claim_id), None)

    def at_hand(self, *records: ClaimRecord) -> "ClaimLedger":
        """The ledger with these stored records loaded (the totals already include them)."""
        return self.model_copy(update={"claims": records})

    def totals(self) -> "ClaimLedger":
        """What the demand's document keeps: everything but the records."""
        return self.model_copy(update={"claims": ()})

    @property
    def derived_filled(self) -> int:
        return self.accepted_headcount

    @property
    def checked_in(self) -> bool:
        return self.any_checked_in

    def filled(self, slots: int) -> int:
        figure = self.figure
        trusted = (
            figure is not None
            and not figure.ambiguous
            and (self.figureless_at is None or figure.at >= self.figureless_at)
        )
        count = figure.filled if trusted and figure is not None else self.derived_filled
        return max(0, min(count, slots))

    # --- facts from units ------------------------------------------------------------------

    def accepted(self, claim_id: str, headcount: int, at: datetime, filled: int) -> "ClaimLedger":
        """`claim.accepted` or `claim.promoted`: counts unless the claim already ended."""
        existing = self.record(claim_id)
        if existing is None:
            ledger = self._put(ClaimRecord(id=claim_id, headcount=headcount, state="accepted"))
        elif existing.state in TOMBSTONES:
            ledger = self
        else:
            ledger = self._put(existing.model_copy(update={"headcount": headcount}))
        return ledger._with_figure(at, filled)

    def withdrawn(self, claim_id: str, headcount: int, at: datetime, filled: int) -> "ClaimLedger":
        return self._end(claim_id, headcount, "withdrawn")._with_figure(at, filled)

    def released(self, claim_id: str, headcount: int, at: datetime) -> "ClaimLedger":
        ledger = self._end(claim_id, headcount, "released")
        if ledger.derived_filled == self.derived_filled:
            return ledger
        return ledger._with_figureless(at)

    def checked_in_claim(self, claim_id: str, headcount: int, at: datetime) -> "ClaimLedger":
        """A check-in implies the claim was accepted, even if that event is still on its way."""
        existing = self.record(claim_id)
        if existing is None:
            record = ClaimRecord(
                id=claim_id, headcount=headcount, state="accepted", checked_in=True
            )
            return self._put(record)._with_figureless(at)
        return self._put(existing.model_copy(update={"checked_in": True}))

    def figure_reported(self, at: datetime, filled: int) -> "ClaimLedger":
        """`demand.filled` / `demand.reopened`: units' count, nothing about any one claim."""
        return self._with_figure(at, filled)

    # --- helpers ---------------------------------------------------------------------------

    def _end(self, claim_id: str, headcount: int, state: ClaimState) -> "ClaimLedger":
        existing = self.record(claim_id)
        if existing is None:
            return self._put(ClaimRecord(id=claim_id, headcount=headcount, state=state))
        if existing.state in TOMBSTONES:
            return self  # the first end stands; a second says nothing new
        return self._put(existing.model_copy(update={"state": state}))

    def _put(self, record: ClaimRecord) -> "ClaimLedger":
        previous = self.record(record.id)
        if previous == record:
            return self
        if previous is None:
            claims = (*self.claims, record)
        else:
            claims = tuple(record if claim.id == record.id else claim for claim in self.claims)
        return self.model_copy(
            update={
                "claims": claims,
                "accepted_headcount": self.accepted_headcount
                + _counted(record)
                - _counted(previous),
                "any_checked_in": self.any_checked_in or record.checked_in,
            }
        )

    def _with_figure(self, at: datetime, filled: int) -> "ClaimLedger":
        current = self.figure
        if current is None or at > current.at:
            return self.model_copy(update={"figure": FillFigure(at=at, filled=filled)})
        if at == current.at and filled != current.filled:
            return self.model_copy(
                update={"figure": current.model_copy(update={"ambiguous": True})}
            )
        return self

    def _with_figureless(self, at: datetime) -> "ClaimLedger":
        if self.figureless_at is not None and self.figureless_at >= at:
            return self
        return self.model_copy(update={"figureless_at": at})
