"""A community's grid as an admin uploads it: GeoJSON (RFC 7946, WGS-84), checked strictly.

A FeatureCollection of grids (`properties.kind = "grid"`: Polygon or MultiPolygon) and
buildings (`"building"`: Polygon or Point), each with an `id` unique in the upload. Every
position is `[longitude, latitude]` (an altitude may follow and is dropped) inside the valid
ranges, every ring has at least four positions and ends where it starts, and the upload stays
within the limits below. A refusal is pydantic's: its `loc` names the feature and the
coordinate at fault.

Only what the map needs is kept: a feature's other properties are dropped, since a GIS export
may carry residents' names or phones in them, and personal data has no place in a map.
"""

import hashlib
import json
from collections.abc import Iterator
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    model_validator,
)

# Bounds of one upload: a community's grid is tens of grids and a few hundred buildings
# (the request body limit, 64 KiB by default, comes first: a feature is 150-250 bytes).
MAX_FEATURES = 300
MAX_RING_POSITIONS = 2000
MAX_POSITIONS = 20_000
MAX_RINGS = 100
MAX_POLYGONS = 100

Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Coordinate = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _position(value: list[float]) -> list[float]:
    if len(value) not in (2, 3):
        raise ValueError(f"a position is [longitude, latitude], got {len(value)} numbers")
    lon, lat = value[0], value[1]
    if not -180 <= lon <= 180:
        raise ValueError(f"longitude {lon} is outside -180..180 (positions are [lon, lat])")
    if not -90 <= lat <= 90:
        raise ValueError(f"latitude {lat} is outside -90..90 (positions are [lon, lat])")
    return [lon, lat]  # an altitude is dropped: the map is flat


Position = Annotated[list[Coordinate], AfterValidator(_position)]


def _ring(value: list[list[float]]) -> list[list[float]]:
    if len(value) < 4:
        raise ValueError(f"a linear ring has at least 4 positions, this one {len(value)}")
    if value[0] != value[-1]:
        raise ValueError("a linear ring is closed: its last position must equal its first")
    return value


def _at_most[T](limit: int, what: str) -> AfterValidator:
    """A bound checked after parsing rather than declared as `maxItems`: the body limit
    bounds what can arrive, and a schema's `maxItems` invites clients (and fuzzers) to send
    one item more in a body past that limit, which can only be a 413."""

    def check(items: list[T]) -> list[T]:
        if len(items) > limit:
            raise ValueError(f"at most {limit} {what}, got {len(items)}")
        return items

    return AfterValidator(check)


Ring = Annotated[
    list[Position], _at_most(MAX_RING_POSITIONS, "positions in a ring"), AfterValidator(_ring)
]
PolygonRings = Annotated[list[Ring], Field(min_length=1), _at_most(MAX_RINGS, "rings")]


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Polygon(Strict):
    type: Literal["Polygon"]
    coordinates: PolygonRings


class MultiPolygon(Strict):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[
        list[PolygonRings], Field(min_length=1), _at_most(MAX_POLYGONS, "polygons")
    ]


class Point(Strict):
    type: Literal["Point"]
    coordinates: Position


class GridProperties(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")  # other properties are dropped

    kind: Literal["grid"]
    id: Identifier
    name: Name | None = None


class BuildingProperties(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    kind: Literal["building"]
    id: Identifier
    name: Name | None = None
    grid: Identifier | None = None  # the grid it stands in, when the export says


class GridFeature(Strict):
    type: Literal["Feature"]
    geometry: Annotated[Polygon | MultiPolygon, Field(discriminator="type")]
    properties: GridProperties
    id: str | int | None = None
    bbox: Annotated[list[float], Field(max_length=6)] | None = None


class BuildingFeature(Strict):
    type: Literal["Feature"]
    geometry: Annotated[Polygon | Point, Field(discriminator="type")]
    properties: BuildingProperties
    id: str | int | None = None
    bbox: Annotated[list[float], Field(max_length=6)] | None = None


def _kind_of(value: Any) -> str:
    """Which feature model reads this one: by `properties.kind` (checked there)."""
    if isinstance(value, dict):
        properties = value.get("properties")
        if isinstance(properties, dict) and properties.get("kind") == "building":
            return "building"
    return "grid"


# Chosen by `properties.kind`: a plain union would report both models' errors for one bad
# feature; this reports the one that applies.
Feature = Annotated[
    Annotated[GridFeature, Tag("grid")] | Annotated[BuildingFeature, Tag("building")],
    Discriminator(_kind_of),
]


def _rings(geometry: Polygon | MultiPolygon | Point) -> Iterator[list[list[float]]]:
    if isinstance(geometry, Point):
        yield [geometry.coordinates]
    elif isinstance(geometry, Polygon):
        yield from geometry.coordinates
    else:
        for polygon in geometry.coordinates:
            yield from polygon


class GridUpload(Strict):
    """The GeoJSON body of `PUT /v1/communities/{id}/grid`."""

    type: Literal["FeatureCollection"]
    features: Annotated[
        list[Feature], Field(min_length=1), _at_most(MAX_FEATURES, "features in one upload")
    ]
    bbox: Annotated[list[float], Field(max_length=6)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        grids = [f for f in self.features if isinstance(f, GridFeature)]
        if not grids:
            raise ValueError("the upload has no grid (a feature with properties.kind 'grid')")
        seen: set[str] = set()
        for feature in self.features:
            if feature.properties.id in seen:
                raise ValueError(f"the id '{feature.properties.id}' names two features")
            seen.add(feature.properties.id)
        grid_ids = {g.properties.id for g in grids}
        for building in self.buildings:
            if building.properties.grid is not None and building.properties.grid not in grid_ids:
                raise ValueError(
                    f"building '{building.properties.id}' names grid "
                    f"'{building.properties.grid}', which is not in the upload"
                )
        positions = sum(len(ring) for f in self.features for ring in _rings(f.geometry))
        if positions > MAX_POSITIONS:
            raise ValueError(f"at most {MAX_POSITIONS} positions in one upload, got {positions}")
        return self

    @property
    def grids(self) -> list[GridFeature]:
        return [f for f in self.features if isinstance(f, GridFeature)]

    @property
    def buildings(self) -> list[BuildingFeature]:
        return [f for f in self.features if isinstance(f, BuildingFeature)]

    def stored(self) -> dict[str, Any]:
        """The GeoJSON as dispatch keeps and serves it: positions as [lon, lat], only the
        known properties, no foreign members."""
        return {
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "geometry": feature.geometry.model_dump(mode="json"),
                    "properties": feature.properties.model_dump(mode="json", exclude_none=True),
                }
                for feature in self.features
            ],
        }


def digest(geojson: dict[str, Any]) -> str:
    """sha256 of the canonical JSON (sorted keys, no spaces): what `grid.uploaded` proves."""
    canonical = json.dumps(geojson, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
