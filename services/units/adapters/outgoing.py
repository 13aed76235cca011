"""The events units publishes, built from its own state: claim.*, demand.filled/reopened and
the registry's. Subject and correlation of claim and demand events are the demand's id."""

from typing import Any

from services.units.domain.model import Claim, Demand, Unit, Volunteer
from shared.events.catalogue import (
    ClaimData,
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
        members_named=len(claim.members),
        members_digest=(
            details_digest(claim.members_salt, {"members": list(claim.members)})
            if claim.members and claim.members_salt
            else None
        ),
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


def _registry_event(
    data: UnitRegistered
    | UnitUpdated
    | UnitDetails
    | VolunteerRegistered
    | VolunteerUpdated
    | VolunteerDetails
    | VolunteerErased,
    subject: str,
    *,
    actor: str,
    causationid: str,
) -> CloudEvent:
    return make_event(
        data,
        source=SOURCE,
        subject=subject,
        correlationid=subject,
        causationid=causationid,
        actor=actor,
    )


def unit_details(unit: Unit) -> UnitDetails:
    return UnitDetails(
        unit_id=unit.id,
        version=unit.version,
        contact=unit.contact,
        webhook_secret=unit.webhook_secret,
    )


def unit_digest(unit: Unit) -> str:
    # The secret is a key, not something said: it is not part of what the digest proves.
    return details_digest(unit.salt, {"contact": unit.contact.model_dump(mode="json")})


def unit_registered(unit: Unit, *, causationid: str) -> list[CloudEvent]:
    """The audited registration (no contact) and, privately, how to reach the unit."""
    public = UnitRegistered(
        unit_id=unit.id,
        name=unit.name,
        kind=unit.kind,
        communities=unit.communities,
        skills=unit.skills,
        details_digest=unit_digest(unit),
    )
    return [
        _registry_event(
            unit_details(unit), unit.id, actor=unit.created_by, causationid=causationid
        ),
        _registry_event(public, unit.id, actor=unit.created_by, causationid=causationid),
    ]


def unit_updated(unit: Unit, *, actor: str, causationid: str) -> list[CloudEvent]:
    public = UnitUpdated(
        unit_id=unit.id,
        version=unit.version,
        name=unit.name,
        communities=unit.communities,
        skills=unit.skills,
        details_digest=unit_digest(unit),
    )
    return [
        _registry_event(unit_details(unit), unit.id, actor=actor, causationid=causationid),
        _registry_event(public, unit.id, actor=actor, causationid=causationid),
    ]


def unit_secret_rotated(unit: Unit, *, actor: str, causationid: str) -> CloudEvent:
    return _registry_event(unit_details(unit), unit.id, actor=actor, causationid=causationid)


def volunteer_details(volunteer: Volunteer) -> VolunteerDetails:
    return VolunteerDetails(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        version=volunteer.version,
        name=volunteer.name,
        building=volunteer.building,
        contact=volunteer.contact,
        webhook_secret=volunteer.webhook_secret,
    )


def volunteer_digest(volunteer: Volunteer) -> str:
    return details_digest(
        volunteer.salt,
        volunteer_details(volunteer).model_dump(
            mode="json", include={"name", "building", "contact"}
        ),
    )


def volunteer_registered(volunteer: Volunteer, *, causationid: str) -> list[CloudEvent]:
    """The audited registration (ids, skills, hours) and, privately, who and where they are."""
    public = VolunteerRegistered(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        skills=volunteer.skills,
        max_hours_per_week=volunteer.max_hours_per_week,
        details_digest=volunteer_digest(volunteer),
    )
    actor = volunteer.created_by
    return [
        _registry_event(
            volunteer_details(volunteer), volunteer.id, actor=actor, causationid=causationid
        ),
        _registry_event(public, volunteer.id, actor=actor, causationid=causationid),
    ]


def volunteer_updated(volunteer: Volunteer, *, actor: str, causationid: str) -> list[CloudEvent]:
    public = VolunteerUpdated(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        version=volunteer.version,
        skills=volunteer.skills,
        max_hours_per_week=volunteer.max_hours_per_week,
        details_digest=volunteer_digest(volunteer),
    )
    return [
        _registry_event(
            volunteer_details(volunteer), volunteer.id, actor=actor, causationid=causationid
        ),
        _registry_event(public, volunteer.id, actor=actor, causationid=causationid),
    ]


def volunteer_secret_rotated(volunteer: Volunteer, *, actor: str, causationid: str) -> CloudEvent:
    return _registry_event(
        volunteer_details(volunteer), volunteer.id, actor=actor, causationid=causationid
    )


def volunteer_erased(
    volunteer: Volunteer, withdrawn: list[str], *, actor: str, causationid: str
) -> CloudEvent:
    data = VolunteerErased(
        volunteer_id=volunteer.id,
        community_id=volunteer.community_id,
        claims_withdrawn=tuple(withdrawn),
    )
    return _registry_event(data, volunteer.id, actor=actor, causationid=causationid)
