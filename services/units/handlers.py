"""Units' commands, one function each: check the rule, change the state, emit the event.

Each runs inside a unit of work (`tx`) and may be run again from the start on a write
conflict; a refusal raises a `ProblemError`, which aborts the transaction, so a refused claim
stores nothing and publishes nothing.
"""

import secrets
from datetime import datetime, tzinfo

from services.units import outgoing, refusals
from services.units.adapters import repository
from services.units.domain import codes, rules
from services.units.domain.model import (
    COMMITTED_STATUSES,
    HOLDING_STATUSES,
    MAX_CLAIMS_PER_DEMAND,
    Claim,
    ClaimStatus,
    Demand,
    ErasedVolunteer,
    Unit,
    Volunteer,
)
from services.units.entrypoints.schemas import (
    CheckInIn,
    ClaimIn,
    CompleteIn,
    UnitIn,
    UnitPatch,
    VolunteerIn,
    VolunteerPatch,
    WithdrawIn,
)
from shared.auth import Principal, Role, forbidden
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
from shared.events.envelope import CloudEvent
from shared.http.problems import ProblemError
from shared.ids import new_id
from shared.store.unit_of_work import RetryTransaction, Tx

# --- registry -------------------------------------------------------------------------------


def new_webhook_secret() -> str:
    # 32 random bytes, URL-safe: the receiver keys HMAC-SHA256 with the string's UTF-8 bytes.
    return "whsec_" + secrets.token_urlsafe(32)


def _secret_for(contact: Contact, current: str | None) -> str | None:
    """A receiver has its own secret from the moment it has a webhook URL."""
    if not contact.webhook_url:
        return None
    return current or new_webhook_secret()


async def register_unit(tx: Tx, command: UnitIn, actor: Principal, request_id: str) -> Unit:
    known = await repository.get_communities(tx.db, command.communities, tx)
    unknown = sorted(set(command.communities) - {community.id for community in known})
    if unknown:
        raise refusals.unknown_community(unknown[0], "communities")
    unit = Unit(
        id=new_id("unit"),
        name=command.name,
        kind=command.kind,
        communities=tuple(dict.fromkeys(command.communities)),
        skills=tuple(command.skills),
        contact=(contact := Contact(**command.contact.model_dump())),
        created_at=utcnow(),
        created_by=actor.sub,
        webhook_secret=_secret_for(contact, None),
        salt=new_salt(),
    )
    await repository.insert_unit(tx, unit)
    tx.emit(*outgoing.unit_registered(unit, causationid=request_id))
    return unit


async def register_volunteer(
    tx: Tx, command: VolunteerIn, actor: Principal, request_id: str
) -> Volunteer:
    if not (actor.is_admin or actor.is_secretary_of(command.community_id)):
        raise forbidden(
            f"only the secretary of community '{command.community_id}' registers its volunteers"
        )
    if not await repository.get_communities(tx.db, [command.community_id], tx):
        raise refusals.unknown_community(command.community_id, "community_id")
    volunteer = Volunteer(
        id=new_id("vol"),
        name=command.name,
        community_id=command.community_id,
        building=command.building,
        skills=tuple(command.skills),
        max_hours_per_week=command.max_hours_per_week,
        contact=(contact := Contact(**command.contact.model_dump())),
        created_at=utcnow(),
        created_by=actor.sub,
        webhook_secret=_secret_for(contact, None),
        salt=new_salt(),
    )
    await repository.insert_volunteer(tx, volunteer)
    tx.emit(*outgoing.volunteer_registered(volunteer, causationid=request_id))
    return volunteer


async def _unit_to_correct(tx: Tx, unit_id: str, actor: Principal) -> Unit:
    unit = await repository.get_unit(tx.db, unit_id, tx)
    if unit is None:
        raise refusals.not_found("unit", unit_id)
    if not (actor.is_admin or (actor.role is Role.UNIT and actor.unit == unit.id)):
        raise forbidden("a unit's record is corrected by an admin or the unit itself")
    return unit


