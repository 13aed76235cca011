"""Where each event goes (pure): a demand's whole story in one partition."""

from typing import Any

import pytest

from services.audit.domain.partitions import DEFAULT, PartitionBy, place, route_keys
from shared.events import catalogue as c
from tests.support.events import event_of

pytestmark = pytest.mark.unit


def wire(data: c.EventData, subject: str = "s") -> dict[str, Any]:
    return event_of(data, subject=subject).wire()


REGISTERED = wire(c.CommunityRegistered(community_id="c-1", name="N", street="s", district="d-1"))
CANCELLED = wire(c.DemandCancelled(demand_id="dem-1", community_id="c-1", reason="rain"))
UNIT = wire(c.UnitRegistered(unit_id="u-1", name="Fire", kind="department", communities=("c-1",)))


def test_district_by_default_learnt_from_the_community_and_kept_for_the_demand() -> None:
    first = place(REGISTERED, PartitionBy.DISTRICT, {})
    assert first.partition == "d-1"
    assert first.fixes == {"community:c-1": "d-1"}
    later = place(CANCELLED, PartitionBy.DISTRICT, first.fixes)
    assert later.partition == "d-1"
    assert later.fixes == {"demand:dem-1": "d-1"}
    # Once a demand is placed it stays, whatever its community's route says later.
    moved = {"community:c-1": "d-9", "demand:dem-1": "d-1"}
    assert place(CANCELLED, PartitionBy.DISTRICT, moved).partition == "d-1"
    assert place(CANCELLED, PartitionBy.DISTRICT, moved).fixes == {}


def test_what_has_no_district_goes_to_default() -> None:
    assert place(UNIT, PartitionBy.DISTRICT, {}).partition == DEFAULT
    unknown = place(CANCELLED, PartitionBy.DISTRICT, {})
    assert unknown.partition == DEFAULT  # its community was never seen
    assert unknown.fixes == {"demand:dem-1": DEFAULT}  # and its story stays there


def test_by_community_and_one_partition() -> None:
    assert place(CANCELLED, PartitionBy.COMMUNITY, {}).partition == "c-1"
    assert place(UNIT, PartitionBy.COMMUNITY, {}).partition == DEFAULT
    assert place(REGISTERED, PartitionBy.NONE, {}).partition == DEFAULT
    assert route_keys(CANCELLED) == ["demand:dem-1", "community:c-1"]
