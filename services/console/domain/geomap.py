"""A community's map drawn on the server as SVG: no tile server, no script, no internet; it
prints as it shows (A4, see the print stylesheet).

An equirectangular projection fit to the community's bounds: x grows with longitude scaled by
the cosine of the middle latitude (so a community's streets keep their shape), y falls with
latitude. Each grid is filled with its level's colour AND labelled with its name and the
level's word, so the map is never read by colour alone; the legend beside it (in the page)
says the same words. Buildings are drawn over the grids, open demands as numbered markers.
"""

import itertools
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

Bounds = tuple[float, float, float, float]  # west, south, east, north
Point = tuple[float, float]

# A community a few hundred metres across: a map this wide shows it at a readable size.
WIDTH = 800
MAX_HEIGHT = 720
PAD = 24
# A map of one point (or of nothing) still needs an extent: about 100 m around it.
MIN_SPAN_DEG = 0.001
UNRATED_FILL = "#e6e6e6"


@dataclass(frozen=True)
class Projection:
    """Longitude/latitude to SVG pixels; `width` x `height` holds the bounds plus `pad`."""

    west: float
    north: float
    kx: float  # pixels per degree of longitude
    ky: float  # pixels per degree of latitude
    width: float
    height: float
    pad: float

    def xy(self, lon: float, lat: float) -> Point:
        return (self.pad + (lon - self.west) * self.kx, self.pad + (self.north - lat) * self.ky)


def fit(
    bounds: Bounds, width: float = WIDTH, max_height: float = MAX_HEIGHT, pad: float = PAD
) -> Projection:
    """The projection that fits `bounds` into `width` (and at most `max_height`)."""
    west, south, east, north = bounds
    if east - west < MIN_SPAN_DEG:
        middle = (east + west) / 2
        west, east = middle - MIN_SPAN_DEG / 2, middle + MIN_SPAN_DEG / 2
    if north - south < MIN_SPAN_DEG:
        middle = (north + south) / 2
        south, north = middle - MIN_SPAN_DEG / 2, middle + MIN_SPAN_DEG / 2
    shrink = max(math.cos(math.radians((south + north) / 2)), 0.01)
    span_x = (east - west) * shrink
    span_y = north - south
    scale = (width - 2 * pad) / span_x
    if span_y * scale > max_height - 2 * pad:
        scale = (max_height - 2 * pad) / span_y
    return Projection(
        west=west,
        north=north,
        kx=scale * shrink,
        ky=scale,
        width=round(span_x * scale + 2 * pad, 1),
        height=round(span_y * scale + 2 * pad, 1),
        pad=pad,
    )


def polygons_of(geometry: Mapping[str, Any]) -> list[list[list[Point]]]:
    """A geometry's polygons (each a list of rings); a Point is none."""
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates") or []
    polygons = [coordinates] if kind == "Polygon" else coordinates if kind == "MultiPolygon" else []
    return [[[(p[0], p[1]) for p in ring] for ring in polygon] for polygon in polygons]


def positions(features: Iterable[Mapping[str, Any]]) -> Iterator[Point]:
    for feature in features:
        geometry = feature.get("geometry") or {}
        if geometry.get("type") == "Point":
            lon, lat = geometry["coordinates"][:2]
            yield (lon, lat)
        for polygon in polygons_of(geometry):
            for ring in polygon:
                yield from ring


def bounds_of(points: Iterable[Point]) -> Bounds | None:
    found = list(points)
    if not found:
        return None
    lons = [lon for lon, _ in found]
    lats = [lat for _, lat in found]
    return (min(lons), min(lats), max(lons), max(lats))


def ring_area_centroid(ring: Sequence[Point]) -> tuple[float, Point]:
    """The signed area and the centroid of a closed ring (shoelace); a degenerate ring's
    centroid is the mean of its positions."""
    area = cx = cy = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(ring):
        cross = x0 * y1 - x1 * y0
        area += cross
        cx += (x0 + x1) * cross
        cy += (y0 + y1) * cross
    area /= 2
    if abs(area) < 1e-15:
        n = max(len(ring), 1)
        return 0.0, (sum(x for x, _ in ring) / n, sum(y for _, y in ring) / n)
    return area, (cx / (6 * area), cy / (6 * area))


def label_point(geometry: Mapping[str, Any]) -> Point | None:
    """Where a feature's label goes: the centroid of its largest outer ring (a Point: itself)."""
    if geometry.get("type") == "Point":
        lon, lat = geometry["coordinates"][:2]
        return (lon, lat)
    best: tuple[float, Point] | None = None
    for polygon in polygons_of(geometry):
        area, centre = ring_area_centroid(polygon[0])
        if best is None or abs(area) > best[0]:
            best = (abs(area), centre)
    return best[1] if best else None


def _path(projection: Projection, polygons: list[list[list[Point]]]) -> str:
    parts = []
    for polygon in polygons:
        for ring in polygon:
            points = [projection.xy(lon, lat) for lon, lat in ring]
            head, *rest = points
            parts.append(
                f"M{head[0]:.1f},{head[1]:.1f}"
                + "".join(f"L{x:.1f},{y:.1f}" for x, y in rest)
                + "Z"
            )
    return "".join(parts)


@dataclass(frozen=True)
class Marker:
    """An open demand on the map: its number in the list beside it, where, and its title."""

    number: int
    lon: float
    lat: float
    title: str