async def correct_unit(
    tx: Tx, unit_id: str, command: UnitPatch, actor: Principal, request_id: str
) -> Unit:
    unit = await repository.get_unit(tx.db, unit_id, tx)
    if unit is None:
        raise refusals.not_found("unit", unit_id)
    if not actor.is_admin:
        raise forbidden("a unit's record is corrected by an admin")
    changes: dict[str, object] = {"version": unit.version + 1}
    if command.communities is not None:
        known = await repository.get_communities(tx.db, command.communities, tx)
        unknown = sorted(set(command.communities) - {community.id for community in known})
        if unknown:
            raise refusals.unknown_community(unknown[0], "communities")
        changes["communities"] = tuple(dict.fromkeys(command.communities))
    if command.name is not None:
        changes["name"] = command.name
    if command.skills is not None:
        changes["skills"] = tuple(command.skills)
    if command.contact is not None:
        contact = Contact(**command.contact.model_dump())
        changes["contact"] = contact
        changes["webhook_secret"] = _secret_for(contact, unit.webhook_secret)
    corrected = unit.model_copy(update=changes)
    await repository.replace_unit(tx, corrected)
    tx.emit(*outgoing.unit_updated(corrected, actor=actor.sub, causationid=request_id))
    return corrected


async def rotate_unit_secret(tx: Tx, unit_id: str, actor: Principal, request_id: str) -> Unit:
    unit = await _unit_to_correct(tx, unit_id, actor)
    if not unit.contact.webhook_url:
        raise refusals.no_webhook("unit", unit.id)
    rotated = unit.model_copy(
        update={"webhook_secret": new_webhook_secret(), "version": unit.version + 1}
    )
    await repository.replace_unit(tx, rotated)
    tx.emit(outgoing.unit_secret_rotated(rotated, actor=actor.sub, causationid=request_id))
    return rotated


async def _volunteer_to_correct(
    tx: Tx, volunteer_id: str, actor: Principal, *, self_may: bool
) -> Volunteer:
    volunteer = await repository.get_volunteer(tx.db, volunteer_id, tx)
    if volunteer is None:
        if await repository.get_erased_volunteer(tx.db, volunteer_id, tx) is not None:
            raise refusals.erased(volunteer_id)
        raise refusals.not_found("volunteer", volunteer_id)
    mine = self_may and actor.role is Role.VOLUNTEER and actor.volunteer == volunteer.id
    if not (mine or actor.is_admin or actor.is_secretary_of(volunteer.community_id)):
        raise forbidden(
            f"only the secretary of community '{volunteer.community_id}' corrects its volunteers"
        )
    return volunteer


async def correct_volunteer(
    tx: Tx, volunteer_id: str, command: VolunteerPatch, actor: Principal, request_id: str
) -> Volunteer:
    volunteer = await _volunteer_to_correct(tx, volunteer_id, actor, self_may=False)
    given = command.model_fields_set
    changes: dict[str, object] = {"version": volunteer.version + 1}
    if command.name is not None:
        changes["name"] = command.name
    if "building" in given:
        changes["building"] = command.building  # null clears it
    if command.skills is not None:
        changes["skills"] = tuple(command.skills)
    if command.max_hours_per_week is not None:
        changes["max_hours_per_week"] = command.max_hours_per_week
    if command.contact is not None:
        contact = Contact(**command.contact.model_dump())
        changes["contact"] = contact
        changes["webhook_secret"] = _secret_for(contact, volunteer.webhook_secret)
    corrected = volunteer.model_copy(update=changes)
    await repository.replace_volunteer(tx, corrected)
    tx.emit(*outgoing.volunteer_updated(corrected, actor=actor.sub, causationid=request_id))
    return corrected


async def rotate_volunteer_secret(
    tx: Tx, volunteer_id: str, actor: Principal, request_id: str
) -> Volunteer:
    volunteer = await _volunteer_to_correct(tx, volunteer_id, actor, self_may=True)
    if not volunteer.contact.webhook_url:
        raise refusals.no_webhook("volunteer", volunteer.id)
    rotated = volunteer.model_copy(
        update={"webhook_secret": new_webhook_secret(), "version": volunteer.version + 1}
    )
    await repository.replace_volunteer(tx, rotated)
    tx.emit(outgoing.volunteer_secret_rotated(rotated, actor=actor.sub, causationid=request_id))
    return rotated


ERASURE_REASON = "the volunteer's record was erased"


