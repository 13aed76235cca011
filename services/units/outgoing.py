"""The events units publishes, built from its own state: claim.*, demand.filled/reopened and
the registry's. Subject and correlation of claim and demand events are the demand's id."""

from typing import Any

from services.units.domain.model import Claim, Demand, Unit, Volunteer
from shared.events.catalogue import (
    ClaimData,
    DemandFilled,
    DemandReopened,
    UnitRegistered,
    VolunteerRegistered,
)
from shared.events.envelope import CloudEvent, make_event

SOURCE = "/whistle/units"
SERVICE_ACTOR = "units"


def claim_event(
    model: type[ClaimData], claim: Claim, *, actor: str, causationid: str, **extra: Any
) -> CloudEvent:
    data = model(
        claim_id=claim.id,
        demand_id=claim.demand_id,
        community_id=claim.community_id,
        claimant=claim.claimant,
        headcount=claim.headcount,
        members=claim.members,
        **extra,
    )
    return make_event(
        data,
        source=SOURCE,
        subject=claim.demand_id,
        correlationid=claim.demand_id,
        causationid=causationid,
        actor=actor,
    )


def fill_change(
    before: Demand, after: Demand, *, actor: str, causationid: str
) -> CloudEvent | None:
    """demand.filled / demand.reopened when the accepted count crosses `slots`, else None."""
    model: type[DemandFilled] | type[DemandReopened]
    if after.is_full and not before.is_full:
        model = DemandFilled
    elif before.is_full and not after.is_full:
        model = DemandReopened
    else:
        return None
    return make_event(
        model(
            demand_id=after.id,
            community_id=after.community_id,
            filled=after.accepted,
            slots=after.slots,
        ),
        source=SOURCE,
        subject=after.id,
        correlationid=after.id,
        causationid=causationid,
        actor=actor,
    )


def unit_registered(unit: Unit, *, causationid: str) -> CloudEvent:
    return make_event(
        UnitRegistered(
            unit_id=unit.id,
            name=unit.name,
            kind=unit.kind,
            communities=unit.communities,
            skills=unit.skills,
            contact=unit.contact,
        ),
        source=SOURCE,
        subject=unit.id,
        correlationid=unit.id,
        causationid=causationid,
        actor=unit.created_by,
    )


def volunteer_registered(volunteer: Volunteer, *, causationid: str) -> CloudEvent:
    return make_event(
        VolunteerRegistered(
            volunteer_id=volunteer.id,
            name=volunteer.name,
            community_id=volunteer.community_id,
            building=volunteer.building,
            skills=volunteer.skills,
            max_hours_per_week=volunteer.max_hours_per_week,
            contact=volunteer.contact,
        ),
        source=SOURCE,
        subject=volunteer.id,
        correlationid=volunteer.id,
        causationid=causationid,
        actor=volunteer.created_by,
    )
