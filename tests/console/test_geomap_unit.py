"""The map's projection and drawing, without I/O: fit to the community's bounds, shapes kept,
every grid labelled with its level's word (never colour alone), markers where demands are."""

import math
import re

import pytest

from services.console.config import ZONE_PALETTE, ConsoleSettings
from services.console.domain.geomap import (
    Marker,
    Words,
    bounds_of,
    fit,
    grid_centres,
    label_point,
    positions,
    render,
)
from tests.dispatch.geojson import community_grid

pytestmark = pytest.mark.unit

WORDS = Words(
    title="Risk zones",
    description="two grids",
    levels={"red": "红", "orange": "橙", "yellow": "黄", "blue": "蓝", "green": "绿"},
    unrated="未评级",
)


def test_the_projection_fits_the_bounds_and_keeps_the_shape() -> None:
    # A square kilometre-ish box at 60 N: a degree of longitude is half a degree of latitude.
    projection = fit((10.0, 60.0, 10.02, 60.01), width=800, max_height=2000, pad=20)
    west_north = projection.xy(10.0, 60.01)
    east_south = projection.xy(10.02, 60.0)
    assert west_north == pytest.approx((20, 20))
    assert east_south[0] == pytest.approx(780)
    assert projection.width == pytest.approx(800)
    # 0.02 deg lon * cos(60 deg) = 0.01 "equal" degrees, as tall as 0.01 deg lat: a square.
    assert east_south[1] - west_north[1] == pytest.approx(760, rel=1e-3)
    assert projection.height == pytest.approx(800, rel=1e-3)
    assert projection.kx / projection.ky == pytest.approx(math.cos(math.radians(60.005)))


def test_a_tall_community_is_fit_to_the_height_and_a_point_gets_an_extent() -> None:
    tall = fit((121.0, 31.0, 121.001, 31.1), width=800, max_height=600, pad=10)
    assert tall.height == pytest.approx(600)
    assert tall.width < 800
    single = fit((121.47, 31.23, 121.47, 31.23))
    x, y = single.xy(121.47, 31.23)
    assert 0 < x < single.width
    assert 0 < y < single.height


def test_labels_go_to_the_centroid_of_the_largest_ring() -> None:
    square = {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]}
    assert label_point(square) == pytest.approx((1, 1))
    multi = {
        "type": "MultiPolygon",
        "coordinates": [
            [[[10, 10], [10.1, 10], [10.1, 10.1], [10, 10.1], [10, 10]]],
            square["coordinates"],
        ],
    }
    assert label_point(multi) == pytest.approx((1, 1))
    assert label_point({"type": "Point", "coordinates": [5, 6]}) == (5, 6)


def test_every_grid_is_filled_and_labelled_with_its_level_and_markers_are_drawn() -> None:
    geojson = community_grid()
    extent = bounds_of(positions(geojson["features"]))
    assert extent == pytest.approx((121.470, 31.230, 121.474, 31.232))
    centres = grid_centres(geojson)
    assert centres["g-1"] == pytest.approx((121.471, 31.231))
    svg = str(
        render(
            geojson,
            {"g-1": "red"},
            ZONE_PALETTE,
            WORDS,
            [Marker(1, *centres["g-1"], title="北门<值守>")],
        )
    )
    assert svg.startswith('<svg class="zone-map"')
    assert 'role="img"' in svg
    assert '<title id="map-title">Risk zones</title>' in svg
    assert re.search(r'fill="#d7191c"[^>]*data-grid="g-1" data-level="red"', svg)
    assert re.search(r'fill="#e6e6e6"[^>]*data-grid="g-2" data-level=""', svg)
    # The word beside the colour, for each grid: 红 for the rated one, 未评级 for the other.
    assert svg.count('class="level-word">红<') == 1
    assert svg.count('class="level-word">未评级<') == 1
    assert "北门&lt;值守&gt;" in svg  # escaped
    assert svg.count('class="marker"') == 1
    # The demand known only by its grid is marked below the grid's label, not over it.
    label = re.search(r'class="grid-label" data-grid="g-1"><tspan x="([\d.]+)"', svg)
    label_y = re.search(
        r'y="([\d.]+)" text-anchor="middle" class="grid-label" data-grid="g-1"', svg
    )
    circle = re.search(r'<circle cx="([\d.]+)" cy="([\d.]+)"', svg)
    assert label
    assert label_y
    assert circle
    assert float(circle.group(1)) == pytest.approx(float(label.group(1)))
    assert float(circle.group(2)) >= float(label_y.group(1)) + 44


def test_the_palette_is_configurable_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WHISTLE_ZONE_PALETTE", '{"red": "#aa0000"}')
    palette = ConsoleSettings().zone_palette
    assert palette["red"] == "#aa0000"
    assert palette["green"] == ZONE_PALETTE["green"]  # the rest keep their defaults
    monkeypatch.setenv("WHISTLE_ZONE_PALETTE", '{"purple": "#aa00aa"}')
    with pytest.raises(ValueError, match="no such level: purple"):
        ConsoleSettings()
    monkeypatch.setenv("WHISTLE_ZONE_PALETTE", '{"red": "red"}')
    with pytest.raises(ValueError, match="like #d7191c"):
        ConsoleSettings()