async def erase_volunteer(
    tx: Tx, volunteer_id: str, actor: Principal, request_id: str, zone: tzinfo
) -> bool:
    """Erase a volunteer's personal data; False if it was already erased (DELETE repeats).

    Their places on open demands are given back (promoting the waitlist), so nobody waits
    for someone who is gone; their claims keep the id only, which is no personal data."""
    try:
        volunteer = await _volunteer_to_correct(tx, volunteer_id, actor, self_may=False)
    except ProblemError as refusal:
        if refusal.slug == "volunteer-erased":
            return False
        raise
    claimant = Claimant(type="volunteer", id=volunteer.id)
    withdrawn: list[str] = []
    for held in await repository.claims_of(tx, claimant, ("accepted", "waitlisted")):
        await _withdraw_found(tx, held, ERASURE_REASON, actor.sub, request_id, zone)
        withdrawn.append(held.id)
    erased = ErasedVolunteer(
        id=volunteer.id,
        community_id=volunteer.community_id,
        erased_at=utcnow(),
        erased_by=actor.sub,
    )
    await repository.erase_volunteer(tx, erased, sorted(PRIVATE_TYPES))
    tx.emit(
        outgoing.volunteer_erased(volunteer, withdrawn, actor=actor.sub, causationid=request_id)
    )
    return True


# --- claiming -------------------------------------------------------------------------------


async def claimant_of(tx: Tx, actor: Principal) -> tuple[Claimant, Unit | Volunteer]:
    """Who claims: a unit token claims for its unit, a volunteer token for themself."""
    if actor.role is Role.UNIT and actor.unit:
        unit = await repository.get_unit(tx.db, actor.unit, tx)
        if unit is None:
            raise forbidden(f"unit '{actor.unit}' is not registered")
        return Claimant(type="unit", id=unit.id), unit
    if actor.role is Role.VOLUNTEER and actor.volunteer:
        volunteer = await repository.get_volunteer(tx.db, actor.volunteer, tx)
        if volunteer is None:
            raise forbidden(f"volunteer '{actor.volunteer}' is not registered")
        return Claimant(type="volunteer", id=volunteer.id), volunteer
    raise forbidden("claims are made by a unit (for itself) or a volunteer (for themself)")


def communities_served(profile: Unit | Volunteer) -> list[str]:
    return list(profile.communities) if isinstance(profile, Unit) else [profile.community_id]


async def claimable_for(tx: Tx, actor: Principal, demands: list[Demand]) -> list[Demand]:
    """The demands this claimant may claim: within its reach, its skills, not yet claimed."""
    claimant, profile = await claimant_of(tx, actor)
    served = await repository.get_communities(tx.db, communities_served(profile), tx)
    held = {claim.demand_id for claim in await repository.claims_of(tx, claimant, HOLDING_STATUSES)}
    return [
        demand
        for demand in demands
        if demand.id not in held
        and rules.reaches(demand, served)
        and not rules.missing_skills(demand.skills, profile.skills)
    ]


async def _check_volunteer_time(
    tx: Tx, claimant: Claimant, volunteer: Volunteer, demand: Demand, zone: tzinfo
) -> None:
    """overlapping-shift and hours-exceeded, against the volunteer's committed claims."""
    committed = await repository.claims_of(tx, claimant, COMMITTED_STATUSES)
    window = rules.window_of(demand)
    if (other := rules.first_overlap(window, committed)) is not None:
        raise refusals.overlapping_shift(other)
    if over := rules.week_over_cap(window, committed, volunteer.max_hours_per_week, zone):
        raise refusals.hours_exceeded(over)


async def _claimable_demand(
    tx: Tx, demand_id: str, command: ClaimIn, profile: Unit | Volunteer, now: datetime
) -> Demand:
    """The demand, if this claimant may claim it as asked: open, within reach, skills held."""
    demand = await repository.get_demand(tx.db, demand_id, tx)
    if demand is None:
        raise refusals.not_found("demand", demand_id)
    if demand.status != "open" or now >= demand.ends_at:
        raise refusals.demand_closed(demand)
    members = command.members or []
    if isinstance(profile, Volunteer):
        if command.headcount != 1:
            raise refusals.invalid_claim("a volunteer claims one place, for themself", "headcount")
        if members:
            raise refusals.invalid_claim("a volunteer names no members", "members")
    if len(members) > command.headcount:
        raise refusals.invalid_claim("more members named than the headcount", "members")
    served = await repository.get_communities(tx.db, communities_served(profile), tx)
    if not rules.reaches(demand, served):
        raise refusals.out_of_reach(demand)
    if missing := rules.missing_skills(demand.skills, profile.skills):
        raise refusals.skills_missing(missing)
    return demand


