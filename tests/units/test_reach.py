"""Who reads what at units (OWASP API1/API3): open demands scoped like dispatch's reads and
paged; the exact place withheld from claimants; a unit's webhook URL shown only to admins."""

from datetime import timedelta
from typing import Any

import httpx
import pytest

from shared.clock import utcnow
from tests.conftest import bearer
from tests.units.support import ADMIN, UnitsWorld, problem_slug, tok, wait_until

pytestmark = pytest.mark.e2e

PLACE = {"grid": "G2", "building": "Building 3", "address": "Flat 201", "lat": 39.9, "lon": 116.4}


async def _open(world: UnitsWorld, token: str, **params: Any) -> httpx.Response:
    return await world.http.get(
        f"{world.url}/v1/open-demands", params=params, headers=bearer(token)
    )


def _ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_open_demands_are_scoped_to_reach(world: UnitsWorld) -> None:
    a = await world.community(street="s-reach-1")
    b = await world.community(street="s-reach-2", district="d-reach-2")
    in_a = await world.demand(a, street="s-reach-1")
    in_b = await world.demand(b, street="s-reach-2", district="d-reach-2")
    secretary_a = tok("secretary", community=a)
    secretary_b = tok("secretary", community=b)

    assert in_a in _ids(await _open(world, secretary_a))
    assert in_b not in _ids(await _open(world, secretary_a))
    refused = await _open(world, secretary_b, community_id=a)
    assert refused.status_code == 403
    assert problem_slug(refused) == "forbidden"

    volunteer = await world.volunteer(b)
    assert in_b in _ids(await _open(world, volunteer.token))
    assert in_a not in _ids(await _open(world, volunteer.token))
    assert (await _open(world, volunteer.token, community_id=a)).status_code == 403
    unit = await world.unit([a])
    assert in_a in _ids(await _open(world, unit.token))
    assert (await _open(world, unit.token, community_id=b)).status_code == 403
    # Escalated to the street: its staff (a secretary token for the street) read it too.
    street_staff = tok("secretary", community="s-reach-1")
    escalated = await world.demand(a, street="s-reach-1", level="street")
    assert escalated in _ids(await _open(world, street_staff))
    assert in_a not in _ids(await _open(world, street_staff))
    # Auditors and admins read everything.
    assert {in_a, in_b} <= set(_ids(await _open(world, tok("auditor"))))


async def test_open_demands_page_with_limit_and_cursor(world: UnitsWorld) -> None:
    community = await world.community()
    start = utcnow() + timedelta(days=2)
    made = [
        await world.demand(community, starts_at=start + timedelta(hours=hour)) for hour in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"community_id": community, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = await _open(world, ADMIN, **params)
        page = _ids(response)
        assert len(page) <= 2
        seen += page
        pages += 1
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == made  # most urgent first (same priority: earliest fill_by first), no repeats
    assert pages == 3
    bad = await _open(world, ADMIN, cursor="bm90LWEtY3Vyc29y")
    assert bad.status_code == 400
    assert problem_slug(bad) == "invalid-cursor"


async def test_claimants_see_the_grid_and_title_not_the_exact_place(world: UnitsWorld) -> None:
    community = await world.community()
    demand = await world.demand(community, description="Knock twice", location=PLACE)
    volunteer = await world.volunteer(community)
    response = await _open(world, volunteer.token)
    (item,) = [item for item in response.json()["items"] if item["id"] == demand]
    assert item["title"] == "North gate checkpoint"
    assert item["location"] == {
        "grid": "G2",
        "building": None,
        "address": None,
        "lat": None,
        "lon": None,
    }
    assert item["description"] is None
    assert item["details_withheld"] is True
    # The details come on their own queue (whistle.private): wait for them to land.
    full = await wait_until(
        lambda: _open(world, tok("secretary", community=community)),
        lambda response: any(
            item["id"] == demand and item["description"] for item in response.json()["items"]
        ),
    )
    (shown,) = [item for item in full.json()["items"] if item["id"] == demand]
    assert shown["location"]["address"] == "Flat 201"
    assert shown["description"] == "Knock twice"


async def test_a_units_webhook_url_is_shown_only_to_admins(world: UnitsWorld) -> None:
    community = await world.community()
    registered = await world.http.post(
        f"{world.url}/v1/units",
        headers=bearer(ADMIN),
        json={
            "name": "Water Works",
            "kind": "enterprise",
            "communities": [community],
            "contact": {"email": "ops@example.org", "webhook_url": "https://hooks.example/t0k3n"},
        },
    )
    assert registered.status_code == 201, registered.text
    unit_id = registered.json()["id"]
    url = f"{world.url}/v1/units/{unit_id}"
    admin_view = (await world.http.get(url, headers=bearer(ADMIN))).json()
    assert admin_view["contact"]["webhook_url"] == "https://hooks.example/t0k3n"
    for token in (
        tok("unit", unit=unit_id),
        tok("secretary", community=community),
        tok("auditor"),
    ):
        response = await world.http.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        assert response.json()["contact"]["webhook_url"] is None
        assert response.json()["contact"]["email"] == "ops@example.org"
