"""Turns a relay roster commits to units, and the people a unit names (issue 14).

When dispatch publishes a roster's turn (`demand.published` with `committed_unit_id`), units
records the unit's claim on its behalf, for every place of the turn, exactly as a claim the
unit made itself (`claim.accepted` with `committed_by`: dispatch's count and the escalation
ladder follow it as any other). The unit then accepts the turn or hands it back; handing
back withdraws the claim, so the places reopen and the demand escalates as usual.

A unit names the people it sends, and substitutes one for another, until check-in. The
names stay in units' claim; the audited events carry how many were named and a salted
digest (`members_digest`, as every claim event).
"""

from datetime import tzinfo

import structlog

from services.units.adapters import outgoing, repository
from services.units.domain import access, rules
from services.units.domain import commitments as do
from services.units.domain import refusals as no
from services.units.domain.model import Claim, Demand
from services.units.handlers import queries
from services.units.handlers.commands import _claim_to, _withdraw_found
from shared.auth import Principal
from shared.clock import utcnow
from shared.events.catalogue import (
    ClaimAccepted,
    Claimant,
    ClaimCommitmentAccepted,
    ClaimMembersNamed,
    ClaimMemberSubstituted,
)
from shared.events.digest import new_salt
from shared.http.problems import not_found
from shared.ids import new_id
from shared.store.unit_of_work import Tx

_log = structlog.get_logger("whistle.units")


async def commit_turn(tx: Tx, demand: Demand, unit_id: str, roster_id: str | None) -> Claim | None:
    """The unit's claim for a roster's turn, on its behalf. A unit that is gone, no longer
    serves the community or lacks a skill gets none: the turn stays open to anyone and
    escalates as any demand (logged, so the secretary's roster can be checked)."""
    # An edit that overtook the publication is applied by now: the places as they are.
    demand = await repository.get_demand(tx.db, demand.id, tx) or demand
    unit = await repository.get_unit(tx.db, unit_id, tx)
    why = None
    if unit is None:
        why = "unit not registered"
    else:
        served = await repository.get_communities(tx.db, queries.communities_served(unit), tx)
        if not rules.reaches(demand, served):
            why = "unit does not serve the community"
        elif rules.missing_skills(demand.skills, unit.skills):
            why = "unit lacks a skill"
    if why is not None:
        _log.warning("roster_turn_not_committed", demand_id=demand.id, unit_id=unit_id, why=why)
        return None
    taken = await repository.take_slots(tx, demand, demand.slots)
    if taken is None:
        _log.warning("roster_turn_not_committed", demand_id=demand.id, unit_id=unit_id, why="full")
        return None
    claim = Claim(
        id=new_id("clm"),
        demand_id=demand.id,
        community_id=demand.community_id,
        claimant=Claimant(type="unit", id=unit_id),
        headcount=demand.slots,
        members_salt=new_salt(),
        status="accepted",
        starts_at=demand.starts_at,
        ends_at=demand.ends_at,
        created_at=utcnow(),
        created_by=f"roster:{roster_id}" if roster_id else "roster",
        roster_id=roster_id,
    )
    await repository.insert_claim(tx, claim)
    outgoing.emit_claim(
        tx, ClaimAccepted, claim, filled=taken.accepted, slots=taken.slots, committed_by=roster_id
    )
    before = taken.model_copy(update={"accepted": taken.accepted - claim.headcount})
    outgoing.emit_fill_change(tx, before, taken)
    return claim


async def _committed(tx: Tx, claim_id: str, actor: Principal, action: str) -> Claim:
    found = await _claim_to(tx, claim_id, access.owns, actor, action, ("accepted",))
    if found.roster_id is None:
        raise do.NotCommitted(found)
    return found


async def accept_commitment(tx: Tx, command: do.AcceptCommitment, actor: Principal) -> Claim:
    """The unit takes on the turn; accepting again answers the claim as it is."""
    found = await _committed(tx, command.claim_id, actor, "accepting")
    if found.acknowledged_at is not None:
        return found
    accepted = await repository.move_claim(tx, found, ("accepted",), {"acknowledged_at": utcnow()})
    assert accepted.roster_id is not None
    outgoing.emit_claim(tx, ClaimCommitmentAccepted, accepted, roster_id=accepted.roster_id)
    return accepted


async def hand_back(tx: Tx, command: do.HandBack, actor: Principal, zone: tzinfo) -> Claim:
    """The unit cannot serve the turn after all: its places reopen (`claim.withdrawn`,
    `demand.reopened`) and the demand goes on up the ladder if nobody takes them."""
    found = await _committed(tx, command.claim_id, actor, "handing back")
    reason = f"{do.HAND_BACK_REASON}: {command.reason}" if command.reason else do.HAND_BACK_REASON
    return await _withdraw_found(tx, found, reason, zone)


async def _naming(tx: Tx, claim_id: str, actor: Principal) -> Claim:
    """The unit's own claim, while its members may still change."""
    found = await repository.get_claim(tx.db, claim_id, tx)
    if found is None:
        raise not_found("claim", claim_id)
    if not access.owns(actor, found):
        raise no.Forbidden(f"claim '{claim_id}' belongs to another claimant")
    if found.claimant.type != "unit":
        raise no.InvalidClaim("a volunteer names no members", "members")
    if found.status in do.MEMBERS_FIXED:
        raise do.MembersFixed(found, found.checked_in_at)
    if found.status not in do.MEMBERS_OPEN:
        raise no.InvalidClaimState(found, "naming members", do.MEMBERS_OPEN)
    return found


async def name_members(tx: Tx, command: do.NameMembers, actor: Principal) -> Claim:
    """The people the unit sends, replacing any named before (at most its headcount)."""
    found = await _naming(tx, command.claim_id, actor)
    members = do.checked_members(found, command.members)
    if members == found.members:
        return found
    named = await repository.move_claim(tx, found, (found.status,), {"members": members})
    outgoing.emit_claim(tx, ClaimMembersNamed, named)
    return named


async def substitute_member(tx: Tx, command: do.SubstituteMember, actor: Principal) -> Claim:
    """One named person replaced by another, in the same place on the sheet."""
    found = await _naming(tx, command.claim_id, actor)
    members = do.substituted(found, command.member, command.substitute)
    changed = await repository.move_claim(tx, found, (found.status,), {"members": members})
    outgoing.emit_claim(tx, ClaimMemberSubstituted, changed)
    return changed
