"""A community's grid upload checked strictly (GeoJSON, WGS-84), without I/O: each refusal
names the feature and the coordinate at fault."""

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from services.dispatch.domain import geo
from services.dispatch.domain.zones import Rating, map_as_of
from tests.dispatch.geojson import building, community_grid, grid, square

pytestmark = pytest.mark.unit


def refusal(upload: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    with pytest.raises(ValidationError) as raised:
        geo.GridUpload.model_validate(upload)
    first = raised.value.errors()[0]
    return tuple(first["loc"]), str(first["msg"])


def test_a_good_grid_is_kept_with_only_what_the_map_needs() -> None:
    upload = community_grid()
    upload["features"][0]["properties"]["resident"] = "Zhang San, 138 0000 0000"
    upload["features"][0]["geometry"]["coordinates"][0][0] = [121.47, 31.23, 12.5]
    upload["features"][0]["geometry"]["coordinates"][0][-1] = [121.47, 31.23, 12.5]
    parsed = geo.GridUpload.model_validate(upload)
    assert [g.properties.id for g in parsed.grids] == ["g-1", "g-2"]
    assert [b.properties.id for b in parsed.buildings] == ["b-1", "b-2"]
    stored = parsed.stored()
    first = stored["features"][0]
    assert first["properties"] == {"kind": "grid", "id": "g-1", "name": "一网格"}  # no resident
    assert first["geometry"]["coordinates"][0][0] == [121.47, 31.23]  # the altitude dropped
    assert geo.digest(stored) == geo.digest(copy.deepcopy(stored))
    assert len(geo.digest(stored)) == 64


@pytest.mark.parametrize(
    ("change", "where", "says"),
    [
        (
            lambda u: u["features"][0]["geometry"]["coordinates"][0].__setitem__(2, [121.4, 91]),
            ("features", 0, "grid", "geometry", "Polygon", "coordinates", 0, 2),
            "latitude 91",
        ),
        (
            lambda u: u["features"][2]["geometry"].__setitem__("coordinates", [181, 31]),
            ("features", 2, "building", "geometry", "Point", "coordinates"),
            "longitude 181",
        ),
        (
            lambda u: u["features"][0]["geometry"]["coordinates"][0].__setitem__(-1, [1.0, 1.0]),
            ("features", 0, "grid", "geometry", "Polygon", "coordinates", 0),
            "closed",
        ),
        (
            lambda u: u["features"][0]["geometry"].__setitem__(
                "coordinates", [[[1, 1], [2, 2], [1, 1]]]
            ),
            ("features", 0, "grid", "geometry", "Polygon", "coordinates", 0),
            "at least 4 positions",
        ),
        (
            lambda u: u["features"][0]["geometry"]["coordinates"][0].__setitem__(1, [True, 31.2]),
            ("features", 0, "grid", "geometry", "Polygon", "coordinates", 0, 1, 0),
            "valid number",
        ),
        (
            lambda u: u["features"][0].__setitem__(
                "geometry", {"type": "Point", "coordinates": [121.47, 31.23]}
            ),
            ("features", 0, "grid", "geometry"),
            "",
        ),
        (
            lambda u: u["features"][0]["properties"].pop("id"),
            ("features", 0, "grid", "properties", "id"),
            "Field required",
        ),
        (
            lambda u: u["features"][3]["properties"].__setitem__("grid", "g-9"),
            (),
            "names grid 'g-9'",
        ),
        (
            lambda u: u["features"][1]["properties"].__setitem__("id", "g-1"),
            (),
            "the id 'g-1' names two features",
        ),
        (lambda u: u.__setitem__("crs", {"type": "name"}), ("crs",), "Extra inputs"),
        (lambda u: u.__setitem__("type", "Feature"), ("type",), "FeatureCollection"),
    ],
)
def test_what_is_wrong_is_named(change: Any, where: tuple[Any, ...], says: str) -> None:
    upload = community_grid()
    change(upload)
    loc, msg = refusal(upload)
    assert loc == where, msg
    assert says in msg


def test_an_upload_needs_a_grid_and_stays_within_its_limits() -> None:
    only_buildings = {"type": "FeatureCollection", "features": [building("b-1", 121.0, 31.0)]}
    assert "has no grid" in refusal(only_buildings)[1]
    too_many = {
        "type": "FeatureCollection",
        "features": [grid(f"g-{n}", 100 + n * 0.01, 30.0) for n in range(geo.MAX_FEATURES + 1)],
    }
    loc, msg = refusal(too_many)
    assert loc == ("features",)
    assert f"at most {geo.MAX_FEATURES} features in one upload" in msg
    long_ring = square(121.0, 31.0, 0.1)[0][:-1] * 2000 + [[121.0, 31.0]]
    feature = grid("g-1", 121.0, 31.0)
    feature["geometry"]["coordinates"] = [long_ring]
    loc, msg = refusal({"type": "FeatureCollection", "features": [feature]})
    assert loc[-1] == 0
    assert f"at most {geo.MAX_RING_POSITIONS}" in msg


def rating(grid: str, level: Any, minute: int, version: int) -> Rating:
    from datetime import UTC, datetime

    return Rating(
        id=f"zr_{grid}_{version}",
        community_id="c-1",
        grid_id=grid,
        level=level,
        reason="r",
        rated_by="acc_1",
        rated_at=datetime(2030, 5, 1, 8, minute, tzinfo=UTC),
        version=version,
    )


def test_the_map_as_of_a_moment_is_each_grids_last_rating_by_then() -> None:
    from datetime import UTC, datetime

    history = [
        rating("g-1", "yellow", 0, 1),
        rating("g-2", "green", 5, 1),
        rating("g-1", "red", 10, 2),
    ]
    assert map_as_of(history, datetime(2030, 5, 1, 7, 59, tzinfo=UTC)) == {}
    before = map_as_of(history, datetime(2030, 5, 1, 8, 9, tzinfo=UTC))
    assert {grid: r.level for grid, r in before.items()} == {"g-1": "yellow", "g-2": "green"}
    now = map_as_of(history, None)
    assert {grid: r.level for grid, r in now.items()} == {"g-1": "red", "g-2": "green"}
