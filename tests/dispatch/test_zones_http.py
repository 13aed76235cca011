"""The map's HTTP side at a real dispatch process, with units beside it on the real broker:
an admin uploads a community's grid (refused whole, naming what is wrong, when it is not
good GeoJSON), the secretary or the street rates its grids (`zone.rated`), the map as of a
moment, the history, a demand's grid and its level, and the zone rule that units applies."""

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.conftest import bearer
from tests.dispatch.geojson import community_grid
from tests.dispatch.support import (
    DispatchDb,
    assert_problem,
    demand_body,
    post_demand,
    register_community,
    sign,
)
from tests.support.events import EventCollector, collect
from tests.support.processes import ServiceProcess
from tests.units.support import wait_until

pytestmark = pytest.mark.e2e

COMMUNITY, STREET, DISTRICT = "c-map", "s-map", "d-map"
ADMIN = sign("admin")
SECRETARY = sign("secretary", community=COMMUNITY)
STREET_STAFF = sign("secretary", community=STREET)
OTHER_SECRETARY = sign("secretary", community="c-other")


@pytest.fixture(scope="module")
def units(start_module_service: Callable[..., ServiceProcess]) -> ServiceProcess:
    return start_module_service("units")


@pytest.fixture(scope="module")
async def events(module_rabbitmq_url: str) -> AsyncIterator[EventCollector]:
    async with collect(module_rabbitmq_url, "grid.*", "zone.*") as collector:
        yield collector


@pytest.fixture(scope="module")
async def client(
    dispatch: ServiceProcess, units: ServiceProcess, events: EventCollector
) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=dispatch.url, timeout=20) as http:
        await register_community(http, ADMIN, COMMUNITY, street=STREET, district=DISTRICT)
        await register_community(http, ADMIN, "c-other", street="s-other", district=DISTRICT)
        response = await http.put(
            f"/v1/communities/{COMMUNITY}/grid", json=community_grid(), headers=bearer(ADMIN)
        )
        assert response.status_code == 200, response.text
        yield http


