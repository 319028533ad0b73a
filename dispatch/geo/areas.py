"""Delivery areas, decided exactly (haversine radius or Shapely polygon), pre-filtered by H3."""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import StrEnum
from typing import Any, Final

import h3
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from dispatch.errors import InvalidInput
from dispatch.geo.cells import check_resolution
from dispatch.geo.distance import (
    CELL_SLACK_M,
    CELL_SLACK_REL,
    EARTH_RADIUS_M,
    QUARTER_CIRCUMFERENCE_M,
    haversine_latlng_m,
    haversine_m,
)
from dispatch.models import DeliveryArea, Location

__all__ = ["AreaIndex", "CellVerdict"]

# -- delivery areas ---------------------------------------------------------------------------


class CellVerdict(StrEnum):
    """What an H3 cell tells about a delivery area before any exact test."""

    INSIDE = "inside"  # every point of the cell is in the area
    OUTSIDE = "outside"  # no point of the cell is in the area
    BOUNDARY = "boundary"  # decide each point exactly


def _area_geometry(polygon: dict[str, Any]) -> BaseGeometry:
    try:
        geometry = shape(polygon)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError, shapely.errors.ShapelyError) as exc:
        raise InvalidInput(f"delivery polygon is not valid GeoJSON: {exc}", field="polygon") from exc
    if geometry.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidInput(
            f"delivery polygon must be a Polygon or MultiPolygon, got {geometry.geom_type}", field="polygon"
        )
    if geometry.is_empty:
        raise InvalidInput("delivery polygon is empty", field="polygon")
    if not geometry.is_valid:
        raise InvalidInput(
            f"delivery polygon is not a valid polygon: {shapely.is_valid_reason(geometry)}", field="polygon"
        )
    min_lng, min_lat, max_lng, max_lat = geometry.bounds
    if min_lng < -180.0 or max_lng > 180.0 or min_lat < -90.0 or max_lat > 90.0:
        raise InvalidInput(
            "delivery polygon coordinates must be [lng, lat] within [-180, 180] x [-90, 90], "
            f"got bounds {geometry.bounds}",
            field="polygon",
        )
    shapely.prepare(geometry)
    return geometry


