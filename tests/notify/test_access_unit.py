"""Who opens which inbox and who sees a notification's deliveries: pure predicates, and the
one refusal table that answers them."""

import pytest

from services.notify.domain.access import inbox_owner, may_see_deliveries, principal_key
from services.notify.domain.refusals import NoInbox, TooManyStreams
from services.notify.entrypoints.problems import REFUSALS
from shared.auth import Principal, Role
from shared.http.problems import problem_of

pytestmark = pytest.mark.unit

UNIT = Principal(sub="ann", role=Role.UNIT, unit="u-1")
VOLUNTEER = Principal(sub="bo", role=Role.VOLUNTEER, volunteer="v-1")
SECRETARY = Principal(sub="cy", role=Role.SECRETARY, community="c-1")
AUDITOR = Principal(sub="di", role=Role.AUDITOR)
ADMIN = Principal(sub="ed", role=Role.ADMIN)


def test_each_inbox_belongs_to_its_unit_volunteer_or_office() -> None:
    assert inbox_owner(UNIT) == "unit:u-1"
    assert inbox_owner(VOLUNTEER) == "volunteer:v-1"
    assert inbox_owner(SECRETARY) == "office:c-1"
    for nobody in (AUDITOR, ADMIN):
        with pytest.raises(NoInbox, match="has no inbox"):
            inbox_owner(nobody)


def test_deliveries_are_seen_by_their_owner_and_admins_only() -> None:
    assert may_see_deliveries(VOLUNTEER, "volunteer:v-1")
    assert not may_see_deliveries(VOLUNTEER, "volunteer:v-2")
    assert not may_see_deliveries(UNIT, "volunteer:v-1")
    assert may_see_deliveries(ADMIN, "volunteer:v-1")
    with pytest.raises(NoInbox):
        may_see_deliveries(AUDITOR, "volunteer:v-1")


def test_the_stream_limit_counts_a_person_in_a_role() -> None:
    assert principal_key(VOLUNTEER) == "volunteer:v-1:bo"
    assert principal_key(VOLUNTEER) != principal_key(VOLUNTEER.model_copy(update={"sub": "x"}))


def test_refusals_answer_with_their_problem() -> None:
    forbidden = problem_of(NoInbox("auditor"), REFUSALS)
    assert forbidden is not None
    assert (forbidden.status, forbidden.slug) == (403, "forbidden")
    limited = problem_of(TooManyStreams(5), REFUSALS)
    assert limited is not None
    assert (limited.status, limited.slug) == (429, "too-many-streams")
    assert limited.headers == {"Retry-After": "5"}
    assert "5 open streams" in limited.detail
