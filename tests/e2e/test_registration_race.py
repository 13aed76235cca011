"""Registering right after the community: units has perhaps not heard `community.registered`.

A setup script registers a community at dispatch and, at once, its volunteers and units at
units. Units learns of the community only from the event, so the registration waits for it
(bounded) rather than refusing a community that was registered a moment ago.
"""

import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import bearer
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e


def test_registrations_naming_a_community_registered_a_moment_ago_succeed(
    start_service: Callable[..., ServiceProcess], token: Callable[..., str]
) -> None:
    dispatch = start_service("dispatch")
    units = start_service("units")
    admin = bearer(token("admin"))
    with httpx.Client(timeout=30) as client:
        for round_number in range(5):  # each round a fresh community, no pause at all
            community = f"c-race-{round_number}-{uuid.uuid4().hex[:6]}"
            created = client.post(
                f"{dispatch.url}/v1/communities",
                headers=admin,
                json={"id": community, "name": "Race", "street": "s-1", "district": "d-1"},
            )
            assert created.status_code == 201, created.text
            secretary = bearer(token("secretary", community=community))
            volunteer = client.post(
                f"{units.url}/v1/volunteers",
                headers=secretary,
                json={"name": "Wang", "community_id": community, "skills": ["checkpoint"]},
            )
            assert volunteer.status_code == 201, volunteer.text
            unit = client.post(
                f"{units.url}/v1/units",
                headers=admin,
                json={"name": "School 3", "kind": "school", "communities": [community]},
            )
            assert unit.status_code == 201, unit.text

        started = time.monotonic()
        nowhere = client.post(
            f"{units.url}/v1/volunteers",
            headers=admin,
            json={"name": "Li", "community_id": "c-nobody-registered", "skills": []},
        )
        waited = time.monotonic() - started
    assert nowhere.status_code == 422, nowhere.text
    assert nowhere.json()["type"].endswith("/unknown-community")
    assert waited < 15, (
        f"a community nobody registered is refused after a bounded wait ({waited:.1f}s)"
    )


def test_the_wait_for_a_community_is_the_operators_to_set(
    start_service: Callable[..., ServiceProcess], token: Callable[..., str]
) -> None:
    units = start_service("units", WHISTLE_UNITS_COMMUNITY_ARRIVAL_S="0.3")
    with httpx.Client(timeout=30) as client:
        started = time.monotonic()
        nowhere = client.post(
            f"{units.url}/v1/volunteers",
            headers=bearer(token("admin")),
            json={"name": "Li", "community_id": "c-nobody-registered", "skills": []},
        )
        waited = time.monotonic() - started
    assert nowhere.status_code == 422, nowhere.text
    # The default waits 5 s; this one gave up after its 0.3 s.
    assert waited < 3, f"waited {waited:.1f}s"