async def claim(
    tx: Tx, demand_id: str, command: ClaimIn, actor: Principal, request_id: str, zone: tzinfo
) -> Claim:
    """Accept (or waitlist) a claim: the slot check and increment are one atomic update."""
    claimant, profile = await claimant_of(tx, actor)
    now = utcnow()
    demand = await _claimable_demand(tx, demand_id, command, profile, now)

    await repository.serialise_claimant(tx, claimant)
    if (existing := await repository.holding_claim(tx, demand.id, claimant)) is not None:
        raise refusals.already_claimed(existing)
    if await repository.claims_made(tx, demand.id, claimant) >= MAX_CLAIMS_PER_DEMAND:
        raise refusals.too_many_claims(demand.id, MAX_CLAIMS_PER_DEMAND)
    if isinstance(profile, Volunteer):
        await _check_volunteer_time(tx, claimant, profile, demand, zone)

    taken = await repository.take_slots(tx, demand.id, command.headcount)
    status: ClaimStatus = "accepted"
    if taken is None:
        current = await repository.get_demand(tx.db, demand.id, tx)
        assert current is not None  # demands are never deleted
        if current.status != "open":
            raise refusals.demand_closed(current)
        if not command.waitlist or command.headcount > current.slots:
            raise refusals.demand_full(current, command.headcount)
        if not await repository.join_waitlist(tx, demand.id):
            raise RetryTransaction(f"demand {demand.id} closed while waitlisting")
        status = "waitlisted"
    new_claim = Claim(
        id=new_id("clm"),
        demand_id=demand.id,
        community_id=demand.community_id,
        claimant=claimant,
        headcount=command.headcount,
        members=tuple(command.members or ()),
        members_salt=new_salt(),
        status=status,
        starts_at=demand.starts_at,
        ends_at=demand.ends_at,
        created_at=now,
        created_by=actor.sub,
    )
    await repository.insert_claim(tx, new_claim)
    if taken is None:
        tx.emit(
            outgoing.claim_event(
                ClaimWaitlisted, new_claim, actor=actor.sub, causationid=request_id
            )
        )
        return new_claim
    tx.emit(
        outgoing.claim_event(
            ClaimAccepted,
            new_claim,
            actor=actor.sub,
            causationid=request_id,
            filled=taken.accepted,
            slots=taken.slots,
        )
    )
    before = taken.model_copy(update={"accepted": taken.accepted - command.headcount})
    if crossed := outgoing.fill_change(before, taken, actor=actor.sub, causationid=request_id):
        tx.emit(crossed)
    return new_claim


async def _own_claim(tx: Tx, claim_id: str, actor: Principal, *, admin_may: bool) -> Claim:
    found = await repository.get_claim(tx.db, claim_id, tx)
    if found is None:
        raise refusals.not_found("claim", claim_id)
    mine = (
        found.claimant.type == "unit"
        and actor.role is Role.UNIT
        and actor.unit == found.claimant.id
    ) or (
        found.claimant.type == "volunteer"
        and actor.role is Role.VOLUNTEER
        and actor.volunteer == found.claimant.id
    )
    if not (mine or (admin_may and actor.is_admin)):
        raise forbidden(f"claim '{claim_id}' belongs to another claimant")
    return found


async def _moved(
    tx: Tx, claim: Claim, from_statuses: tuple[ClaimStatus, ...], changes: dict[str, object]
) -> Claim:
    moved = await repository.move_claim(tx, claim.id, from_statuses, changes)
    if moved is None:
        raise RetryTransaction(f"claim {claim.id} changed while we decided")
    return moved


async def promote_waitlisted(
    tx: Tx, demand: Demand, *, actor: str, causationid: str, zone: tzinfo
) -> tuple[Demand, list[CloudEvent]]:
    """Accept waitlisted claims, oldest first, each that fits the places now free."""
    events: list[CloudEvent] = []
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
            committed = await repository.claims_of(tx, waiting.claimant, COMMITTED_STATUSES)
            window = rules.window_of(waiting)
            if rules.first_overlap(window, committed) or rules.week_over_cap(
                window, committed, volunteer.max_hours_per_week, zone
            ):
                continue  # it would break the volunteer's rules now: the next one may fit
        taken = await repository.take_slots(tx, demand.id, waiting.headcount)
        if taken is None:
            raise RetryTransaction(f"demand {demand.id} changed while promoting")
        promoted = await _moved(tx, waiting, ("waitlisted",), {"status": "accepted"})
        events.append(
            outgoing.claim_event(
                ClaimPromoted,
                promoted,
                actor=actor,
                causationid=causationid,
                filled=taken.accepted,
                slots=taken.slots,
            )
        )
        current = taken
    return current, events


