"""Units' refusal table covers every refusal, and the access predicates say who may what."""

from datetime import timedelta

import pytest

from services.units.domain import access, refusals
from services.units.domain.model import Claim, Community, Unit, Volunteer
from services.units.entrypoints.problems import REFUSALS
from shared.auth import Principal, Role
from shared.clock import utcnow
from shared.events.catalogue import Claimant
from shared.http.problems import problem_of

pytestmark = pytest.mark.unit


def _subclasses(cls: type[refusals.Refusal]) -> set[type[refusals.Refusal]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_subclasses(sub)}
    return found


def test_every_refusal_has_exactly_one_problem() -> None:
    assert set(REFUSALS) == _subclasses(refusals.Refusal)


def test_a_problem_carries_the_refusals_detail_and_fields() -> None:
    problem = problem_of(refusals.UnknownCommunity("c-9", "communities"), REFUSALS)
    assert problem is not None
    assert (problem.status, problem.slug) == (422, "unknown-community")
    assert problem.detail == "community 'c-9' is not registered"
    assert problem.errors == [
        {"loc": ["body", "communities"], "msg": "unknown community", "type": "unknown_community"}
    ]
    assert problem_of(ValueError("not a refusal"), REFUSALS) is None


ADMIN = Principal(sub="root", role=Role.ADMIN)
AUDITOR = Principal(sub="eye", role=Role.AUDITOR)
VOLUNTEER = Principal(sub="v", role=Role.VOLUNTEER, volunteer="vol_1")
OTHER_VOLUNTEER = Principal(sub="w", role=Role.VOLUNTEER, volunteer="vol_2")
UNIT = Principal(sub="u", role=Role.UNIT, unit="unit_1")
SECRETARY = Principal(sub="s", role=Role.SECRETARY, community="c-1")


def _claim(claimant: Claimant) -> Claim:
    now = utcnow()
    return Claim(
        id="clm_1",
        demand_id="dem_1",
        community_id="c-1",
        claimant=claimant,
        headcount=1,
        status="accepted",
        starts_at=now,
        ends_at=now + timedelta(hours=2),
        created_at=now,
        created_by="v",
    )


def test_a_claim_is_withdrawn_by_its_claimant_or_an_admin_and_checked_in_only_in_person() -> None:
    mine = _claim(Claimant(type="volunteer", id="vol_1"))
    assert access.may_withdraw(VOLUNTEER, mine)
    assert access.may_withdraw(ADMIN, mine)
    assert not access.may_withdraw(OTHER_VOLUNTEER, mine)
    # Same id, other kind of claimant: not theirs.
    assert not access.owns(Principal(sub="u", role=Role.UNIT, unit="vol_1"), mine)
    assert access.may_check_in(VOLUNTEER, mine)
    assert not access.may_check_in(ADMIN, mine)
    assert access.may_complete(ADMIN, mine)
    assert not access.may_complete(SECRETARY, mine)


def test_claimants_are_units_and_volunteers_only() -> None:
    assert access.claimant_of(UNIT) == Claimant(type="unit", id="unit_1")
    assert access.claimant_of(VOLUNTEER) == Claimant(type="volunteer", id="vol_1")
    assert access.claimant_of(SECRETARY) is None
    assert access.claimant_of(ADMIN) is None


def test_registry_records_are_read_and_corrected_by_whom_the_contract_says() -> None:
    now = utcnow()
    unit = Unit(
        id="unit_1",
        name="U",
        kind="department",
        communities=("c-1",),
        created_at=now,
        created_by="root",
    )
    volunteer = Volunteer(id="vol_1", name="V", community_id="c-1", created_at=now, created_by="s")
    assert access.may_read_unit(SECRETARY, unit)
    assert access.may_read_unit(AUDITOR, unit)
    assert not access.may_read_unit(Principal(sub="x", role=Role.SECRETARY, community="c-2"), unit)
    assert access.may_rotate_unit_secret(UNIT, unit)
    assert not access.may_correct_unit(UNIT)
    assert access.may_correct_volunteer(SECRETARY, volunteer)
    assert not access.may_correct_volunteer(VOLUNTEER, volunteer)
    assert access.may_rotate_volunteer_secret(VOLUNTEER, volunteer)
    assert not access.may_rotate_volunteer_secret(OTHER_VOLUNTEER, volunteer)


def test_a_claimant_reads_the_demands_of_its_street_and_district_only() -> None:
    served = [Community(id="c-1", name="One", street="s-1", district="d-1")]
    assert access.claimant_reaches(
        Community(id="c-2", name="Two", street="s-1", district="d-9"), served
    )
    assert not access.claimant_reaches(
        Community(id="c-3", name="Three", street="s-3", district="d-3"), served
    )
    assert not access.claimant_reaches(None, served)
    assert access.secretary_reaches(
        "s-1", "c-2", Community(id="c-2", name="Two", street="s-1", district="d-1")
    )
    assert not access.secretary_reaches("c-1", "c-2", None)
