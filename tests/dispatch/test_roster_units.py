"""What a relay roster chooses from (issue 14): dispatch's projection of units' registry, fed
here on the real broker as units would (a correction may overtake the registration), and
the refusals of proposing and confirming."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.events.catalogue import UnitRegistered, UnitUpdated
from tests.conftest import bearer
from tests.dispatch.support import assert_problem, eventually, register_community, sign
from tests.support.events import event_of, publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

COMMUNITY = "c-relay"
SECRETARY = sign("secretary", community=COMMUNITY)


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        await register_community(
            http, sign("admin"), COMMUNITY, street="s-relay", district="d-relay"
        )
        yield http


async def serving(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = await client.get(f"/v1/communities/{COMMUNITY}/units", headers=bearer(SECRETARY))
    assert answer.status_code == 200, answer.text
    return {unit["id"]: unit for unit in answer.json()["items"]}


def registered(unit_id: str, communities: tuple[str, ...], **extra: Any) -> UnitRegistered:
    return UnitRegistered(
        unit_id=unit_id,
        name=f"Branch {unit_id}",
        kind="party_branch",
        communities=communities,
        **extra,
    )


async def test_units_serving_the_community_follow_registrations_and_corrections(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    await publish(
        module_rabbitmq_url,
        event_of(registered("unit_a", (COMMUNITY,), skills=("first aid",)), subject="unit_a"),
        event_of(registered("unit_far", ("c-south",)), subject="unit_far"),
    )
    found = await eventually(lambda: serving(client), lambda units: "unit_a" in units)
    assert found["unit_a"] == {
        "id": "unit_a",
        "name": "Branch unit_a",
        "kind": "party_branch",
        "communities": [COMMUNITY],
        "skills": ["first aid"],
    }
    assert "unit_far" not in found

    # A correction that overtakes the registration wins; the late registration gives the kind.
    moved = UnitUpdated(
        unit_id="unit_b", version=2, name="Branch B (renamed)", communities=(COMMUNITY,)
    )
    await publish(module_rabbitmq_url, event_of(moved, subject="unit_b"))
    await publish(
        module_rabbitmq_url, event_of(registered("unit_b", ("c-south",)), subject="unit_b")
    )
    found = await eventually(
        lambda: serving(client),
        lambda units: units.get("unit_b", {}).get("kind") == "party_branch",
    )
    assert found["unit_b"]["name"] == "Branch B (renamed)"
    assert found["unit_b"]["communities"] == [COMMUNITY]

    # A correction moving unit_a away takes it off the community's list.
    away = UnitUpdated(unit_id="unit_a", version=2, name="Branch unit_a", communities=("c-south",))
    await publish(module_rabbitmq_url, event_of(away, subject="unit_a"))
    found = await eventually(lambda: serving(client), lambda units: "unit_a" not in units)
    assert "unit_a" not in found


async def test_a_roster_no_unit_can_serve_is_proposed_with_every_day_unassigned_and_not_confirmed(
    client: httpx.AsyncClient, module_rabbitmq_url: str
) -> None:
    await publish(
        module_rabbitmq_url, event_of(registered("unit_plain", (COMMUNITY,)), subject="unit_plain")
    )
    await eventually(lambda: serving(client), lambda units: "unit_plain" in units)
    first = (datetime.now(UTC) + timedelta(days=3)).date()
    body = {
        "community_id": COMMUNITY,
        "units": ["unit_plain"],
        "first_day": first.isoformat(),
        "last_day": (first + timedelta(days=1)).isoformat(),
        "shift_start": "08:00",
        "shift_end": "12:00",
        "people_per_turn": 2,
        "skills": ["diving"],
    }
    proposed = await client.post("/v1/rosters", json=body, headers=bearer(SECRETARY))
    assert proposed.status_code == 201, proposed.text
    roster = proposed.json()
    assert roster["turns"] == []
    assert [gap["reason"] for gap in roster["unassigned"]] == ["no-eligible-unit"] * 2
    assert roster["excluded"] == [
        {"unit_id": "unit_plain", "reason": "skills-missing", "missing": ["diving"]}
    ]
    refused = await client.post(f"/v1/rosters/{roster['id']}/confirm", headers=bearer(SECRETARY))
    assert_problem(refused, 409, "roster-empty")
    listed = await client.get(
        "/v1/rosters", params={"community_id": COMMUNITY}, headers=bearer(SECRETARY)
    )
    assert [item["id"] for item in listed.json()["items"]] == [roster["id"]]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"last_day": "2020-01-01"}, None),
        ({"shift_start": "25:00"}, "shift_start"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"people_per_turn": 0}, "people_per_turn"),
        ({"units": []}, "units"),
        ({"blocked": [{"unit_id": "unit_other", "days": ["2030-01-01"]}]}, None),
        ({"first_day": "2020-01-01", "last_day": "2020-01-02"}, "first_day"),
    ],
)
async def test_a_roster_request_that_cannot_be_met_is_a_422_naming_what_is_wrong(
    client: httpx.AsyncClient, change: dict[str, Any], field: str | None
) -> None:
    first = (datetime.now(UTC) + timedelta(days=3)).date()
    body = {
        "community_id": COMMUNITY,
        "units": ["unit_plain"],
        "first_day": first.isoformat(),
        "last_day": (first + timedelta(days=1)).isoformat(),
        "shift_start": "08:00",
        "shift_end": "12:00",
        "people_per_turn": 2,
    } | change
    answer = await client.post("/v1/rosters", json=body, headers=bearer(SECRETARY))
    problem = assert_problem(answer, 422, "validation-error")
    if field is not None:
        assert field in str(problem["errors"]), problem
