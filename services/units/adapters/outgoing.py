"""The `data` of the events units publishes, built from its own state: claim.*,
demand.filled/reopened and the registry's. The envelopes are `tx.emit`'s.

Claim and demand events are about the demand: subject and correlation are its id. A registry
event's subject is the unit or volunteer; its private half (`*.details`, contact and secret)
goes out first, so a receiver never hears of a record it cannot reach yet.
"""

from typing import Any

from services.units.domain.model import Claim, Demand, EligibilityOverride, Unit, Volunteer
from shared.events.catalogue import (
    ClaimData,
    ClaimEligibilityOverridden,
    ClaimFacts,
    DemandFilled,
    DemandReopened,
    UnitDetails,
    UnitRegistered,
    UnitUpdated,
    VolunteerDetails,
    VolunteerErased,
    VolunteerRegistered,
    VolunteerUpdated,
)
from shared.events.digest import details_digest
from shared.store.unit_of_work import Tx


def emit_claim(
    tx: Tx, model: type[ClaimData] | type[ClaimFacts], claim: Claim, **extra: Any
) -> None:
    """A claim.* event: who claimed how many, never the members' names (a digest of them)."""
    data = model(
        claim_id=claim.id,
        demand_id=claim.demand_id,
        community_id=claim.community_id,
        claimant=claim.claimant,
        headcount=claim.headcount,
        members_named=len(claim.members),
        members_digest=(
            details_digest(claim.members_salt, {"members": list(claim.members)})
            if claim.members and claim.members_salt
            else None
        ),
        **extra,
    )
    tx.emit(data, subject=claim.demand_id, correlation=claim.demand_id)


def emit_fill_change(tx: Tx, before: Demand, after: Demand) -> None:
    """demand.filled / demand.reopened when the accepted count crosses `slots`."""
    model: type[DemandFilled] | type[DemandReopened]
    if after.is_full and not before.is_full:
        model = DemandFilled
    elif before.is_full and not after.is_full:
        model = DemandReopened
    else:
        return
    data = model(
        demand_id=after.id,
        community_id=after.community_id,
        filled=after.accepted,
        slots=after.slots,
    )
    tx.emit(data, subject=after.id, correlation=after.id)


def _unit_details(unit: Unit) -> UnitDetails:
    return UnitDetails(
        unit_id=unit.id,
        version=unit.version,
        contact=unit.contact,
        webhook_secret=unit.webhook_secret,
    )


def _unit_digest(unit: Unit) -> str:
    # The secret is a key, not something said: it is not part of what the digest proves.
    return details_digest(unit.salt, {"contact": unit.contact.model_dump(mode="json")})


def emit_unit_registered(tx: Tx, unit: Unit) -> None:
    """The audited registration (no contact) and, privately, how to reach the unit."""
    tx.emit(_unit_details(unit), subject=unit.id)
    public = UnitRegistered(
        unit_id=unit.id,
        name=unit.name,
        kind=unit.kind,
        communities=unit.communities,
        skills=unit.skills,
        details_digest=_unit_digest(unit),
    )
    tx.emit(public, subject=unit.id)


def emit_unit_updated(tx: Tx, unit: Unit) -> None:
    tx.emit(_unit_details(unit), subject=unit.id)
    public = UnitUpdated(
        unit_id=unit.id,
        version=unit.version,
        name=unit.name,
        communities=unit.communities,
        skills=unit.skills,
        details_digest=_unit_digest(unit),
    )
    tx.emit(public, subject=unit.id)


def emit_unit_secret_rotated(tx: Tx, unit: Unit) -> None:
    tx.emit(_unit_details(unit), subject=unit.id)


def _volunteer_details(volunteer: Volunteer) -> VolunteerDetails:
    return VolunteerDetails(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        version=volunteer.version,
        name=volunteer.name,
        building=volunteer.building,
        contact=volunteer.contact,
        webhook_secret=volunteer.webhook_secret,
        birth_year=volunteer.birth_year,
        risk_factors=volunteer.risk_factors,
    )


def _volunteer_digest(volunteer: Volunteer) -> str:
    return details_digest(
        volunteer.salt,
        _volunteer_details(volunteer).model_dump(
            mode="json", include={"name", "building", "contact"}
        ),
    )


def emit_volunteer_registered(tx: Tx, volunteer: Volunteer) -> None:
    """The audited registration (ids, skills, hours) and, privately, who and where they are."""
    tx.emit(_volunteer_details(volunteer), subject=volunteer.id)
    public = VolunteerRegistered(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        skills=volunteer.skills,
        max_hours_per_week=volunteer.max_hours_per_week,
        max_hours_per_day=volunteer.max_hours_per_day,
        min_rest_hours=volunteer.min_rest_hours,
        max_consecutive_days=volunteer.max_consecutive_days,
        details_digest=_volunteer_digest(volunteer),
    )
    tx.emit(public, subject=volunteer.id)


def emit_volunteer_updated(tx: Tx, volunteer: Volunteer) -> None:
    tx.emit(_volunteer_details(volunteer), subject=volunteer.id)
    public = VolunteerUpdated(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        version=volunteer.version,
        skills=volunteer.skills,
        max_hours_per_week=volunteer.max_hours_per_week,
        max_hours_per_day=volunteer.max_hours_per_day,
        min_rest_hours=volunteer.min_rest_hours,
        max_consecutive_days=volunteer.max_consecutive_days,
        details_digest=_volunteer_digest(volunteer),
    )
    tx.emit(public, subject=volunteer.id)


def emit_volunteer_secret_rotated(tx: Tx, volunteer: Volunteer) -> None:
    tx.emit(_volunteer_details(volunteer), subject=volunteer.id)


def emit_volunteer_erased(tx: Tx, volunteer: Volunteer, withdrawn: list[str]) -> None:
    data = VolunteerErased(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        claims_withdrawn=tuple(withdrawn),
    )
    tx.emit(data, subject=volunteer.id)


def emit_eligibility_overridden(tx: Tx, override: EligibilityOverride, demand: Demand) -> None:
    data = ClaimEligibilityOverridden(
        demand_id=override.demand_id,
        community_id=demand.community_id,
        volunteer_id=override.volunteer_id,
        rule=override.rule,
        reason=override.reason,
        granted_by=override.granted_by,
    )
    tx.emit(data, subject=demand.id)
