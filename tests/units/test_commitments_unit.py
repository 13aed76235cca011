"""Named rosters' rules (issue 14), pure: names checked against the headcount, a
substitution keeps the sheet's order, refusals name the field and never a person."""

from datetime import UTC, datetime, timedelta

import pytest

from services.units.domain.commitments import MembersFixed, checked_members, substituted
from services.units.domain.model import Claim, ClaimStatus
from services.units.domain.refusals import InvalidClaim
from shared.events.catalogue import Claimant

pytestmark = pytest.mark.unit
NOW = datetime(2030, 6, 1, 8, tzinfo=UTC)


def claim(
    headcount: int = 2, members: tuple[str, ...] = (), status: ClaimStatus = "accepted"
) -> Claim:
    return Claim(
        id="clm_1",
        demand_id="dem_1",
        community_id="c-1",
        claimant=Claimant(type="unit", id="unit_1"),
        headcount=headcount,
        members=members,
        status=status,
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=4),
        created_at=NOW,
        created_by="roster:ros_1",
        roster_id="ros_1",
    )


def test_names_up_to_the_headcount_are_taken_with_spaces_tidied() -> None:
    assert checked_members(claim(), ("Wang  Fang", " Liu Yang ")) == ("Wang Fang", "Liu Yang")
    assert checked_members(claim(), ()) == ()


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (("A", "B", "C"), "3 members named; the claim is for 2"),
        (("A", "A"), "a member is named twice"),
        (("A", "  "), "a member's name is blank"),
    ],
)
def test_more_names_than_people_twice_or_blank_are_refused(
    names: tuple[str, ...], said: str
) -> None:
    with pytest.raises(InvalidClaim) as refused:
        checked_members(claim(), names)
    assert str(refused.value) == said
    assert refused.value.errors == [
        {"loc": ["body", "members"], "msg": said, "type": "value_error"}
    ]


def test_a_substitute_takes_the_place_on_the_sheet() -> None:
    named = claim(members=("Wang Fang", "Liu Yang"))
    assert substituted(named, "Wang Fang", "Chen Jing") == ("Chen Jing", "Liu Yang")


def test_a_substitution_for_someone_not_named_or_already_named_is_refused_without_names() -> None:
    named = claim(members=("Wang Fang", "Liu Yang"))
    with pytest.raises(InvalidClaim) as absent:
        substituted(named, "Zhao Lei", "Chen Jing")
    assert "Zhao Lei" not in str(absent.value)
    assert absent.value.errors is not None
    assert absent.value.errors[0]["loc"] == ["body", "member"]
    with pytest.raises(InvalidClaim) as twice:
        substituted(named, "Wang Fang", "Liu Yang")
    assert "Liu Yang" not in str(twice.value)
    assert twice.value.errors is not None
    assert twice.value.errors[0]["loc"] == ["body", "substitute"]


def test_the_refusal_after_check_in_says_when_and_why() -> None:
    checked = claim(status="checked_in")
    said = str(MembersFixed(checked, NOW))
    assert "checked in at 2030-06-01T08:00:00+00:00" in said
    assert "fixed from check-in on" in said
