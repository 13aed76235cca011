"""A small community grid as an admin's GIS export gives it: two grids, buildings."""

from typing import Any


def square(west: float, south: float, size: float) -> list[list[list[float]]]:
    ring = [
        [west, south],
        [west + size, south],
        [west + size, south + size],
        [west, south + size],
        [west, south],
    ]
    return [ring]


def grid(grid_id: str, west: float, south: float, size: float = 0.002, **props: Any) -> Any:
    return {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": square(west, south, size)},
        "properties": {"kind": "grid", "id": grid_id, **props},
    }


def building(building_id: str, lon: float, lat: float, **props: Any) -> Any:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {"kind": "building", "id": building_id, **props},
    }


def community_grid() -> dict[str, Any]:
    """Two grids side by side near 31.23 N 121.47 E, a building in each, one polygon one."""
    return {
        "type": "FeatureCollection",
        "features": [
            grid("g-1", 121.470, 31.230, name="一网格"),
            grid("g-2", 121.472, 31.230, name="二网格"),
            building("b-1", 121.4704, 31.2305, name="1号楼", grid="g-1"),
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": square(121.4725, 31.2305, 0.0004)},
                "properties": {"kind": "building", "id": "b-2", "name": "2号楼", "grid": "g-2"},
            },
        ],
    }
