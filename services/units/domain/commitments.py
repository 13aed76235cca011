"""Relay rosters and named rosters on units' side (issue 14): the commands and refusals of a
turn committed to a unit (accept, hand back) and of the people a unit sends (name them,
substitute one for another until check-in). Pure: no I/O."""

from datetime import datetime

from services.units.domain.commands import Command
from services.units.domain.model import Claim, ClaimStatus
from services.units.domain.refusals import InvalidClaim, Refusal

# Until check-in a unit may change who it sends; from then on the sheet is what happened.
MEMBERS_OPEN: tuple[ClaimStatus, ...] = ("accepted", "waitlisted")
MEMBERS_FIXED: tuple[ClaimStatus, ...] = ("checked_in", "completed", "no_show")
HAND_BACK_REASON = "handed back to the roster"


class AcceptCommitment(Command):
    claim_id: str


class HandBack(Command):
    claim_id: str
    reason: str | None = None


class NameMembers(Command):
    claim_id: str
    members: tuple[str, ...]


class SubstituteMember(Command):
    claim_id: str
    member: str
    substitute: str


class NotCommitted(Refusal):
    """Accepting or handing back is for a turn a roster committed the unit to (409)."""

    def __init__(self, claim: Claim) -> None:
        super().__init__(
            f"claim '{claim.id}' was made by its claimant, not committed by a roster: "
            "withdraw it instead"
        )


class MembersFixed(Refusal):
    """Names change until check-in; after it they record who came (409)."""

    def __init__(self, claim: Claim, at: datetime | None) -> None:
        when = f" at {at.isoformat()}" if at is not None else ""
        super().__init__(
            f"claim '{claim.id}' was checked in{when} (it is {claim.status}): its members are "
            "fixed from check-in on"
        )


def clean_names(names: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Names as shown: inner whitespace collapsed; blank ones are an error, not dropped."""
    return tuple(" ".join(name.split()) for name in names)


def checked_members(
    claim: Claim, names: tuple[str, ...], field: str = "members"
) -> tuple[str, ...]:
    """The names a unit sends on this claim: none blank, none twice, no more than it
    committed people (422 on the field otherwise)."""
    cleaned = clean_names(names)
    if any(not name for name in cleaned):
        raise InvalidClaim("a member's name is blank", field)
    if len(set(cleaned)) != len(cleaned):
        raise InvalidClaim("a member is named twice", field)
    if len(cleaned) > claim.headcount:
        raise InvalidClaim(
            f"{len(cleaned)} members named; the claim is for {claim.headcount}", field
        )
    return cleaned


def substituted(claim: Claim, member: str, substitute: str) -> tuple[str, ...]:
    """The members with `substitute` in `member`'s place (same position on the sheet)."""
    out, replacement = clean_names([member, substitute])
    if out not in claim.members:
        # The detail names no one: a refusal's text may end up in logs.
        raise InvalidClaim(f"the member to replace is not named on claim '{claim.id}'", "member")
    if not replacement:
        raise InvalidClaim("the substitute's name is blank", "substitute")
    if replacement in claim.members:
        raise InvalidClaim("the substitute is already named on this claim", "substitute")
    return tuple(replacement if name == out else name for name in claim.members)
