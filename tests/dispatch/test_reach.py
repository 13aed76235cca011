"""Who reads which demand at dispatch (OWASP API1/API3): volunteers and units see the demands
of the communities they serve (learnt from units' registry events), the exact place and the
description only while their claim is accepted; anything else is a 403, a list is filtered."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shared.events.catalogue import (
    ClaimAccepted,
    Claimant,
    ClaimWithdrawn,
    UnitRegistered,
    VolunteerRegistered,
)
from tests.conftest import bearer
from tests.dispatch.support import (
    assert_problem,
    demand_body,
    eventually,
    post_demand,
    register_community,
    sign,
)
from tests.support.events import event_of, publish
from tests.support.processes import ServiceProcess

pytestmark = pytest.mark.e2e

NORTH, SOUTH = "c-reach-n", "c-reach-s"
VOLUNTEER = sign("volunteer", volunteer="vol-n")
UNIT = sign("unit", unit="unit-s")
STRANGER = sign("volunteer", volunteer="vol-unknown")
PLACE = {"grid": "G7", "building": "Building 3", "address": "Flat 201, 5 Elm Lane", "lat": 39.9}


@pytest.fixture(scope="module")
async def client(dispatch: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=15) as http:
        yield http


@pytest.fixture(scope="module")
async def demands(client: httpx.AsyncClient, module_rabbitmq_url: str) -> dict[str, dict[str, Any]]:
    admin = sign("admin")
    await register_community(client, admin, NORTH, street="s-reach", district="d-reach")
    await register_community(client, admin, SOUTH, street="s-reach", district="d-reach")
    north = await post_demand(
        client,
        sign("secretary", community=NORTH),
        demand_body(NORTH, title="Groceries", description="Knock twice", location=PLACE),
    )
    south = await post_demand(client, sign("secretary", community=SOUTH), demand_body(SOUTH))
    await publish(
        module_rabbitmq_url,
        event_of(
            VolunteerRegistered(volunteer_id="vol-n", name="Wang", community_id=NORTH),
            subject="vol-n",
        ),
        event_of(
            UnitRegistered(unit_id="unit-s", name="School", kind="school", communities=(SOUTH,)),
            subject="unit-s",
        ),
    )
    for token in (VOLUNTEER, UNIT):  # the registrations have travelled

        async def probe(token: str = token) -> list[str]:
            return await _ids(client, token)

        await eventually(probe, lambda ids: len(ids) == 1, timeout=15)
    return {"north": north, "south": south}


async def _ids(client: httpx.AsyncClient, token: str, **params: Any) -> list[str]:
    response = await client.get("/v1/demands", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def _get(client: httpx.AsyncClient, token: str, demand_id: str) -> httpx.Response:
    return await client.get(f"/v1/demands/{demand_id}", headers=bearer(token))


async def test_a_volunteer_and_a_unit_read_only_their_communities_demands(
    client: httpx.AsyncClient, demands: dict[str, dict[str, Any]]
) -> None:
    north, south = demands["north"]["id"], demands["south"]["id"]
    assert await _ids(client, VOLUNTEER) == [north]
    assert await _ids(client, UNIT) == [south]
    assert (await _get(client, VOLUNTEER, north)).status_code == 200
    assert_problem(await _get(client, VOLUNTEER, south), 403, "forbidden")
    assert_problem(await _get(client, UNIT, north), 403, "forbidden")
    refused = await client.get(
        "/v1/demands", params={"community_id": SOUTH}, headers=bearer(VOLUNTEER)
    )
    assert_problem(refused, 403, "forbidden")
    # Not (yet) known to dispatch: nothing within reach.
    assert await _ids(client, STRANGER) == []
    assert_problem(await _get(client, STRANGER, north), 403, "forbidden")
    # Auditors and admins read everything.
    for token in (sign("auditor"), sign("admin")):
        assert set(await _ids(client, token)) >= {north, south}


async def test_the_exact_place_reaches_a_claimant_only_while_the_claim_is_accepted(
    client: httpx.AsyncClient, module_rabbitmq_url: str, demands: dict[str, dict[str, Any]]
) -> None:
    demand = demands["north"]
    before = (await _get(client, VOLUNTEER, demand["id"])).json()
    assert before["title"] == "Groceries"
    assert before["location"] == {
        "grid": "G7",
        "building": None,
        "address": None,
        "lat": None,
        "lon": None,
    }
    assert before["description"] is None
    assert before["details_withheld"] is True
    listed = (await client.get("/v1/demands", headers=bearer(VOLUNTEER))).json()["items"][0]
    assert listed["location"]["address"] is None
    assert listed["description"] is None

    claim: dict[str, Any] = {
        "claim_id": "clm-reach-1",
        "demand_id": demand["id"],
        "community_id": NORTH,
        "claimant": Claimant(type="volunteer", id="vol-n"),
        "headcount": 1,
    }
    accepted = event_of(ClaimAccepted(**claim, filled=1, slots=4), subject=demand["id"])
    await publish(module_rabbitmq_url, accepted)
    after = await eventually(
        lambda: _get(client, VOLUNTEER, demand["id"]),
        lambda response: not response.json()["details_withheld"],
        timeout=15,
    )
    shown = after.json()
    assert shown["location"]["address"] == "Flat 201, 5 Elm Lane"
    assert shown["location"]["building"] == "Building 3"
    assert shown["description"] == "Knock twice"

    withdrawn = event_of(ClaimWithdrawn(**claim, filled=0, slots=4), subject=demand["id"])
    late = event_of(ClaimAccepted(**claim, filled=1, slots=4), subject=demand["id"])
    await publish(module_rabbitmq_url, withdrawn, late)  # an accept arriving late revives nothing
    again = await eventually(
        lambda: _get(client, VOLUNTEER, demand["id"]),
        lambda response: response.json()["details_withheld"],
        timeout=15,
    )
    assert again.json()["location"]["address"] is None

    # The demand's secretary (and auditors) see everything, claim or not.
    for token in (sign("secretary", community=NORTH), sign("auditor")):
        full = (await _get(client, token, demand["id"])).json()
        assert full["location"]["address"] == "Flat 201, 5 Elm Lane"
        assert full["description"] == "Knock twice"
        assert full["details_withheld"] is False
