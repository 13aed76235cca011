"""Who may do and read what at units, as pure predicates of the caller (`Principal`).

Routes admit roles (`require_roles`); these decide on the record itself, once the handler has
read it in its transaction. A predicate that says no becomes a `Forbidden` refusal there.
"""

from collections.abc import Iterable

from services.units.domain.model import Claim, Community, Demand, Unit, Volunteer
from shared.auth import Principal, Role
from shared.events.catalogue import Claimant

# --- the registry ---------------------------------------------------------------------------


def may_register_volunteer(actor: Principal, community_id: str) -> bool:
    return actor.is_admin or actor.is_secretary_of(community_id)


def may_correct_unit(actor: Principal) -> bool:
    return actor.is_admin


def may_rotate_unit_secret(actor: Principal, unit: Unit) -> bool:
    return actor.is_admin or (actor.role is Role.UNIT and actor.unit == unit.id)


def may_correct_volunteer(actor: Principal, volunteer: Volunteer) -> bool:
    """Correct or erase: an admin or the secretary of the volunteer's community."""
    return actor.is_admin or actor.is_secretary_of(volunteer.community_id)


# What a volunteer declares of themself: their own to say, and to correct.
SELF_DECLARED = frozenset({"birth_year", "risk_factors"})


def may_correct_volunteer_fields(
    actor: Principal, volunteer: Volunteer, fields: Iterable[str]
) -> bool:
    """An admin or the secretary corrects anything; the volunteer their self-declared part."""
    mine = actor.role is Role.VOLUNTEER and actor.volunteer == volunteer.id
    return may_correct_volunteer(actor, volunteer) or (mine and set(fields) <= SELF_DECLARED)


def may_rotate_volunteer_secret(actor: Principal, volunteer: Volunteer) -> bool:
    mine = actor.role is Role.VOLUNTEER and actor.volunteer == volunteer.id
    return mine or may_correct_volunteer(actor, volunteer)


def may_read_unit(actor: Principal, unit: Unit) -> bool:
    return (
        actor.role in (Role.ADMIN, Role.AUDITOR)
        or actor.unit == unit.id
        or (actor.role is Role.SECRETARY and actor.community in unit.communities)
    )


def may_read_volunteer(actor: Principal, volunteer: Volunteer) -> bool:
    return (
        actor.role in (Role.ADMIN, Role.AUDITOR)
        or actor.volunteer == volunteer.id
        or actor.is_secretary_of(volunteer.community_id)
    )


def may_read_health(actor: Principal, volunteer: Volunteer) -> bool:
    """Birth year and risk factors are health data: the volunteer themself and their
    community's secretary (who decides an override) read them; an auditor or admin reading
    the record for other reasons does not need them."""
    return actor.volunteer == volunteer.id or actor.is_secretary_of(volunteer.community_id)


# --- claims ---------------------------------------------------------------------------------


def claimant_of(actor: Principal) -> Claimant | None:
    """Who claims: a unit token for its unit, a volunteer token for themself; else nobody."""
    if actor.role is Role.UNIT and actor.unit:
        return Claimant(type="unit", id=actor.unit)
    if actor.role is Role.VOLUNTEER and actor.volunteer:
        return Claimant(type="volunteer", id=actor.volunteer)
    return None


def owns(actor: Principal, claim: Claim) -> bool:
    return claimant_of(actor) == claim.claimant


def may_withdraw(actor: Principal, claim: Claim) -> bool:
    return owns(actor, claim) or actor.is_admin


def may_check_in(actor: Principal, claim: Claim) -> bool:
    # On site, in person: an admin does not report for someone else.
    return owns(actor, claim)


def may_complete(actor: Principal, claim: Claim) -> bool:
    return owns(actor, claim) or actor.is_admin


def may_see_check_in_code(actor: Principal, demand: Demand) -> bool:
    return actor.is_admin or actor.is_secretary_of(demand.community_id)


# --- reading open demands -------------------------------------------------------------------


def reads_every_demand(actor: Principal) -> bool:
    return actor.role in (Role.ADMIN, Role.AUDITOR)


def claimant_reaches(community: Community | None, served: Iterable[Community]) -> bool:
    """A volunteer or unit reads a community's demands when it serves one in its street or
    district (what escalation could bring to it)."""
    return community is not None and any(
        own.id == community.id
        or own.street == community.street
        or own.district == community.district
        for own in served
    )


def secretary_reaches(scope: str, community_id: str, community: Community | None) -> bool:
    """A secretary token's `community` is a community, or a street or district for their staff."""
    if community_id == scope:
        return True
    return community is not None and scope in (community.street, community.district)


def may_override_eligibility(actor: Principal, demand: Demand) -> bool:
    """A secretary of the demand's own community: they answer for who they send."""
    return actor.is_secretary_of(demand.community_id)
