"""Geography: distances, travel-time models, H3 indexes of couriers and of delivery areas.

Distances are metres on a sphere of radius :data:`EARTH_RADIUS_M`, times are whole seconds,
speeds metres per second. Travel-time models sit behind one :class:`TravelModel` protocol:
:class:`GreatCircleTravel` for live cities and :class:`PlanarTravel`, which reproduces the
Grubhub MDRP formula exactly. :class:`CourierIndex` finds couriers through an H3 ``grid_disk``
sized by the travel budget, never by looking at every courier; :class:`AreaIndex` decides
delivery areas exactly and caches a per-cell verdict so most points skip the exact test.

>>> chicago = Location(41.8781, -87.6298)
>>> index = CourierIndex(resolution=8)
>>> index.upsert("c1", Location(41.8800, -87.6298), speed_mps=4.5)
>>> index.upsert("c2", Location(41.9500, -87.6298), speed_mps=4.5)
>>> index.within(chicago, 600, GreatCircleTravel())
[('c1', 62)]
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any, Final, Protocol, runtime_checkable

import h3
import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from dispatch.errors import InvalidInput
from dispatch.models import DeliveryArea, Location

__all__ = [
    "EARTH_RADIUS_M",
    "AreaIndex",
    "CellVerdict",
    "CourierIndex",
    "GreatCircleTravel",
    "PlanarTravel",
    "TravelModel",
    "disk_k_for",
    "haversine_m",
    "haversine_matrix_m",
    "location_to_cell",
    "planar_to_location",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

EARTH_RADIUS_M: float = 6_371_008.8
"""Mean Earth radius (IUGG), metres."""

_QUARTER_CIRCUMFERENCE_M: Final = math.pi / 2 * EARTH_RADIUS_M

# A point on a cell's edge may be given to either cell: H3 rounds in a projected plane, so a
# point of a cell can lie a hair (nanometres) outside the cell's polygon. Every geometric
# argument below widens cells by this much before it trusts a verdict.
_CELL_SLACK_REL: Final = 1e-6
_CELL_SLACK_M: Final = 0.01


# -- distances -------------------------------------------------------------------------------


def _haversine(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    # The same operations, in the same order, as haversine_matrix_m.
    p1 = math.radians(lat1)
    p2 = math.radians(lat2)
    s_dlat = math.sin((p2 - p1) * 0.5)
    s_dlng = math.sin(math.radians(lng2 - lng1) * 0.5)
    h = s_dlat * s_dlat + (math.cos(p1) * math.cos(p2)) * (s_dlng * s_dlng)
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, h)))


def haversine_m(a: Location, b: Location) -> float:
    """Great-circle distance between two locations, metres.

    >>> haversine_m(Location(41.88, -87.63), Location(41.88, -87.63))
    0.0
    >>> round(haversine_m(Location(0.0, 0.0), Location(1.0, 0.0)), 1)
    111195.1
    """
    return _haversine(a.lat, a.lng, b.lat, b.lng)


def haversine_matrix_m(
    lat1: npt.ArrayLike, lng1: npt.ArrayLike, lat2: npt.ArrayLike, lng2: npt.ArrayLike
) -> FloatArray:
    """Great-circle distances from every point of one set to every point of another, metres.

    Parameters
    ----------
    lat1, lng1 : array_like, shape (n,)
        Degrees of the first set.
    lat2, lng2 : array_like, shape (m,)
        Degrees of the second set.

    Returns
    -------
    numpy.ndarray of float64, shape (n, m)

    Examples
    --------
    >>> haversine_matrix_m([0.0, 1.0], [0.0, 0.0], [0.0], [0.0]).round(1)
    array([[     0. ],
           [111195.1]])
    """
    p_lat1 = np.asarray(lat1, dtype=np.float64)
    p_lng1 = np.asarray(lng1, dtype=np.float64)
    p_lat2 = np.asarray(lat2, dtype=np.float64)
    p_lng2 = np.asarray(lng2, dtype=np.float64)
    if p_lat1.ndim != 1 or p_lat1.shape != p_lng1.shape:
        raise InvalidInput("lat1 and lng1 must be 1-D arrays of the same length", field="lat1")
    if p_lat2.ndim != 1 or p_lat2.shape != p_lng2.shape:
        raise InvalidInput("lat2 and lng2 must be 1-D arrays of the same length", field="lat2")
    p1 = np.radians(p_lat1)[:, None]
    p2 = np.radians(p_lat2)[None, :]
    s_dlat = np.sin((p2 - p1) * 0.5)
    s_dlng = np.sin(np.radians(p_lng2[None, :] - p_lng1[:, None]) * 0.5)
    h = s_dlat * s_dlat + (np.cos(p1) * np.cos(p2)) * (s_dlng * s_dlng)
    result: FloatArray = 2.0 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(h, 1.0)))
    return result


# -- travel-time models ----------------------------------------------------------------------


def _check_speed(speed_mps: float) -> None:
    if not (speed_mps > 0.0 and math.isfinite(speed_mps)):
        raise InvalidInput(f"speed must be a positive number of m/s, got {speed_mps!r}", field="speed_mps")


def _as_seconds(value: int, what: str) -> int:
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a whole number of seconds, got {value!r}", field=what)
    try:
        return operator.index(value)
    except TypeError:
        raise InvalidInput(f"{what} must be a whole number of seconds, got {value!r}", field=what) from None


@runtime_checkable
class TravelModel(Protocol):
    """Travel seconds between locations, one pair at a time or as an integer matrix."""

    def travel_s(self, a: Location, b: Location, speed_mps: float) -> int:
        """Seconds to travel from ``a`` to ``b`` at ``speed_mps``."""
        ...

    def matrix_s(
        self, origins: Sequence[Location], destinations: Sequence[Location], speed_mps: float
    ) -> IntArray:
        """``travel_s`` for every origin and destination: int64, shape (len(origins), len(destinations))."""
        ...

    def reach_m(self, budget_s: int, speed_mps: float) -> float:
        """An upper bound on the great-circle distance (between the points' lat/lng) that can be
        travelled within ``budget_s``; sizes H3 disks, so it must never be too small."""
        ...


class GreatCircleTravel:
    """Great-circle metres times a road factor, over a speed: the live-city model.

    ``travel_s = ceil(haversine_m(a, b) * road_factor / speed_mps)``.

    >>> travel = GreatCircleTravel(road_factor=1.3)
    >>> travel.travel_s(Location(0.0, 0.0), Location(0.01, 0.0), 5.0)
    290
    >>> travel.travel_s(Location(0.0, 0.0), Location(0.0, 0.0), 5.0)
    0
    """

    __slots__ = ("road_factor",)

    def __init__(self, road_factor: float = 1.3) -> None:
        if not (
            isinstance(road_factor, (int, float))
            and not isinstance(road_factor, bool)
            and math.isfinite(road_factor)
            and road_factor > 0
        ):
            raise InvalidInput(
                f"road factor must be a positive number (1.0 or more is sensible), got {road_factor!r}",
                field="road_factor",
            )
        self.road_factor = float(road_factor)

    def __repr__(self) -> str:
        return f"GreatCircleTravel(road_factor={self.road_factor!r})"

    def travel_s(self, a: Location, b: Location, speed_mps: float) -> int:
        _check_speed(speed_mps)
        return math.ceil(haversine_m(a, b) * self.road_factor / speed_mps)

    def matrix_s(
        self, origins: Sequence[Location], destinations: Sequence[Location], speed_mps: float
    ) -> IntArray:
        _check_speed(speed_mps)
        small = _small_matrix(self, origins, destinations, speed_mps)
        if small is not None:
            return small
        distance_m = haversine_matrix_m(
            [p.lat for p in origins], [p.lng for p in origins],
            [p.lat for p in destinations], [p.lng for p in destinations],
        )  # fmt: skip
        seconds = distance_m * self.road_factor / speed_mps
        result = np.ceil(seconds)
        # numpy's arcsin may differ from math.asin in the last bits (SIMD builds do), which
        # only matters when the quotient is within rounding of a whole second: those rare
        # entries are recomputed with travel_s, so the matrix always equals the scalar.
        near_whole = np.abs(seconds - np.rint(seconds)) <= 1e-7 * np.maximum(seconds, 1.0)
        for i, j in zip(*np.nonzero(near_whole), strict=True):
            result[i, j] = self.travel_s(origins[i], destinations[j], speed_mps)
        return result.astype(np.int64)

    def reach_m(self, budget_s: int, speed_mps: float) -> float:
        _check_speed(speed_mps)
        if budget_s < 0:
            return 0.0
        # travel_s <= budget iff d * road_factor / speed <= budget, up to rounding of a few
        # ulps in d and in the quotient: 1e-9 relative is a million times that.
        return budget_s * speed_mps / self.road_factor * (1.0 + 1e-9)


#: Below this many entries a matrix is cheaper entry by entry than through numpy (the
#: dispatcher builds thousands of 3x3 matrices per tick, one per planned route).
_SMALL_MATRIX = 25


def _small_matrix(
    travel: TravelModel, origins: Sequence[Location], destinations: Sequence[Location], speed_mps: float
) -> IntArray | None:
    if len(origins) * len(destinations) > _SMALL_MATRIX:
        return None
    return np.array(
        [[travel.travel_s(a, b, speed_mps) for b in destinations] for a in origins], dtype=np.int64
    ).reshape(len(origins), len(destinations))


def _planar_arrays(locations: Sequence[Location]) -> tuple[FloatArray, FloatArray]:
    xs = [p.x_m for p in locations]
    if None in xs:
        where = xs.index(None)
        raise InvalidInput(
            f"location {where} ({locations[where].lat}, {locations[where].lng}) has no planar "
            "coordinates x_m/y_m, which PlanarTravel needs",
            field="x_m",
        )
    return np.array(xs, dtype=np.float64), np.array([p.y_m for p in locations], dtype=np.float64)


def _planar_xy(location: Location) -> tuple[float, float]:
    if location.x_m is None or location.y_m is None:
        raise InvalidInput(
            f"location ({location.lat}, {location.lng}) has no planar coordinates x_m/y_m, "
            "which PlanarTravel needs",
            field="x_m",
        )
    return float(location.x_m), float(location.y_m)


class PlanarTravel:
    """The Grubhub MDRP model: ``ceil(euclidean_m / metres_per_minute)`` whole minutes.

    Works on ``Location.x_m``/``y_m``. ``metres_per_minute = round(speed_mps * 60, 6)``, so an
    instance's 427 m/min is passed as ``427 / 60`` m/s and comes back exactly. The distance is
    ``math.sqrt(dx * dx + dy * dy)``: on integer coordinates the sum of squares is exact, so
    this is the correctly rounded Euclidean distance (``math.hypot`` agrees there), and numpy
    computes the very same value for :meth:`matrix_s`. :meth:`reach_m` bounds great-circle
    distances only for points whose lat/lng come from :func:`planar_to_location`.

    >>> travel, speed = PlanarTravel(), 427 / 60
    >>> origin = Location(41.88, -87.63, x_m=0.0, y_m=0.0)
    >>> [travel.travel_s(origin, Location(41.88, -87.63, x_m=x, y_m=0.0), speed) for x in (0, 427, 428)]
    [0, 60, 120]
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "PlanarTravel()"

    @staticmethod
    def metres_per_minute(speed_mps: float) -> float:
        """Metres per minute as the instances state them.

        >>> PlanarTravel.metres_per_minute(427 / 60)
        427.0
        """
        _check_speed(speed_mps)
        per_minute = round(speed_mps * 60.0, 6)
        if per_minute <= 0.0:
            raise InvalidInput(f"speed {speed_mps!r} m/s rounds to 0 m/min", field="speed_mps")
        return per_minute

    def travel_s(self, a: Location, b: Location, speed_mps: float) -> int:
        per_minute = self.metres_per_minute(speed_mps)
        ax, ay = _planar_xy(a)
        bx, by = _planar_xy(b)
        dx = ax - bx
        dy = ay - by
        return 60 * math.ceil(math.sqrt(dx * dx + dy * dy) / per_minute)

    def matrix_s(
        self, origins: Sequence[Location], destinations: Sequence[Location], speed_mps: float
    ) -> IntArray:
        small = _small_matrix(self, origins, destinations, speed_mps)
        if small is not None:
            return small
        per_minute = self.metres_per_minute(speed_mps)
        ox, oy = _planar_arrays(origins)
        tx, ty = _planar_arrays(destinations)
        dx = ox[:, None] - tx[None, :]
        dy = oy[:, None] - ty[None, :]
        # IEEE operations, one rounding each, exactly as in travel_s.
        minutes = np.ceil(np.sqrt(dx * dx + dy * dy) / per_minute)
        result: IntArray = minutes.astype(np.int64) * 60
        return result

    def reach_m(self, budget_s: int, speed_mps: float) -> float:
        per_minute = self.metres_per_minute(speed_mps)
        if budget_s < 0:
            return 0.0
        # travel_s <= budget iff ceil(d / mpm) <= budget // 60, i.e. planar d <= minutes * mpm
        # (up to one ulp of the division). Lat/lng come from planar_to_location, whose north
        # offsets are exact meridian arcs and whose east offsets are parallels at the origin's
        # latitude phi0; at a latitude phi0 - delta a parallel is longer by the factor
        # cos(phi0 - delta) / cos(phi0) <= 1 + tan|phi0| * |delta|. The great circle is no
        # longer than the image of the straight planar segment, so it exceeds the planar
        # distance by at most that factor: under 1% for points within 70 km north-south of a
        # Chicago origin (tan 41.9 deg = 0.90), and the MDRP instances span 55 km. The 1 m
        # covers rounding.
        planar_m = (budget_s // 60) * per_minute
        return planar_m * 1.01 + 1.0


def planar_to_location(
    x_m: float, y_m: float, origin_lat: float = 41.8781, origin_lng: float = -87.6298
) -> Location:
    """Place planar metres (x east, y north of an origin) on the globe, keeping ``x_m``/``y_m``.

    A local equirectangular projection: ``y`` is a meridian arc, ``x`` a parallel at the
    origin's latitude. Instance readers use it so that H3 can index planar points; travel
    times still come from the planar coordinates (see :class:`PlanarTravel`).

    >>> planar_to_location(0.0, 0.0)
    Location(lat=41.8781, lng=-87.6298, x_m=0.0, y_m=0.0)
    >>> round(haversine_m(planar_to_location(0.0, 0.0), planar_to_location(0.0, 1000.0)), 6)
    1000.0
    """
    for name, value in (("x_m", x_m), ("y_m", y_m), ("origin_lat", origin_lat), ("origin_lng", origin_lng)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InvalidInput(f"{name} must be a finite number, got {value!r}", field=name)
    cos_origin = math.cos(math.radians(origin_lat))
    if cos_origin < 1e-6:
        raise InvalidInput(f"origin latitude {origin_lat} is too close to a pole", field="origin_lat")
    lat = origin_lat + math.degrees(y_m / EARTH_RADIUS_M)
    lng = origin_lng + math.degrees(x_m / (EARTH_RADIUS_M * cos_origin))
    return Location(lat, lng, x_m=float(x_m), y_m=float(y_m))


# -- H3 ---------------------------------------------------------------------------------------


def _check_resolution(resolution: int) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or not 0 <= resolution <= 15:
        raise InvalidInput(
            f"H3 resolution must be a whole number in 0..15, got {resolution!r}", field="resolution"
        )
    return resolution


def location_to_cell(location: Location, resolution: int) -> str:
    """The H3 cell (v4 string) that holds a location.

    >>> location_to_cell(Location(41.8781, -87.6298), 8)
    '882664c1a9fffff'
    """
    return str(h3.latlng_to_cell(location.lat, location.lng, _check_resolution(resolution)))


def _circumradius_m(cell: str) -> float:
    lat, lng = h3.cell_to_latlng(cell)
    return max(_haversine(lat, lng, v_lat, v_lng) for v_lat, v_lng in h3.cell_to_boundary(cell))


def _cell_scale_m(cell: str) -> tuple[float, float]:
    """(shortest edge, circumradius) of a cell, metres."""
    shortest = min(h3.edge_length(edge, "m") for edge in h3.origin_to_directed_edges(cell))
    return float(shortest), _circumradius_m(cell)


# How much the cells of a disk may differ from its centre cell. Measured over random cells of
# resolutions 4-10 worldwide (rings up to 12) and cells next to pentagons (rings up to 15):
# ring spacing fell to 0.966 and circumradii grew to 1.043 of the centre cell's, drifting about
# 1% per 100 km; with a pentagon as the centre (smaller than its neighbours) 0.834 and 1.227.
# The margins are about twice that and grow with the distance covered. Checked by moving
# points of cells of resolutions 4-11 (pentagons and their neighbours included) by the reach
# in every direction: none left the disk, and ring k + 1 stayed at least 1.10 reaches away.
_CELL_MARGIN: Final = 0.10
_PENTAGON_MARGIN: Final = 0.35
_MARGIN_PER_M: Final = 2e-7


def _disk_k(shortest_edge_m: float, circumradius_m: float, reach_m: float, pentagon: bool) -> int:
    # In a hexagonal grid of edge e (= circumradius) the centres of the ring-m cells are at
    # least 1.5 * m * e from the centre (the ring is a hexagon of corner m * sqrt(3) * e whose
    # sides pass 1.5 * m * e from the centre). A point of the centre cell is within r0 of its
    # centre and a point of a ring-m cell within r of that cell's centre, so the two cells are
    # at least 1.5 * m * e - r0 - r apart. Every m with that gap above the reach is safe to
    # leave out, hence k = floor((reach + r0 + r) / (1.5 * e)). H3 cells are not regular and
    # their size drifts across the grid: e is the cell's shortest edge shrunk by the margin and
    # r its circumradius grown by it.
    margin = (_PENTAGON_MARGIN if pentagon else _CELL_MARGIN) + _MARGIN_PER_M * reach_m
    spacing_m = 1.5 * shortest_edge_m / (1.0 + margin)
    far_radius_m = circumradius_m * (1.0 + margin)
    return math.floor((reach_m + circumradius_m + far_radius_m) / spacing_m)


def _check_reach(reach_m: float) -> float:
    if not (isinstance(reach_m, (int, float)) and math.isfinite(reach_m) and reach_m >= 0):
        raise InvalidInput(f"reach must be a finite number of metres >= 0, got {reach_m!r}", field="reach_m")
    return float(reach_m)


def disk_k_for(cell: str, reach_m: float) -> int:
    """The ``grid_disk`` size that covers every point within ``reach_m`` of the cell.

    Every point at great-circle distance ``reach_m`` or less from any point inside ``cell``
    lies in a cell of ``h3.grid_disk(cell, k)``. ``k`` is derived from the cell's own edge
    lengths and circumradius, with a margin for the neighbouring cells' differences.

    >>> disk_k_for("882664c1a9fffff", 0.0)
    1
    >>> disk_k_for("882664c1a9fffff", 3000.0)
    5
    """
    if not isinstance(cell, str) or not h3.is_valid_cell(cell):
        raise InvalidInput(f"{cell!r} is not an H3 cell", field="cell")
    reach = _check_reach(reach_m)
    shortest_m, circumradius_m = _cell_scale_m(cell)
    return _disk_k(shortest_m, circumradius_m, reach, bool(h3.is_pentagon(cell)))


def _disk_cells(k: int) -> int:
    return 3 * k * (k + 1) + 1


class CourierIndex:
    """Couriers by H3 cell: O(1) position updates, search through ``grid_disk``, never a full scan.

    Each courier owns a slot in flat numpy arrays (lat, lng, speed) and sits in its cell's
    bucket of slots; a ping rewrites the slot and moves it between buckets only when the
    courier changes cell. A search collects the slots of the disk's cells, drops those out of
    reach with one vectorized great-circle pass and times the rest with the travel model's
    matrix, one call per speed. When the disk would hold many more cells than there are
    occupied cells (fine resolutions, long budgets), the occupied cells are filtered by
    distance instead; either way no courier outside reach is timed.

    >>> index = CourierIndex(resolution=8)
    >>> index.upsert("c1", Location(41.8781, -87.6298), speed_mps=4.5)
    >>> index.upsert("c2", Location(41.8790, -87.6298), speed_mps=4.5)
    >>> index.nearest(Location(41.8791, -87.6298), GreatCircleTravel(), max_budget_s=600)
    [('c2', 4)]
    >>> index.remove("c2"); len(index), "c2" in index
    (1, False)
    """

    __slots__ = (
        "_cell_of_slot",
        "_cells",
        "_free",
        "_ids",
        "_lat",
        "_lng",
        "_locations",
        "_rank",
        "_ranked",
        "_resolution",
        "_slot_of",
        "_speed",
        "_used",
    )

    # Past this many disk cells per occupied cell, a search filters the occupied cells by
    # distance instead of walking a disk that is mostly empty (high resolutions, long budgets).
    _SCAN_CELLS_RATIO: Final = 8

    def __init__(self, resolution: int = 8) -> None:
        self._resolution = _check_resolution(resolution)
        self._slot_of: dict[str, int] = {}
        self._cells: dict[str, set[int]] = {}
        self._ids: list[str] = []
        self._locations: list[Location] = []
        self._cell_of_slot: list[str] = []
        self._free: list[int] = []
        self._used = 0
        self._lat: FloatArray = np.zeros(64)
        self._lng: FloatArray = np.zeros(64)
        self._speed: FloatArray = np.zeros(64)  # 0.0 marks a free slot
        # Each slot's position in id order, so that results sort by (travel_s, id) in numpy;
        # recomputed on the first search after new ids arrive (removals keep it valid).
        self._rank: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._ranked = True

    @property
    def resolution(self) -> int:
        return self._resolution

    def __repr__(self) -> str:
        return f"CourierIndex(resolution={self._resolution}, couriers={len(self)})"

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, courier_id: object) -> bool:
        return isinstance(courier_id, str) and courier_id in self._slot_of

    def cell_of(self, courier_id: str) -> str | None:
        """The courier's H3 cell, ``None`` if it is not indexed."""
        slot = self._slot_of.get(courier_id)
        return None if slot is None else self._cell_of_slot[slot]

    def upsert(self, courier_id: str, location: Location, speed_mps: float) -> None:
        """Add a courier or move it; called on every position ping."""
        _check_speed(speed_mps)
        cell: str = h3.latlng_to_cell(location.lat, location.lng, self._resolution)
        slot = self._slot_of.get(courier_id)
        if slot is None:
            slot = self._take_slot(courier_id, location)
            old_cell = ""
        else:
            old_cell = self._cell_of_slot[slot]
        if cell != old_cell:
            if old_cell:
                self._leave(old_cell, slot)
            bucket = self._cells.get(cell)
            if bucket is None:
                self._cells[cell] = {slot}
            else:
                bucket.add(slot)
            self._cell_of_slot[slot] = cell
        self._locations[slot] = location
        self._lat[slot] = location.lat
        self._lng[slot] = location.lng
        self._speed[slot] = speed_mps

    def remove(self, courier_id: str) -> None:
        """Forget a courier; an unknown id is a no-op."""
        slot = self._slot_of.pop(courier_id, None)
        if slot is None:
            return
        self._leave(self._cell_of_slot[slot], slot)
        self._cell_of_slot[slot] = ""
        self._ids[slot] = ""
        self._speed[slot] = 0.0
        self._free.append(slot)

    def within(self, target: Location, budget_s: int, travel: TravelModel) -> list[tuple[str, int]]:
        """Every courier that can reach ``target`` within ``budget_s``, at its own speed.

        Returns ``(courier_id, travel_s)`` pairs, travel measured from the courier to the
        target, sorted by ``(travel_s, courier_id)``. The disk is sized by
        ``travel.reach_m(budget_s, fastest indexed speed)``; the filter is ``travel.matrix_s``.
        """
        budget = _as_seconds(budget_s, "budget_s")
        return self._ordered(*self.within_slots(target, budget, travel))

    def within_slots(
        self, target: Location, budget_s: int, travel: TravelModel
    ) -> tuple[npt.NDArray[np.intp], IntArray]:
        """Like :meth:`within`, unsorted, as arrays: index slots and travel seconds.

        For callers that time thousands of candidates: map slots back with :meth:`slot_of`.
        """
        budget = _as_seconds(budget_s, "budget_s")
        if budget < 0 or not self._slot_of:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
        reach = travel.reach_m(budget, self._max_speed())
        cell: str = h3.latlng_to_cell(target.lat, target.lng, self._resolution)
        shortest_m, circumradius_m = _cell_scale_m(cell)
        k = _disk_k(shortest_m, circumradius_m, _check_reach(reach), bool(h3.is_pentagon(cell)))
        if _disk_cells(k) > self._SCAN_CELLS_RATIO * len(self._cells):
            cells: Iterable[str] = self._occupied_cells_near(target, reach)
        else:
            cells = h3.grid_disk(cell, k)
        return self._timed(target, budget, travel, self._slots_in(cells))

    def slot_of(self, courier_id: str) -> int | None:
        """The slot :meth:`within_slots` reports for a courier (stable while it is indexed)."""
        return self._slot_of.get(courier_id)

    def nearest(
        self, target: Location, travel: TravelModel, *, max_budget_s: int, limit: int = 1
    ) -> list[tuple[str, int]]:
        """The ``limit`` fastest couriers to ``target`` within ``max_budget_s``.

        Grows H3 rings from the target's cell and stops as soon as no courier outside them
        can beat the ``limit``-th best time; same result and order as ``within(...)[:limit]``.
        """
        budget = _as_seconds(max_budget_s, "max_budget_s")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a whole number >= 1, got {limit!r}", field="limit")
        if budget < 0 or not self._slot_of:
            return []
        top_speed = self._max_speed()
        cell: str = h3.latlng_to_cell(target.lat, target.lng, self._resolution)
        shortest_m, circumradius_m = _cell_scale_m(cell)
        pentagon = bool(h3.is_pentagon(cell))

        def k_for(budget_s: int) -> int:
            reach = _check_reach(travel.reach_m(budget_s, top_speed))
            return _disk_k(shortest_m, circumradius_m, reach, pentagon)

        k_max = k_for(budget)
        best_slots: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)
        best_s: IntArray = np.zeros(0, dtype=np.int64)
        k = 0
        while True:
            if _disk_cells(k) > self._SCAN_CELLS_RATIO * len(self._cells):
                bound = int(best_s[limit - 1]) if len(best_s) >= limit else budget
                return self.within(target, bound, travel)[:limit]
            ring: list[str] = [cell] if k == 0 else h3.grid_ring(cell, k)
            ring_slots, ring_s = self._timed(target, budget, travel, self._slots_in(ring))
            slots = np.concatenate((best_slots, ring_slots))
            seconds = np.concatenate((best_s, ring_s))
            first = np.lexsort((self._ranks()[slots], seconds))[:limit]
            best_slots, best_s = slots[first], seconds[first]
            if k >= k_max or (len(best_s) >= limit and k >= k_for(int(best_s[-1]))):
                return self._ordered(best_slots, best_s)
            k += 1

    # -- internals ---------------------------------------------------------------------------

    def _take_slot(self, courier_id: str, location: Location) -> int:
        if not isinstance(courier_id, str) or not courier_id or "\x00" in courier_id:
            raise InvalidInput(
                f"courier id must be a non-empty string without NUL, got {courier_id!r}", field="id"
            )
        self._ranked = False
        if self._free:
            slot = self._free.pop()
            self._ids[slot] = courier_id
        else:
            slot = self._used
            self._used += 1
            if slot == len(self._speed):
                self._grow()
            self._ids.append(courier_id)
            self._locations.append(location)
            self._cell_of_slot.append("")
        self._slot_of[courier_id] = slot
        return slot

    def _grow(self) -> None:
        size = 2 * len(self._speed)
        for name in ("_lat", "_lng", "_speed"):
            old: FloatArray = getattr(self, name)
            new = np.zeros(size)
            new[: len(old)] = old
            setattr(self, name, new)

    def _leave(self, cell: str, slot: int) -> None:
        bucket = self._cells[cell]
        bucket.discard(slot)
        if not bucket:
            del self._cells[cell]

    def _max_speed(self) -> float:
        return float(self._speed[: self._used].max())

    def _slots_in(self, cells: Iterable[str]) -> npt.NDArray[np.intp]:
        found: list[int] = []
        buckets = self._cells
        for cell in cells:
            bucket = buckets.get(cell)
            if bucket:
                found.extend(bucket)
        slots = np.array(found, dtype=np.intp)
        slots.sort()  # slot order is arrival order: friendlier to the caches than bucket order
        return slots

    def _occupied_cells_near(self, target: Location, reach_m: float) -> list[str]:
        # A courier within reach of the target lies in a cell whose centre is within
        # reach + that cell's circumradius of the target.
        cells = list(self._cells)
        centres = np.array([h3.cell_to_latlng(cell) for cell in cells], dtype=np.float64).reshape(-1, 2)
        radius_m = np.array([_circumradius_m(cell) for cell in cells])
        distance_m = haversine_matrix_m([target.lat], [target.lng], centres[:, 0], centres[:, 1])[0]
        limit_m = reach_m * (1.0 + 1e-9) + radius_m * (1.0 + _CELL_SLACK_REL) + _CELL_SLACK_M
        return [cells[i] for i in np.flatnonzero(distance_m <= limit_m).tolist()]

    def _ranks(self) -> npt.NDArray[np.int64]:
        # numpy strings order by code point like str does (ids hold no NUL, which they drop).
        if not self._ranked:
            order = np.argsort(np.array(self._ids), kind="stable")
            rank = np.empty(len(order), dtype=np.int64)
            rank[order] = np.arange(len(order))
            self._rank = rank
            self._ranked = True
        return self._rank

    def _ordered(self, slots: npt.NDArray[np.intp], seconds: IntArray) -> list[tuple[str, int]]:
        """``(courier_id, travel_s)`` pairs sorted by ``(travel_s, courier_id)``."""
        order = np.lexsort((self._ranks()[slots], seconds))
        ids = self._ids
        return list(zip([ids[i] for i in slots[order].tolist()], seconds[order].tolist(), strict=True))

    def _timed(
        self, target: Location, budget_s: int, travel: TravelModel, slots: npt.NDArray[np.intp]
    ) -> tuple[npt.NDArray[np.intp], IntArray]:
        """The given slots whose couriers make the budget, and their travel seconds."""
        if slots.size == 0:
            return slots, np.zeros(0, dtype=np.int64)
        speeds, inverse = np.unique(self._speed[slots], return_inverse=True)
        # The model's reach bounds the great-circle distance of any courier that can make it:
        # one vectorized pass drops the disk's corners before the model times anyone.
        reach_m = np.array([travel.reach_m(budget_s, float(s)) for s in speeds.tolist()])
        distance_m = haversine_matrix_m(self._lat[slots], self._lng[slots], [target.lat], [target.lng])[:, 0]
        keep = distance_m <= reach_m[inverse] * (1.0 + 1e-9) + 1e-6
        slots = slots[keep]
        inverse = inverse[keep]
        order = np.argsort(inverse, kind="stable")
        slots = slots[order]
        bounds = np.searchsorted(inverse[order], np.arange(len(speeds) + 1)).tolist()
        locations = self._locations
        kept_slots = [slots[:0]]
        kept_s = [np.zeros(0, dtype=np.int64)]
        for group, speed in enumerate(speeds.tolist()):
            members = slots[bounds[group] : bounds[group + 1]]
            if members.size == 0:
                continue
            origins = [locations[i] for i in members.tolist()]
            seconds = np.asarray(travel.matrix_s(origins, [target], speed)[:, 0], dtype=np.int64)
            ok = seconds <= budget_s
            kept_slots.append(members[ok])
            kept_s.append(seconds[ok])
        return np.concatenate(kept_slots), np.concatenate(kept_s)


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
        self._resolution = _check_resolution(resolution)
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
        cell_radius_m = max(_haversine(lat, lng, v_lat, v_lng) for v_lat, v_lng in boundary)
        cell_radius_m = cell_radius_m * (1.0 + _CELL_SLACK_REL) + _CELL_SLACK_M
        if self._geometry is None:
            return self._judge_radius(lat, lng, boundary, cell_radius_m)
        return self._judge_polygon(lat, lng, cell_radius_m)

    def _judge_radius(
        self, lat: float, lng: float, boundary: Sequence[tuple[float, float]], cell_radius_m: float
    ) -> CellVerdict:
        radius_m = self._radius_m()
        center = self._center
        if _haversine(center.lat, center.lng, lat, lng) - cell_radius_m > radius_m:
            return CellVerdict.OUTSIDE
        # H3 edges are great-circle arcs (straight lines of the gnomonic projection H3 cuts
        # its faces with), and a cap smaller than a quarter circumference is convex, so a cell
        # whose vertices lie in the disc lies in it. The margin keeps a safe distance all the
        # same: a tenth of a percent of the cell radius (more than an edge drawn straight in
        # lat/lng would bulge, L * L * tan(lat) / 8R, at city resolutions) plus the slack for
        # points H3 rounds into the cell.
        margin_m = 1e-3 * cell_radius_m + _CELL_SLACK_M
        farthest_m = max(_haversine(center.lat, center.lng, v_lat, v_lng) for v_lat, v_lng in boundary)
        if radius_m < _QUARTER_CIRCUMFERENCE_M and farthest_m + margin_m <= radius_m:
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
