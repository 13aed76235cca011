"""The notify rules as pure functions: who hears what, how often, and with which id."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.notify.domain import rules
from services.notify.domain.model import Claim, Demand, Unit, Volunteer
from services.notify.domain.rules import notification_id
from shared.events.catalogue import Claimant, Recipient

pytestmark = pytest.mark.unit

NOW = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)


def demand(
    priority: str = "routine", skills: tuple[str, ...] = ("first aid",), **kw: Any
) -> Demand:
    values: dict[str, object] = {
        "id": "d1",
        "community_id": "c1",
        "street": "s1",
        "district": "d-1",
        "title": "Checkpoint",
        "skills": skills,
        "slots": 3,
        "priority": priority,
        "starts_at": NOW + timedelta(hours=4),
        "ends_at": NOW + timedelta(hours=8),
        "fill_by": NOW + timedelta(hours=2),
        "published_at": NOW,
    }
    return Demand.model_validate(values | kw)


UNITS = [
    Unit(id="u-medic", name="Clinic", communities=("c1", "c2"), skills=("First  Aid", "driving")),
    Unit(id="u-school", name="School", communities=("c1",), skills=("tutoring",)),
    Unit(id="u-far", name="Far", communities=("c9",), skills=("first aid",)),
]
VOLUNTEERS = [
    Volunteer(id="v-nurse", name="Nurse", community_id="c1", skills=("first aid",)),
    Volunteer(id="v-cook", name="Cook", community_id="c1", skills=("cooking",)),
    Volunteer(id="v-away", name="Away", community_id="c2", skills=("first aid",)),
]


def ids(found: list[Recipient]) -> list[str]:
    return [f"{r.type}:{r.id}" for r in found]


def test_a_demand_reaches_serving_units_and_local_volunteers_whose_skills_cover_it() -> None:
    found = rules.for_published(demand(), UNITS, VOLUNTEERS)
    assert ids(found) == ["unit:u-medic", "volunteer:v-nurse"]


def test_skills_compare_without_case_or_spacing() -> None:
    assert rules.skills_cover(["First  Aid", "x"], ["first aid"])
    assert not rules.skills_cover(["first aid"], ["first aid", "driving"])
    assert rules.skills_cover([], [])


def test_a_demand_without_skills_reaches_everyone_serving_the_community() -> None:
    found = rules.for_published(demand(skills=()), UNITS, VOLUNTEERS)
    assert ids(found) == ["unit:u-medic", "unit:u-school", "volunteer:v-nurse", "volunteer:v-cook"]


def test_a_critical_demand_reaches_all_of_the_community_whatever_their_skills() -> None:
    found = rules.for_published(demand("critical", ("rare skill",)), UNITS, VOLUNTEERS)
    assert ids(found) == ["unit:u-medic", "unit:u-school", "volunteer:v-nurse", "volunteer:v-cook"]


def test_realert_goes_only_to_matching_volunteers_alerted_fewer_than_twice() -> None:
    extra = [
        *VOLUNTEERS,
        Volunteer(id="v-medic2", name="M2", community_id="c1", skills=("first aid",)),
    ]
    found = rules.for_realert(demand(), extra, {"v-nurse": 2, "v-medic2": 1}, [])
    assert ids(found) == ["volunteer:v-medic2"]


def test_realert_leaves_alone_those_who_already_claimed() -> None:
    found = rules.for_realert(demand(), VOLUNTEERS, {"v-nurse": 1}, ["v-nurse"])
    assert found == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [({"filled": 3}, []), ({"status": "cancelled"}, []), ({"filled": 2}, ["volunteer:v-nurse"])],
)
def test_realert_only_while_the_demand_is_unfilled(
    changes: dict[str, Any], expected: list[str]
) -> None:
    found = rules.for_realert(demand(**changes), VOLUNTEERS, {"v-nurse": 1}, [])
    assert ids(found) == expected


def test_escalation_reaches_the_secretary_and_the_level_it_went_to() -> None:
    assert ids(rules.for_escalation("c1", "street", "s1")) == ["secretary:c1", "street:s1"]
    assert ids(rules.for_escalation("c1", "district", "d-1")) == [
        "secretary:c1",
        "district:d-1",
    ]


def test_a_cancellation_reaches_every_holder_once_and_not_the_waitlist() -> None:
    def claim(claim_id: str, who: str, status: str, kind: str = "volunteer") -> Claim:
        return Claim.model_validate(
            {
                "id": claim_id,
                "demand_id": "d1",
                "claimant": Claimant(type=kind, id=who),
                "headcount": 1,
                "status": status,
            }
        )

    claims = [
        claim("k1", "v1", "accepted"),
        claim("k2", "u1", "checked_in", "unit"),
        claim("k3", "v3", "waitlisted"),
        claim("k4", "v4", "withdrawn"),
        claim("k5", "u1", "accepted", "unit"),
    ]
    assert ids(rules.holders(claims)) == ["volunteer:v1", "unit:u1"]


def test_inbox_owners() -> None:
    assert rules.owner_key(rules.unit("u1")) == "unit:u1"
    assert rules.owner_key(rules.volunteer("v1")) == "volunteer:v1"
    for kind in ("secretary", "street", "district"):
        assert rules.owner_key(Recipient(type=kind, id="x")) == "office:x"


def test_notification_ids_are_deterministic_per_cause_and_recipient() -> None:
    unit = rules.unit("u1")
    assert notification_id("event-1", unit) == notification_id("event-1", unit)
    assert notification_id("event-1", unit) != notification_id("event-2", unit)
    assert notification_id("event-1", unit) != notification_id("event-1", rules.unit("u2"))
    assert notification_id("e", Recipient(type="secretary", id="x")) != notification_id(
        "e", Recipient(type="street", id="x")
    )
