"""The relay roster's rotation (issue 14), a pure function: even load, blocked dates,
communities and skills, unassignable days reported, the same answer every time."""

from collections import Counter
from datetime import date, timedelta
from itertools import pairwise

from services.dispatch.domain.roster import Candidate, Excluded, Unassigned, days_between, propose

FIRST = date(2030, 6, 1)
COMMUNITY = "c-north"


def units(count: int) -> list[Candidate]:
    return [Candidate(f"unit-{index:02d}", frozenset({COMMUNITY})) for index in range(count)]


def test_thirty_days_over_ten_units_gives_each_unit_exactly_three_turns() -> None:
    days = days_between(FIRST, FIRST + timedelta(days=29))
    rotation = propose(units(10), days, COMMUNITY)
    assert len(days) == 30
    assert [turn.day for turn in rotation.turns] == days
    assert Counter(turn.unit_id for turn in rotation.turns) == {
        f"unit-{index:02d}": 3 for index in range(10)
    }
    assert rotation.load == {f"unit-{index:02d}": 3 for index in range(10)}
    assert rotation.unassigned == ()
    # A round robin: no unit serves two days running, each waits nine days for its next turn.
    by_unit: dict[str, list[date]] = {}
    for turn in rotation.turns:
        by_unit.setdefault(turn.unit_id, []).append(turn.day)
    assert all(
        (later - earlier).days == 10
        for served in by_unit.values()
        for earlier, later in pairwise(served)
    )


def test_the_rotation_is_deterministic_and_follows_the_listed_order() -> None:
    days = days_between(FIRST, FIRST + timedelta(days=6))
    listed = units(3)
    first = propose(listed, days, COMMUNITY)
    assert first == propose(listed, days, COMMUNITY)
    assert [turn.unit_id for turn in first.turns][:3] == ["unit-00", "unit-01", "unit-02"]
    reordered = propose(list(reversed(listed)), days, COMMUNITY)
    assert [turn.unit_id for turn in reordered.turns][:3] == ["unit-02", "unit-01", "unit-00"]


def test_blocked_dates_are_respected_and_the_others_pick_up_evenly() -> None:
    days = days_between(FIRST, FIRST + timedelta(days=11))
    blocked = frozenset(days[:6])  # unit-00 cannot serve the first six days
    candidates = [
        Candidate("unit-00", frozenset({COMMUNITY}), blocked=blocked),
        *units(4)[1:],
    ]
    rotation = propose(candidates, days, COMMUNITY)
    assert not any(turn.unit_id == "unit-00" and turn.day in blocked for turn in rotation.turns)
    assert rotation.load == {"unit-00": 3, "unit-01": 3, "unit-02": 3, "unit-03": 3}
    assert len(rotation.turns) == 12


def test_a_unit_blocked_throughout_leaves_its_share_to_the_others_evenly() -> None:
    days = days_between(FIRST, FIRST + timedelta(days=8))
    candidates = [
        Candidate("unit-00", frozenset({COMMUNITY}), blocked=frozenset(days)),
        *units(4)[1:],
    ]
    rotation = propose(candidates, days, COMMUNITY)
    assert rotation.load == {"unit-00": 0, "unit-01": 3, "unit-02": 3, "unit-03": 3}


def test_a_unit_free_only_late_still_gets_its_share() -> None:
    # unit-00 is free only for the last three of nine days: it takes them, not the others.
    days = days_between(FIRST, FIRST + timedelta(days=8))
    candidates = [
        *units(3)[1:],
        Candidate("unit-00", frozenset({COMMUNITY}), blocked=frozenset(days[:6])),
    ]
    rotation = propose(candidates, days, COMMUNITY)
    assert rotation.load == {"unit-01": 3, "unit-02": 3, "unit-00": 3}


def test_skills_filter_units_out_and_say_which_skills_are_missing() -> None:
    medics = [
        Candidate(f"medic-{index}", frozenset({COMMUNITY}), frozenset({"first aid", "driving"}))
        for index in range(2)
    ]
    plain = Candidate("plain", frozenset({COMMUNITY}), frozenset({"driving"}))
    rotation = propose(
        [plain, *medics], days_between(FIRST, FIRST + timedelta(days=3)), COMMUNITY, ["first aid"]
    )
    assert {turn.unit_id for turn in rotation.turns} == {"medic-0", "medic-1"}
    assert rotation.load == {"medic-0": 2, "medic-1": 2}
    assert rotation.excluded == (Excluded("plain", "skills-missing", ("first aid",)),)


def test_units_of_other_communities_take_no_turn() -> None:
    elsewhere = Candidate("far", frozenset({"c-south"}))
    rotation = propose(
        [elsewhere, *units(2)], days_between(FIRST, FIRST + timedelta(days=1)), COMMUNITY
    )
    assert {turn.unit_id for turn in rotation.turns} == {"unit-00", "unit-01"}
    assert rotation.excluded == (Excluded("far", "not-in-community"),)


def test_days_no_unit_can_serve_are_reported_not_dropped() -> None:
    days = days_between(FIRST, FIRST + timedelta(days=3))
    both_off = frozenset({days[1]})
    candidates = [
        Candidate("unit-a", frozenset({COMMUNITY}), blocked=both_off),
        Candidate("unit-b", frozenset({COMMUNITY}), blocked=both_off),
    ]
    rotation = propose(candidates, days, COMMUNITY)
    assert [turn.day for turn in rotation.turns] == [days[0], days[2], days[3]]
    assert rotation.unassigned == (Unassigned(days[1], "every-unit-blocked"),)

    nobody = propose([Candidate("far", frozenset({"c-south"}))], days[:2], COMMUNITY)
    assert nobody.turns == ()
    assert nobody.unassigned == tuple(Unassigned(day, "no-eligible-unit") for day in days[:2])


def test_a_unit_listed_twice_counts_once() -> None:
    listed = units(2)
    rotation = propose(
        [listed[0], listed[1], listed[0]], days_between(FIRST, FIRST + timedelta(days=3)), COMMUNITY
    )
    assert rotation.load == {"unit-00": 2, "unit-01": 2}