async def units_knows(env: dict[str, str], version: int) -> None:
    """Wait until units has applied the rule and the grid's rating (another queue than the
    demand's: either may come first)."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env["MONGODB_URL"])
    db = mongo[f"{env['WHISTLE_DB_PREFIX']}units"]

    async def known() -> bool:
        level = await db["zone_levels"].find_one({"_id": f"{COMMUNITY}/g-1"})
        rule = await db["zone_rules"].find_one({"_id": COMMUNITY})
        return level is not None and level["version"] >= version and rule is not None

    try:
        assert await wait_until(known, bool)
    finally:
        await mongo.close()


async def rate(
    client: httpx.AsyncClient, grid: str, level: str, token: str = SECRETARY, reason: str = "r"
) -> httpx.Response:
    return await client.post(
        f"/v1/communities/{COMMUNITY}/zones/{grid}/ratings",
        json={"level": level, "reason": reason},
        headers=bearer(token),
    )


async def test_the_upload_keeps_the_grid_and_announces_only_its_ids_and_digest(
    client: httpx.AsyncClient, events: EventCollector
) -> None:
    response = await client.get(f"/v1/communities/{COMMUNITY}/grid", headers=bearer(SECRETARY))
    assert response.status_code == 200, response.text
    found = response.json()
    assert found["grid_ids"] == ["g-1", "g-2"]
    assert found["buildings"] == 2
    kinds = [f["properties"]["kind"] for f in found["geojson"]["features"]]
    assert kinds == ["grid", "grid", "building", "building"]
    [uploaded] = await events.wait_for("grid.uploaded")
    assert uploaded["subject"] == COMMUNITY
    assert uploaded["data"]["grid_ids"] == ["g-1", "g-2"]
    assert uploaded["data"]["digest"] == found["digest"]
    assert "geojson" not in uploaded["data"]
    assert "features" not in str(uploaded["data"])


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (
            lambda u: u["features"][0]["geometry"]["coordinates"][0].__setitem__(1, [121.4, 95]),
            ["body", "features", "0", "grid", "geometry", "Polygon", "coordinates", "0", "1"],
        ),
        (
            lambda u: u["features"][1]["geometry"]["coordinates"][0].pop(),
            ["body", "features", "1", "grid", "geometry", "Polygon", "coordinates", "0"],
        ),
        (lambda u: u.__setitem__("features", []), ["body", "features"]),
    ],
)
async def test_a_bad_upload_is_refused_whole_naming_what_is_wrong(
    client: httpx.AsyncClient, db: DispatchDb, change: Any, loc: list[Any]
) -> None:
    before = await db.db["grids"].find_one({"_id": COMMUNITY})
    upload = community_grid()
    change(upload)
    response = await client.put(
        f"/v1/communities/{COMMUNITY}/grid", json=upload, headers=bearer(ADMIN)
    )
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["loc"] == loc, problem
    assert await db.db["grids"].find_one({"_id": COMMUNITY}) == before


async def test_only_an_admin_uploads_and_the_map_is_for_its_community_street_and_auditors(
    client: httpx.AsyncClient,
) -> None:
    path = f"/v1/communities/{COMMUNITY}/grid"
    refused = await client.put(path, json=community_grid(), headers=bearer(SECRETARY))
    assert refused.status_code == 403
    for token in (SECRETARY, STREET_STAFF, sign("auditor"), ADMIN):
        assert (await client.get(path, headers=bearer(token))).status_code == 200
    other = await client.get(path, headers=bearer(OTHER_SECRETARY))
    assert_problem(other, 403, "forbidden")
    missing = await client.get("/v1/communities/c-other/grid", headers=bearer(ADMIN))
    assert_problem(missing, 404, "not-found")


async def test_ratings_make_the_map_and_its_history(
    client: httpx.AsyncClient, events: EventCollector
) -> None:
    first = await rate(client, "g-1", "yellow", reason="one case in building 1")
    assert first.status_code == 201, first.text
    await asyncio.sleep(0.05)
    between = datetime.now(UTC)
    await asyncio.sleep(0.05)
    second = await rate(client, "g-1", "red", STREET_STAFF, reason="cluster")
    assert second.status_code == 201, second.text
    assert second.json()["version"] == first.json()["version"] + 1
    assert (await rate(client, "g-2", "green")).status_code == 201

    async def zones(**params: str) -> dict[str, str]:
        response = await client.get(
            f"/v1/communities/{COMMUNITY}/zones", params=params, headers=bearer(SECRETARY)
        )
        assert response.status_code == 200, response.text
        return {z["grid_id"]: z["level"] for z in response.json()["zones"]}

    assert await zones() == {"g-1": "red", "g-2": "green"}
    assert (await zones(as_of=between.isoformat()))["g-1"] == "yellow"
    assert await zones(as_of="2000-01-01T00:00:00Z") == {}
    history = await client.get(
        f"/v1/communities/{COMMUNITY}/zones/history", headers=bearer(sign("auditor"))
    )
    levels = [(r["grid_id"], r["level"]) for r in history.json()["items"]]
    assert levels[:3] == [("g-2", "green"), ("g-1", "red"), ("g-1", "yellow")]
    rated = await events.wait_for("zone.rated", 3)
    red = next(e for e in rated if e["data"]["level"] == "red")
    assert red["subject"] == f"{COMMUNITY}/g-1"
    assert red["data"]["reason"] == "cluster"
    assert red["data"]["rated_by"] == red["actor"]


async def test_a_rating_is_refused_naming_why_and_changes_nothing(
    client: httpx.AsyncClient, db: DispatchDb
) -> None:
    before = await db.db["zone_ratings"].count_documents({})
    assert_problem(await rate(client, "g-1", "red", OTHER_SECRETARY), 403, "forbidden")
    assert_problem(await rate(client, "g-9", "red"), 404, "not-found")
    bad_level = assert_problem(await rate(client, "g-1", "purple"), 422, "validation-error")
    assert bad_level["errors"][0]["loc"] == ["body", "level"]
    blank = assert_problem(await rate(client, "g-1", "red", reason="  "), 422, "validation-error")
    assert blank["errors"][0]["loc"] == ["body", "reason"]
    volunteer = await rate(client, "g-1", "red", sign("volunteer", volunteer="vol_1"))
    assert_problem(volunteer, 403, "forbidden")
    assert await db.db["zone_ratings"].count_documents({}) == before


async def test_a_demand_names_one_of_its_communitys_grids_and_shows_its_level(
    client: httpx.AsyncClient,
) -> None:
    unknown = await client.post(
        "/v1/demands",
        json=demand_body(COMMUNITY, location={"grid": "g-9"}),
        headers=bearer(SECRETARY),
    )
    problem = assert_problem(unknown, 422, "unknown-grid")
    assert "g-9" in problem["detail"]
    assert (await rate(client, "g-2", "orange")).status_code == 201
    demand = await post_demand(client, SECRETARY, demand_body(COMMUNITY, location={"grid": "g-2"}))
    shown = await client.get(f"/v1/demands/{demand['id']}", headers=bearer(SECRETARY))
    assert shown.json()["zone_level"] == "orange"
    listed = await client.get(
        "/v1/demands", params={"community_id": COMMUNITY}, headers=bearer(SECRETARY)
    )
    [item] = [d for d in listed.json()["items"] if d["id"] == demand["id"]]
    assert item["zone_level"] == "orange"
    # A community with no grid uploaded takes any grid name, as before.
    free = await post_demand(
        client, OTHER_SECRETARY, demand_body("c-other", location={"grid": "anything"})
    )
    unrated = await client.get(f"/v1/demands/{free['id']}", headers=bearer(OTHER_SECRETARY))
    assert unrated.json()["zone_level"] is None


async def test_the_street_tightens_the_rule_and_units_refuses_the_vulnerable(
    client: httpx.AsyncClient,
    units: ServiceProcess,
    events: EventCollector,
    module_service_env: dict[str, str],
) -> None:
    """Dispatch -> RabbitMQ -> units: the rating, the rule and the demand as sent."""
    path = f"/v1/communities/{COMMUNITY}/zone-rule"
    rule = {"exposure_by_level": {"red": "high", "orange": "high"}}
    assert_problem(await client.put(path, json=rule, headers=bearer(SECRETARY)), 403, "forbidden")
    bad = await client.put(
        path, json={"exposure_by_level": {"crimson": "high"}}, headers=bearer(STREET_STAFF)
    )
    assert_problem(bad, 422, "validation-error")
    response = await client.put(path, json=rule, headers=bearer(STREET_STAFF))
    assert response.status_code == 200, response.text
    assert response.json()["exposure_by_level"] == {"red": "high", "orange": "high"}
    [announced] = await events.wait_for("zone.rule_set")
    assert announced["data"]["exposure_by_level"] == rule["exposure_by_level"]

    red = await rate(client, "g-1", "red", reason="cluster")
    assert red.status_code == 201, red.text
    await units_knows(module_service_env, red.json()["version"])
    starts = datetime.now(UTC) + timedelta(days=5)
    body = demand_body(
        COMMUNITY,
        location={"grid": "g-1"},
        starts_at=starts.isoformat(),
        ends_at=(starts + timedelta(hours=4)).isoformat(),
    )
    demand = await post_demand(client, SECRETARY, body)
    async with httpx.AsyncClient(base_url=units.url, timeout=20) as http:
        volunteers = []
        for birth_year in (starts.year - 65, starts.year - 25):
            registered = await http.post(
                "/v1/volunteers",
                headers=bearer(SECRETARY),
                json={
                    "name": "Wang Fang",
                    "community_id": COMMUNITY,
                    "skills": ["checkpoint", "first aid"],
                    "max_hours_per_week": 40,
                    "birth_year": birth_year,
                },
            )
            assert registered.status_code == 201, registered.text
            volunteers.append(registered.json()["id"])

        async def claim(volunteer_id: str) -> httpx.Response:
            return await http.post(
                f"/v1/demands/{demand['id']}/claims",
                headers=bearer(sign("volunteer", volunteer=volunteer_id)),
                json={"waitlist": False},
            )

        older, younger = volunteers
        refused = await wait_until(lambda: claim(older), lambda r: r.status_code != 404)
        problem = assert_problem(refused, 409, "not-eligible")
        assert problem["rule"] == "zone-exposure"
        assert problem["zone_level"] == "red"
        accepted = await claim(younger)
        assert accepted.status_code == 201, accepted.text