async def withdraw(
    tx: Tx, claim_id: str, command: WithdrawIn, actor: Principal, request_id: str, zone: tzinfo
) -> Claim:
    found = await _own_claim(tx, claim_id, actor, admin_may=True)
    if found.status not in ("accepted", "waitlisted"):
        raise refusals.invalid_claim_state(found, "withdrawing", ("accepted", "waitlisted"))
    demand = await repository.get_demand(tx.db, found.demand_id, tx)
    assert demand is not None
    if rules.withdraw_needs_reason(demand, utcnow()) and not command.reason:
        raise refusals.reason_required(demand)
    return await _withdraw_found(tx, found, command.reason, actor.sub, request_id, zone)


async def _withdraw_found(
    tx: Tx, found: Claim, reason: str | None, actor: str, request_id: str, zone: tzinfo
) -> Claim:
    """Withdraw a held claim: its places go back, and the waitlist moves up into them."""
    demand = await repository.get_demand(tx.db, found.demand_id, tx)
    assert demand is not None
    now = utcnow()
    withdrawn = await _moved(
        tx,
        found,
        (found.status,),
        {"status": "withdrawn", "withdrawn_at": now, "reason": reason},
    )
    was_accepted = found.status == "accepted"
    after = (
        await repository.give_back_slots(tx, demand.id, found.headcount) if was_accepted else demand
    )
    tx.emit(
        outgoing.claim_event(
            ClaimWithdrawn,
            withdrawn,
            actor=actor,
            causationid=request_id,
            reason=reason,
            was_accepted=was_accepted,
            filled=after.accepted,
            slots=after.slots,
        )
    )
    if was_accepted:
        final, promotions = await promote_waitlisted(
            tx, after, actor=actor, causationid=request_id, zone=zone
        )
        tx.emit(*promotions)
        if crossed := outgoing.fill_change(demand, final, actor=actor, causationid=request_id):
            tx.emit(crossed)
    return withdrawn


# --- on site --------------------------------------------------------------------------------


async def check_in(
    tx: Tx, claim_id: str, command: CheckInIn, actor: Principal, request_id: str
) -> Claim:
    found = await _own_claim(tx, claim_id, actor, admin_may=False)
    if found.status != "accepted":
        raise refusals.invalid_claim_state(found, "checking in", ("accepted",))
    demand = await repository.get_demand(tx.db, found.demand_id, tx)
    assert demand is not None
    now = utcnow()
    if not rules.check_in_open(demand, now):
        raise refusals.check_in_closed(demand, demand.starts_at - rules.CHECK_IN_OPENS_BEFORE)
    expected = await repository.get_check_in_code(tx.db, demand.id, tx)
    if expected is None or not codes.matches(expected, command.code):
        raise refusals.wrong_check_in_code()
    changes: dict[str, object] = {"status": "checked_in", "checked_in_at": now}
    if command.members is not None:
        if found.claimant.type != "unit":
            raise refusals.invalid_claim("a volunteer names no members", "members")
        if len(command.members) > found.headcount:
            raise refusals.invalid_claim("more members named than the headcount", "members")
        changes["members"] = command.members
    checked_in = await _moved(tx, found, ("accepted",), changes)
    tx.emit(
        outgoing.claim_event(
            ClaimCheckedIn, checked_in, actor=actor.sub, causationid=request_id, checked_in_at=now
        )
    )
    return checked_in


async def complete(
    tx: Tx, claim_id: str, command: CompleteIn, actor: Principal, request_id: str
) -> Claim:
    found = await _own_claim(tx, claim_id, actor, admin_may=True)
    if found.status != "checked_in":
        raise refusals.invalid_claim_state(found, "completing", ("checked_in",))
    now = utcnow()
    hours = rules.person_hours(found, now)
    completed = await _moved(
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
    tx.emit(
        outgoing.claim_event(
            ClaimCompleted,
            completed,
            actor=actor.sub,
            causationid=request_id,
            report=command.report,
            served=command.served,
            hours=hours,
            person_times=found.headcount,
        )
    )
    return completed


async def rotate_check_in_code(tx: Tx, demand_id: str, actor: Principal) -> tuple[Demand, str]:
    demand = await visible_code_demand(tx, demand_id, actor)
    code = codes.new_code()
    await repository.set_check_in_code(tx, demand.id, code)
    return demand, code


async def visible_code_demand(tx: Tx, demand_id: str, actor: Principal) -> Demand:
    """The demand whose on-site code this actor may see: its community's secretary, or admin."""
    demand = await repository.get_demand(tx.db, demand_id, tx)
    if demand is None:
        raise refusals.not_found("demand", demand_id)
    if not (actor.is_admin or actor.is_secretary_of(demand.community_id)):
        raise forbidden(f"only the secretary of community '{demand.community_id}' sees its code")
    return demand
