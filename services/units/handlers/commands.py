"""Units' commands, one function each: check the rule, change the state, emit the event.

Each runs inside a unit of work (`tx`) and may be run again from the start on a write
conflict; a refusal (`domain/refusals.py`) aborts the transaction, so a refused claim stores
nothing and publishes nothing.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from services.units.adapters import outgoing, repository, zones_store
from services.units.domain import access, codes, rules, zone_rules
from services.units.domain import commands as do
from services.units.domain import refusals as no
from services.units.domain.model import (
    HOLDING_STATUSES,
    MAX_CLAIMS_PER_DEMAND,
    Claim,
    ClaimStatus,
    Community,
    Demand,
    EligibilityOverride,
    ErasedVolunteer,
    Unit,
    Volunteer,
)
from services.units.handlers import queries
from shared.auth import Principal
from shared.clock import utcnow
from shared.events.catalogue import (
    PRIVATE_TYPES,
    ClaimAccepted,
    Claimant,
    ClaimCheckedIn,
    ClaimCompleted,
    ClaimPromoted,
    ClaimWaitlisted,
    ClaimWithdrawn,
    Contact,
)
from shared.events.digest import new_salt
from shared.http.problems import not_found
from shared.ids import new_id
from shared.store.unit_of_work import RetryTransaction, Tx


@dataclass(frozen=True)
class Recorded[R: (Unit, Volunteer)]:
    """A registry record as a command left it, and its webhook secret if the command made
    one (the only answer that shows it)."""

    record: R
    new_secret: str | None


def _new_secret(before: str | None, after: Unit | Volunteer) -> str | None:
    return after.webhook_secret if after.webhook_secret != before else None


# --- registry -------------------------------------------------------------------------------


async def _known_communities(tx: Tx, community_ids: tuple[str, ...], field: str) -> None:
    known = await repository.get_communities(tx.db, community_ids, tx)
    unknown = sorted(set(community_ids) - {community.id for community in known})
    if unknown:
        raise no.UnknownCommunity(unknown[0], field)


def _registration(prefix: str, contact: Contact, actor: Principal) -> dict[str, Any]:
    """What units adds to a profile it registers: the id, who and when, the keys."""
    return {
        "id": new_id(prefix),
        "created_at": utcnow(),
        "created_by": actor.sub,
        "webhook_secret": codes.secret_for(contact, None),
        "salt": new_salt(),
    }


async def register_unit(tx: Tx, command: do.RegisterUnit, actor: Principal) -> Recorded[Unit]:
    await _known_communities(tx, command.communities, "communities")
    unit = Unit(
        **command.model_dump(exclude={"communities"}),
        communities=tuple(dict.fromkeys(command.communities)),
        **_registration("unit", command.contact, actor),
    )
    await repository.insert_unit(tx, unit)
    outgoing.emit_unit_registered(tx, unit)
    return Recorded(unit, unit.webhook_secret)


async def register_volunteer(
    tx: Tx, command: do.RegisterVolunteer, actor: Principal
) -> Recorded[Volunteer]:
    if not access.may_register_volunteer(actor, command.community_id):
        raise no.Forbidden(
            f"only the secretary of community '{command.community_id}' registers its volunteers"
        )
    await _known_communities(tx, (command.community_id,), "community_id")
    volunteer = Volunteer(**command.model_dump(), **_registration("vol", command.contact, actor))
    await repository.insert_volunteer(tx, volunteer)
    outgoing.emit_volunteer_registered(tx, volunteer)
    return Recorded(volunteer, volunteer.webhook_secret)


async def _unit(tx: Tx, unit_id: str) -> Unit:
    unit = await repository.get_unit(tx.db, unit_id, tx)
    if unit is None:
        raise not_found("unit", unit_id)
    return unit


# Fields a correction may set to null: the building, a volunteer's own limits, the birth year.
CLEARABLE = frozenset(
    {"building", "max_hours_per_day", "min_rest_hours", "max_consecutive_days", "birth_year"}
)


def _corrections(
    command: do.CorrectUnit | do.CorrectVolunteer, record: Unit | Volunteer
) -> dict[str, object]:
    """The stored fields a correction replaces: those given (a null `building` clears it)."""
    changes: dict[str, object] = {
        field: value
        for field in command.model_fields_set & set(type(record).model_fields)
        if (value := getattr(command, field)) is not None or field in CLEARABLE
    }
    if command.contact is not None:
        changes["webhook_secret"] = codes.secret_for(command.contact, record.webhook_secret)
    changes["version"] = record.version + 1
    return changes


def _rotated[R: (Unit, Volunteer)](record: R, kind: str) -> R:
    """The record with a new webhook secret; the old one stops signing at once."""
    if not record.contact.webhook_url:
        raise no.NoWebhook(kind, record.id)
    return record.model_copy(
        update={"webhook_secret": codes.new_webhook_secret(), "version": record.version + 1}
    )


async def correct_unit(tx: Tx, command: do.CorrectUnit, actor: Principal) -> Recorded[Unit]:
    unit = await _unit(tx, command.unit_id)
    if not access.may_correct_unit(actor):
        raise no.Forbidden("a unit's record is corrected by an admin")
    changes = _corrections(command, unit)
    if command.communities is not None:
        await _known_communities(tx, command.communities, "communities")
        changes["communities"] = tuple(dict.fromkeys(command.communities))
    corrected = unit.model_copy(update=changes)
    await repository.replace_unit(tx, corrected)
    outgoing.emit_unit_updated(tx, corrected)
    return Recorded(corrected, _new_secret(unit.webhook_secret, corrected))


async def rotate_unit_secret(
    tx: Tx, command: do.RotateUnitSecret, actor: Principal
) -> Recorded[Unit]:
    unit = await _unit(tx, command.unit_id)
    if not access.may_rotate_unit_secret(actor, unit):
        raise no.Forbidden("a unit's record is corrected by an admin or the unit itself")
    rotated = _rotated(unit, "unit")
    await repository.replace_unit(tx, rotated)
    outgoing.emit_unit_secret_rotated(tx, rotated)
    return Recorded(rotated, rotated.webhook_secret)


def _may_not_correct(volunteer: Volunteer) -> no.Forbidden:
    return no.Forbidden(
        f"only the secretary of community '{volunteer.community_id}' corrects its volunteers"
    )


async def correct_volunteer(
    tx: Tx, command: do.CorrectVolunteer, actor: Principal
) -> Recorded[Volunteer]:
    volunteer = await queries.volunteer_record(tx.db, command.volunteer_id, tx)
    fields = command.model_fields_set - {"volunteer_id"}
    if not access.may_correct_volunteer_fields(actor, volunteer, fields):
        raise _may_not_correct(volunteer)
    corrected = volunteer.model_copy(update=_corrections(command, volunteer))
    await repository.replace_volunteer(tx, corrected)
    outgoing.emit_volunteer_updated(tx, corrected)
    return Recorded(corrected, _new_secret(volunteer.webhook_secret, corrected))


async def rotate_volunteer_secret(
    tx: Tx, command: do.RotateVolunteerSecret, actor: Principal
) -> Recorded[Volunteer]:
    volunteer = await queries.volunteer_record(tx.db, command.volunteer_id, tx)
    if not access.may_rotate_volunteer_secret(actor, volunteer):
        raise _may_not_correct(volunteer)
    rotated = _rotated(volunteer, "volunteer")
    await repository.replace_volunteer(tx, rotated)
    outgoing.emit_volunteer_secret_rotated(tx, rotated)
    return Recorded(rotated, rotated.webhook_secret)


ERASURE_REASON = "the volunteer's record was erased"


async def erase_volunteer(
    tx: Tx, command: do.EraseVolunteer, actor: Principal, zone: tzinfo
) -> bool:
    """Erase a volunteer's personal data; False if it was already erased (DELETE repeats).

    Their places on open demands are given back (promoting the waitlist), so nobody waits
    for someone who is gone; their claims keep the id only, which is no personal data."""
    try:
        volunteer = await queries.volunteer_record(tx.db, command.volunteer_id, tx)
    except no.VolunteerErased:
        return False
    if not access.may_correct_volunteer(actor, volunteer):
        raise _may_not_correct(volunteer)
    claimant = Claimant(type="volunteer", id=volunteer.id)
    withdrawn: list[str] = []
    for held in await repository.claims_of(tx, claimant, ("accepted", "waitlisted")):
        await _withdraw_found(tx, held, ERASURE_REASON, zone)
        withdrawn.append(held.id)
    erased = ErasedVolunteer(
        id=volunteer.id,
        community_id=volunteer.community_id,
        erased_at=utcnow(),
        erased_by=actor.sub,
    )
    await repository.erase_volunteer(tx, erased, sorted(PRIVATE_TYPES))
    outgoing.emit_volunteer_erased(tx, volunteer, withdrawn)
    return True


# --- claiming -------------------------------------------------------------------------------


def _time_refusal(
    window: rules.Window,
    committed: list[Claim],
    volunteer: Volunteer,
    limits: rules.FatigueLimits,
    zone: tzinfo,
) -> no.Refusal | None:
    """The first of the volunteer's time rules the shift would break, or None.

    The caller has serialised on the claimant (`repository.serialise_claimant`), so
    `committed` stays what it read until its transaction commits: every rule here holds
    under concurrency exactly as the weekly cap does."""
    if (other := rules.first_overlap(window, committed)) is not None:
        return no.OverlappingShift(other)
    if over := rules.week_over_cap(window, committed, volunteer.max_hours_per_week, zone):
        return no.HoursExceeded(over)
    if day := rules.day_over_cap(window, committed, limits.max_hours_per_day, zone):
        return no.DailyHoursExceeded(day)
    if short := rules.rest_too_short(window, committed, limits.min_rest_hours):
        return no.RestTooShort(short)
    if days := rules.too_many_consecutive_days(
        window, committed, limits.max_consecutive_days, zone
    ):
        return no.TooManyConsecutiveDays(days)
    return None


async def _limits(tx: Tx, volunteer: Volunteer) -> rules.FatigueLimits:
    communities = await repository.get_communities(tx.db, (volunteer.community_id,), tx)
    return rules.limits_of(volunteer, communities[0] if communities else None)


async def _check_volunteer_time(
    tx: Tx,
    claimant: Claimant,
    volunteer: Volunteer,
    community: Community | None,
    demand: Demand,
    zone: tzinfo,
) -> None:
    """overlapping-shift, the weekly and daily caps, rest and consecutive days, against the
    volunteer's committed claims (under their own limits, else their `community`'s)."""
    limits = rules.limits_of(volunteer, community)
    window = rules.window_of(demand)
    committed = await repository.committed_near(
        tx.db, claimant, window, rules.rules_reach(limits), tx
    )
    refusal = _time_refusal(window, committed, volunteer, limits, zone)
    if refusal is not None:
        raise refusal


async def _check_eligible(tx: Tx, volunteer: Volunteer, demand: Demand) -> None:
    """not-eligible, unless a secretary granted this volunteer one claim on this demand
    (consumed here, in the claim's transaction: a refused claim leaves it in place)."""
    exposed = await _exposure(tx, demand)
    if rules.may_take_exposure(volunteer, demand.model_copy(update={"exposure": exposed.exposure})):
        return
    if await repository.take_override(tx, demand.id, volunteer.id) is not None:
        return
    if exposed.raised_by is not None:
        raise no.NotEligibleInZone(demand, zone_rules.ZONE_EXPOSURE_RULE, exposed.raised_by)
    raise no.NotEligible(demand, rules.HIGH_EXPOSURE_RULE)


async def _exposure(tx: Tx, demand: Demand) -> zone_rules.Exposed:
    """The demand's exposure as its community's zone rule reads it in its grid's level."""
    level = await zones_store.level_of(tx.db, demand.community_id, demand.location.grid, tx)
    rule = await zones_store.rule_of(tx.db, demand.community_id, tx) if level else {}
    return zone_rules.effective_exposure(demand.exposure, level, rule)


async def _claimable_demand(
    tx: Tx, command: do.ClaimDemand, profile: Unit | Volunteer, now: datetime
) -> tuple[Demand, list[Community]]:
    """The demand, if this claimant may claim it as asked (open, within reach, skills
    held), and the communities the claimant serves."""
    demand = await repository.get_demand(tx.db, command.demand_id, tx)
    if demand is None:
        raise not_found("demand", command.demand_id)
    if demand.status != "open" or now >= demand.ends_at:
        raise no.DemandClosed(demand)
    members = command.members or ()
    if isinstance(profile, Volunteer):
        if command.headcount != 1:
            raise no.InvalidClaim("a volunteer claims one place, for themself", "headcount")
        if members:
            raise no.InvalidClaim("a volunteer names no members", "members")
    if len(members) > command.headcount:
        raise no.InvalidClaim("more members named than the headcount", "members")
    served = await repository.get_communities(tx.db, queries.communities_served(profile), tx)
    if not rules.reaches(demand, served):
        raise no.OutOfReach(demand)
    if missing := rules.missing_skills(demand.skills, profile.skills):
        raise no.SkillsMissing(missing)
    return demand, served


async def claim(tx: Tx, command: do.ClaimDemand, actor: Principal, zone: tzinfo) -> Claim:
    """Accept (or waitlist) a claim: the slot check and increment are one atomic update."""
    claimant, profile = await queries.claimant_profile(tx, actor)
    now = utcnow()
    demand, served = await _claimable_demand(tx, command, profile, now)

    await repository.serialise_claimant(tx, claimant)
    made = await repository.claims_on_demand(tx, demand.id, claimant)
    if (existing := next((c for c in made if c.status in HOLDING_STATUSES), None)) is not None:
        raise no.AlreadyClaimed(existing)
    if len(made) >= MAX_CLAIMS_PER_DEMAND:
        raise no.TooManyClaims(demand.id, MAX_CLAIMS_PER_DEMAND)
    if isinstance(profile, Volunteer):
        # A volunteer serves their own community: `served` is it (or nothing, if unknown).
        home = next((c for c in served if c.id == profile.community_id), None)
        await _check_volunteer_time(tx, claimant, profile, home, demand, zone)
        await _check_eligible(tx, profile, demand)

    taken = await repository.take_slots(tx, demand, command.headcount)
    status: ClaimStatus = "accepted"
    if taken is None:
        current = await repository.get_demand(tx.db, demand.id, tx)
        assert current is not None  # demands are never deleted
        if current.status != "open":
            raise no.DemandClosed(current)
        if not command.waitlist or command.headcount > current.slots:
            raise no.DemandFull(current, command.headcount)
        if not await repository.join_waitlist(tx, demand.id):
            raise RetryTransaction(f"demand {demand.id} closed while waitlisting")
        status = "waitlisted"
    new_claim = Claim(
        id=new_id("clm"),
        demand_id=demand.id,
        community_id=demand.community_id,
        claimant=claimant,
        headcount=command.headcount,
        members=command.members or (),
        members_salt=new_salt(),
        status=status,
        starts_at=demand.starts_at,
        ends_at=demand.ends_at,
        created_at=now,
        created_by=actor.sub,
    )
    await repository.insert_claim(tx, new_claim)
    if taken is None:
        outgoing.emit_claim(tx, ClaimWaitlisted, new_claim)
        return new_claim
    outgoing.emit_claim(tx, ClaimAccepted, new_claim, filled=taken.accepted, slots=taken.slots)
    before = taken.model_copy(update={"accepted": taken.accepted - command.headcount})
    outgoing.emit_fill_change(tx, before, taken)
    return new_claim


async def _claim_to(
    tx: Tx,
    claim_id: str,
    may: Callable[[Principal, Claim], bool],
    actor: Principal,
    action: str,
    allowed: tuple[ClaimStatus, ...],
) -> Claim:
    """The claim, if this actor `may` act on it and it is in a state `action` needs."""
    found = await repository.get_claim(tx.db, claim_id, tx)
    if found is None:
        raise not_found("claim", claim_id)
    if not may(actor, found):
        raise no.Forbidden(f"claim '{claim_id}' belongs to another claimant")
    if found.status not in allowed:
        raise no.InvalidClaimState(found, action, allowed)
    return found


async def promote_waitlisted(tx: Tx, demand: Demand, zone: tzinfo) -> Demand:
    """Accept waitlisted claims, oldest first, each that fits the places now free."""
    current = demand
    for waiting in await repository.claims_on(tx, demand.id, ["waitlisted"]):
        if current.status != "open" or current.remaining == 0:
            break
        if waiting.headcount > current.remaining:
            continue
        if waiting.claimant.type == "volunteer":
            volunteer = await repository.get_volunteer(tx.db, waiting.claimant.id, tx)
            if volunteer is None:
                continue
            await repository.serialise_claimant(tx, waiting.claimant)
            limits = await _limits(tx, volunteer)
            window = rules.window_of(waiting)
            committed = await repository.committed_near(
                tx.db, waiting.claimant, window, rules.rules_reach(limits), tx
            )
            if _time_refusal(window, committed, volunteer, limits, zone) is not None:
                continue  # it would break the volunteer's rules now: the next one may fit
        taken = await repository.take_slots(tx, current, waiting.headcount)
        if taken is None:
            raise RetryTransaction(f"demand {demand.id} changed while promoting")
        promoted = await repository.move_claim(tx, waiting, ("waitlisted",), {"status": "accepted"})
        outgoing.emit_claim(tx, ClaimPromoted, promoted, filled=taken.accepted, slots=taken.slots)
        current = taken
    return current


async def withdraw(tx: Tx, command: do.WithdrawClaim, actor: Principal, zone: tzinfo) -> Claim:
    found = await _claim_to(
        tx, command.claim_id, access.may_withdraw, actor, "withdrawing", ("accepted", "waitlisted")
    )
    demand = await repository.get_demand(tx.db, found.demand_id, tx)
    assert demand is not None
    if rules.withdraw_needs_reason(demand, utcnow()) and not command.reason:
        raise no.ReasonRequired(demand)
    return await _withdraw_found(tx, found, command.reason, zone)


async def _withdraw_found(tx: Tx, found: Claim, reason: str | None, zone: tzinfo) -> Claim:
    """Withdraw a held claim: its places go back, and the waitlist moves up into them."""
    demand = await repository.get_demand(tx.db, found.demand_id, tx)
    assert demand is not None
    now = utcnow()
    withdrawn = await repository.move_claim(
        tx,
        found,
        (found.status,),
        {"status": "withdrawn", "withdrawn_at": now, "reason": reason},
    )
    was_accepted = found.status == "accepted"
    after = (
        await repository.give_back_slots(tx, demand.id, found.headcount) if was_accepted else demand
    )
    outgoing.emit_claim(
        tx,
        ClaimWithdrawn,
        withdrawn,
        reason=reason,
        was_accepted=was_accepted,
        filled=after.accepted,
        slots=after.slots,
    )
    if was_accepted:
        outgoing.emit_fill_change(tx, demand, await promote_waitlisted(tx, after, zone))
    return withdrawn


# --- on site --------------------------------------------------------------------------------


async def check_in(tx: Tx, command: do.CheckIn, actor: Principal) -> Claim:
    found = await _claim_to(
        tx, command.claim_id, access.may_check_in, actor, "checking in", ("accepted",)
    )
    demand = await repository.get_demand(tx.db, found.demand_id, tx)
    assert demand is not None
    now = utcnow()
    if not rules.check_in_open(demand, now):
        raise no.CheckInClosed(demand, demand.starts_at - rules.CHECK_IN_OPENS_BEFORE)
    expected = await repository.get_check_in_code(tx.db, demand.id, tx)
    if expected is None or not codes.matches(expected, command.code):
        raise no.WrongCheckInCode()
    changes: dict[str, object] = {"status": "checked_in", "checked_in_at": now}
    if command.members is not None:
        if found.claimant.type != "unit":
            raise no.InvalidClaim("a volunteer names no members", "members")
        if len(command.members) > found.headcount:
            raise no.InvalidClaim("more members named than the headcount", "members")
        changes["members"] = command.members
    checked_in = await repository.move_claim(tx, found, ("accepted",), changes)
    outgoing.emit_claim(tx, ClaimCheckedIn, checked_in, checked_in_at=now)
    return checked_in


async def complete(tx: Tx, command: do.CompleteClaim, actor: Principal) -> Claim:
    found = await _claim_to(
        tx, command.claim_id, access.may_complete, actor, "completing", ("checked_in",)
    )
    now = utcnow()
    hours = rules.person_hours(found, now)
    completed = await repository.move_claim(
        tx,
        found,
        ("checked_in",),
        {
            "status": "completed",
            "completed_at": now,
            "report": command.report,
            "served": command.served,
            "hours": hours,
            "person_times": found.headcount,
        },
    )
    await repository.add_service(tx, found.claimant, found.headcount, hours)
    outgoing.emit_claim(
        tx,
        ClaimCompleted,
        completed,
        report=command.report,
        served=command.served,
        hours=hours,
        person_times=found.headcount,
    )
    return completed


async def grant_eligibility_override(
    tx: Tx, command: do.GrantEligibilityOverride, actor: Principal
) -> EligibilityOverride:
    """A secretary of the demand's community lets one volunteer make one claim past the
    eligibility rule; the audited event names the rule and the reason, no health data."""
    demand = await repository.get_demand(tx.db, command.demand_id, tx)
    if demand is None:
        raise not_found("demand", command.demand_id)
    if not access.may_override_eligibility(actor, demand):
        raise no.Forbidden(
            f"only a secretary of community '{demand.community_id}' grants claims past its "
            "eligibility rules"
        )
    volunteer = await queries.volunteer_record(tx.db, command.volunteer_id, tx)
    override = EligibilityOverride(
        demand_id=demand.id,
        volunteer_id=volunteer.id,
        rule=rules.HIGH_EXPOSURE_RULE,
        reason=command.reason,
        granted_by=actor.sub,
        granted_at=utcnow(),
    )
    await repository.save_override(tx, override)
    outgoing.emit_eligibility_overridden(tx, override, demand)
    return override


async def rotate_check_in_code(
    tx: Tx, command: do.RotateCheckInCode, actor: Principal
) -> tuple[Demand, str]:
    demand = await queries.code_demand(tx, command.demand_id, actor)
    code = codes.new_code()
    await repository.set_check_in_code(tx, demand.id, code)
    return demand, code