class AreaIndex:
    """One merchant's delivery area, decided exactly, pre-filtered by H3 cells.

    A radius area holds the points with ``haversine_m(center, point) <= radius_m``; a polygon
    area the points its GeoJSON geometry covers, in (lng, lat) coordinates. Both rules include
    the boundary. The first time a cell is seen it gets a :class:`CellVerdict`; only points
    of ``BOUNDARY`` cells pay for the exact test. The answer is always the exact rule's.

    >>> shop = Location(41.8781, -87.6298)
    >>> area = AreaIndex(shop, DeliveryArea(radius_m=3000.0))
    >>> area.contains(Location(41.8900, -87.6298)), area.contains(Location(41.9100, -87.6298))
    (True, False)
    >>> round(area.distance_m(Location(41.9100, -87.6298)))
    3547
    """

    __slots__ = ("_area", "_center", "_geometry", "_resolution", "_verdicts")

    _MAX_CACHED_CELLS: Final = 65_536

    def __init__(self, center: Location, area: DeliveryArea, resolution: int = 9) -> None:
        self._center = center
        self._area = area
        self._resolution = check_resolution(resolution)
        self._geometry = None if area.polygon is None else _area_geometry(area.polygon)
        self._verdicts: dict[str, CellVerdict] = {}

    @property
    def center(self) -> Location:
        return self._center

    @property
    def area(self) -> DeliveryArea:
        return self._area

    @property
    def resolution(self) -> int:
        return self._resolution

    def __repr__(self) -> str:
        return f"AreaIndex(center={self._center!r}, area={self._area!r}, resolution={self._resolution})"

    def contains(self, point: Location) -> bool:
        """Whether the area holds ``point`` (boundary included)."""
        verdict = self.cell_verdict(h3.latlng_to_cell(point.lat, point.lng, self._resolution))
        if verdict is CellVerdict.INSIDE:
            return True
        if verdict is CellVerdict.OUTSIDE:
            return False
        return self._exact(point)

    def distance_m(self, point: Location) -> float:
        """Great-circle distance from the area's centre, metres (for refusal messages)."""
        return haversine_m(self._center, point)

    def cell_verdict(self, cell: str) -> CellVerdict:
        """The cached verdict of a cell of this index's resolution, computed on first sight."""
        verdict = self._verdicts.get(cell)
        if verdict is None:
            verdict = self._judge(cell)
            if len(self._verdicts) >= self._MAX_CACHED_CELLS:
                del self._verdicts[next(iter(self._verdicts))]  # the oldest
            self._verdicts[cell] = verdict
        return verdict

    def _exact(self, point: Location) -> bool:
        if self._geometry is None:
            return haversine_m(self._center, point) <= self._radius_m()
        return bool(self._geometry.covers(Point(point.lng, point.lat)))

    def _radius_m(self) -> float:
        radius = self._area.radius_m
        assert radius is not None  # DeliveryArea holds exactly one of radius and polygon
        return radius

    def _judge(self, cell: str) -> CellVerdict:
        if not isinstance(cell, str) or not h3.is_valid_cell(cell):
            raise InvalidInput(f"{cell!r} is not an H3 cell", field="cell")
        if h3.get_resolution(cell) != self._resolution:
            raise InvalidInput(f"cell {cell} is not of resolution {self._resolution}", field="cell")
        lat, lng = h3.cell_to_latlng(cell)
        boundary = h3.cell_to_boundary(cell)
        # Every point of the cell lies within this distance of its centre (vertices included).
        cell_radius_m = max(haversine_latlng_m(lat, lng, v_lat, v_lng) for v_lat, v_lng in boundary)
        cell_radius_m = cell_radius_m * (1.0 + CELL_SLACK_REL) + CELL_SLACK_M
        if self._geometry is None:
            return self._judge_radius(lat, lng, boundary, cell_radius_m)
        return self._judge_polygon(lat, lng, cell_radius_m)

    def _judge_radius(
        self, lat: float, lng: float, boundary: Sequence[tuple[float, float]], cell_radius_m: float
    ) -> CellVerdict:
        radius_m = self._radius_m()
        center = self._center
        if haversine_latlng_m(center.lat, center.lng, lat, lng) - cell_radius_m > radius_m:
            return CellVerdict.OUTSIDE
        # H3 edges are great-circle arcs (straight lines of the gnomonic projection H3 cuts
        # its faces with), and a cap smaller than a quarter circumference is convex, so a cell
        # whose vertices lie in the disc lies in it. The margin keeps a safe distance all the
        # same: a tenth of a percent of the cell radius (more than an edge drawn straight in
        # lat/lng would bulge, L * L * tan(lat) / 8R, at city resolutions) plus the slack for
        # points H3 rounds into the cell.
        margin_m = 1e-3 * cell_radius_m + CELL_SLACK_M
        farthest_m = max(
            haversine_latlng_m(center.lat, center.lng, v_lat, v_lng) for v_lat, v_lng in boundary
        )
        if radius_m < QUARTER_CIRCUMFERENCE_M and farthest_m + margin_m <= radius_m:
            return CellVerdict.INSIDE
        return CellVerdict.BOUNDARY

    def _judge_polygon(self, lat: float, lng: float, cell_radius_m: float) -> CellVerdict:
        geometry = self._geometry
        assert geometry is not None
        # The exact rule is planar in (lng, lat), where hexagon edges are curves: judge the
        # cell by a (lng, lat) box that surely holds it instead. A cap of angular radius
        # delta spans +-delta of latitude and asin(sin(delta) / cos(lat)) of longitude.
        delta = cell_radius_m / EARTH_RADIUS_M
        lat_span = math.degrees(delta) + 1e-9
        if abs(lat) + lat_span >= 90.0:
            return CellVerdict.BOUNDARY  # the cap holds a pole
        lng_span = math.degrees(math.asin(min(1.0, math.sin(delta) / math.cos(math.radians(lat))))) + 1e-9
        if abs(lng) + lng_span > 180.0:
            return CellVerdict.BOUNDARY  # the box would cross the antimeridian
        cell_box = shapely.box(lng - lng_span, lat - lat_span, lng + lng_span, lat + lat_span)
        if geometry.covers(cell_box):
            return CellVerdict.INSIDE
        if not geometry.intersects(cell_box):
            return CellVerdict.OUTSIDE
        return CellVerdict.BOUNDARY