@dataclass(frozen=True)
class Words:
    """The map's words in the reader's language."""

    title: str
    description: str
    levels: Mapping[str, str]  # level -> its word (红 / Red ...)
    unrated: str


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render(
    geojson: Mapping[str, Any],
    levels: Mapping[str, str],
    palette: Mapping[str, str],
    words: Words,
    markers: Sequence[Marker] = (),
) -> Markup:
    """The map as an SVG element. `levels`: grid id -> level (a grid not in it is unrated)."""
    features = list(geojson.get("features") or [])
    extent = bounds_of([*positions(features), *((m.lon, m.lat) for m in markers)])
    if extent is None:
        return Markup("")
    projection = fit(extent)
    grids = [f for f in features if (f.get("properties") or {}).get("kind") == "grid"]
    buildings = [f for f in features if (f.get("properties") or {}).get("kind") == "building"]
    out = [
        Markup(
            '<svg class="zone-map" xmlns="http://www.w3.org/2000/svg" role="img" '
            'viewBox="0 0 {w} {h}" width="100%" aria-labelledby="map-title map-desc">'
            '<title id="map-title">{title}</title><desc id="map-desc">{desc}</desc>'
            '<rect class="map-ground" x="0" y="0" width="{w}" height="{h}" fill="#fafaf7"></rect>'
        ).format(w=projection.width, h=projection.height, title=words.title, desc=words.description)
    ]
    out.append(Markup('<g class="grids">'))
    labels = []
    for grid in grids:
        props = grid["properties"]
        level = levels.get(props["id"])
        fill = palette.get(level, UNRATED_FILL) if level else UNRATED_FILL
        said = words.levels.get(level, level) if level else words.unrated
        name = props.get("name") or props["id"]
        out.append(
            Markup(
                '<path d="{d}" fill="{fill}" fill-opacity="0.85" stroke="#333" '
                'stroke-width="1.5" data-grid="{id}" data-level="{level}">'
                "<title>{name}: {said}</title></path>"
            ).format(
                d=_path(projection, polygons_of(grid["geometry"])),
                fill=fill,
                id=props["id"],
                level=level or "",
                name=name,
                said=said,
            )
        )
        if (point := label_point(grid["geometry"])) is not None:
            labels.append((projection.xy(*point), name, said, props["id"]))
    out.append(Markup('</g><g class="buildings">'))
    for building in buildings:
        props = building["properties"]
        geometry = building["geometry"]
        name = props.get("name") or props["id"]
        if geometry.get("type") == "Point":
            x, y = projection.xy(*geometry["coordinates"][:2])
            out.append(
                Markup(
                    '<rect x="{x:.1f}" y="{y:.1f}" width="8" height="8" fill="#fff" '
                    'stroke="#222" stroke-width="1.2"><title>{name}</title></rect>'
                ).format(x=x - 4, y=y - 4, name=name)
            )
        else:
            out.append(
                Markup(
                    '<path d="{d}" fill="#ffffff" fill-opacity="0.75" stroke="#222" '
                    'stroke-width="1"><title>{name}</title></path>'
                ).format(d=_path(projection, polygons_of(geometry)), name=name)
            )
    out.append(Markup('</g><g class="grid-labels">'))
    for (x, y), name, said, grid_id in labels:
        out.append(
            Markup(
                '<text x="{x:.1f}" y="{y:.1f}" text-anchor="middle" class="grid-label" '
                'data-grid="{id}"><tspan x="{x:.1f}" dy="-0.2em">{name}</tspan>'
                '<tspan x="{x:.1f}" dy="1.25em" class="level-word">{said}</tspan></text>'
            ).format(x=x, y=y, id=grid_id, name=_short(name), said=said)
        )
    out.append(Markup('</g><g class="demand-markers">'))
    taken = [(x, y) for (x, y), *_ in labels]
    for marker in markers:
        x, y = _free_spot(projection.xy(marker.lon, marker.lat), taken)
        taken.append((x, y))
        out.append(
            Markup(
                '<g class="marker"><circle cx="{x:.1f}" cy="{y:.1f}" r="10" fill="#1a1a1a" '
                'stroke="#fff" stroke-width="2"></circle>'
                '<text x="{x:.1f}" y="{ty:.1f}" text-anchor="middle" class="marker-number">'
                "{n}</text>"
                '<text x="{lx:.1f}" y="{ty:.1f}" class="marker-label">{title}</text></g>'
            ).format(x=x, y=y, ty=y + 4, lx=x + 14, n=marker.number, title=_short(marker.title))
        )
    out.append(Markup("</g></svg>"))
    return Markup("").join(out)


# A marker this close to a label or another marker moves down a step, so neither hides
# the other (demands known only by their grid all sit at its centre, where its label is).
CLEARANCE = 44.0
STEP = 44.0


def _free_spot(at: Point, taken: Sequence[Point]) -> Point:
    x, y = at
    for _ in range(50):
        if all(abs(x - tx) >= CLEARANCE or abs(y - ty) >= CLEARANCE for tx, ty in taken):
            break
        y += STEP
    return (x, y)


def grid_centres(geojson: Mapping[str, Any]) -> dict[str, Point]:
    """Each grid's label point: where a demand known only by its grid is marked."""
    centres: dict[str, Point] = {}
    for feature in geojson.get("features") or []:
        props = feature.get("properties") or {}
        if props.get("kind") == "grid" and (point := label_point(feature["geometry"])):
            centres[str(props["id"])] = point
    return centres


def swatch(colour: str, label: str) -> Markup:
    """A legend's colour square (an SVG fill: no inline style under the page's CSP)."""
    return Markup(
        '<svg class="swatch" width="18" height="18" viewBox="0 0 18 18" aria-hidden="true" '
        'focusable="false"><rect x="1" y="1" width="16" height="16" fill="{c}" '
        'stroke="#333"></rect></svg><span>{label}</span>'
    ).format(c=escape(colour), label=label)
