"""H3 cells: disk sizing for a reach, and the courier index by cell."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import h3
import numpy as np
import numpy.typing as npt

from dispatch.errors import InvalidInput
from dispatch.geo.distance import (
    CELL_SLACK_M,
    CELL_SLACK_REL,
    FloatArray,
    IntArray,
    haversine_latlng_m,
    haversine_matrix_m,
)
from dispatch.geo.travel import GreatCircleTravel, TravelModel, as_seconds, check_speed, factored_base
from dispatch.models import Location

__all__ = ["CourierIndex", "disk_k_for", "location_to_cell"]

# -- H3 ---------------------------------------------------------------------------------------


def check_resolution(resolution: int) -> int:
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
    return _cell_at(location.lat, location.lng, resolution)


# Merchants, drop-offs and the places couriers wait at are asked for their cell again and again
# (every quote, every tick's index): h3's conversion is cached per point. The resolution is
# checked on a miss only: typed, so that True or 8.0 are never answered from 1's or 8's entry.
_CELL_CACHE: Final = 1 << 16


@lru_cache(maxsize=_CELL_CACHE, typed=True)
def _cell_at(lat: float, lng: float, resolution: int) -> str:
    return str(h3.latlng_to_cell(lat, lng, check_resolution(resolution)))


# Cell geometry is fixed: cached, since every search of the courier index asks for it.
_GEOMETRY_CACHE: Final = 1 << 16


@lru_cache(maxsize=_GEOMETRY_CACHE)
def _circumradius_m(cell: str) -> float:
    lat, lng = h3.cell_to_latlng(cell)
    return max(haversine_latlng_m(lat, lng, v_lat, v_lng) for v_lat, v_lng in h3.cell_to_boundary(cell))


@lru_cache(maxsize=_GEOMETRY_CACHE)
def _cell_centre(cell: str) -> tuple[float, float]:
    lat, lng = h3.cell_to_latlng(cell)
    return float(lat), float(lng)


@lru_cache(maxsize=_GEOMETRY_CACHE)
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


def _great_circle_s(
    travel: GreatCircleTravel,
    distance_m: FloatArray,
    locations: Sequence[Location],
    slots: npt.NDArray[np.intp],
    target: Location,
    speed: float,
) -> IntArray:
    """``travel.matrix_s([locations[i] for i in slots], [target], speed)[:, 0]`` from the
    origins' great-circle distances (``haversine_matrix_m`` of the same points), without
    computing them again.

    Exactly equal to ``travel.travel_s`` entry by entry, as ``matrix_s`` is: numpy's result may
    differ from the scalar one in the last bits only, which matters only when the quotient is
    within rounding of a whole second, and those entries are recomputed with ``travel_s``.
    """
    check_speed(speed)
    seconds = distance_m * travel.road_factor / speed
    result = np.ceil(seconds)
    near_whole = np.abs(seconds - np.rint(seconds)) <= 1e-7 * np.maximum(seconds, 1.0)
    for i in np.flatnonzero(near_whole).tolist():
        result[i] = travel.travel_s(locations[int(slots[i])], target, speed)
    return result.astype(np.int64)


def _disk_cells(k: int) -> int:
    return 3 * k * (k + 1) + 1


@dataclass(frozen=True, slots=True)
class _Scan:
    """Every indexed courier seen from one target (see ``CourierIndex._scan``), by slot."""

    target: Location
    travel: GreatCircleTravel
    slots: npt.NDArray[np.intp]
    speeds: FloatArray  # the distinct speeds, ascending
    group: npt.NDArray[np.intp]  # each slot's index into speeds
    distance_m: FloatArray
    seconds: IntArray


class CourierIndex:
    """Couriers by H3 cell: O(1) position updates, search through ``grid_disk``.

    Each courier owns a slot in flat numpy arrays (lat, lng, speed) and sits in its cell's
    bucket of slots; a ping rewrites the slot and moves it between buckets only when the
    courier changes cell. A search collects the slots of the disk's cells, drops those out of
    reach with one vectorized great-circle pass and times the rest with the travel model's
    matrix, one call per speed. When the disk would hold many more cells than there are
    occupied cells (fine resolutions, long budgets), the occupied cells are filtered by
    distance instead; when the index holds few couriers for the disk's size, all of them go
    through the great-circle pass at once (cheaper than visiting the cells in Python). Either
    way the travel model times no courier outside reach (with the great-circle model itself,
    the seconds come from that pass's distances).

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
        "_factors",
        "_free",
        "_ids",
        "_lat",
        "_lng",
        "_locations",
        "_occupied",
        "_rank",
        "_ranked",
        "_resolution",
        "_scans",
        "_slot_of",
        "_speed",
        "_used",
    )

    # Past this many disk cells per occupied cell, a search filters the occupied cells by
    # distance instead of walking a disk that is mostly empty (high resolutions, long budgets).
    _SCAN_CELLS_RATIO: Final = 8
    # Up to this many indexed couriers per disk cell, a search times every indexed courier in
    # one numpy pass instead of collecting the disk's buckets cell by cell (a Python loop).
    _SCAN_ALL_RATIO: Final = 8
    # At most this many targets' scans are kept (an index that does not change for long).
    _SCANS_KEPT: Final = 4096

    def __init__(self, resolution: int = 8) -> None:
        self._resolution = check_resolution(resolution)
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
        # The occupied cells with their centres and circumradii, for searches that filter
        # cells by distance; dropped whenever a cell gains its first courier or loses its last.
        self._occupied: tuple[list[str], FloatArray, FloatArray] | None = None
        # Targets scanned whole (see _scan): their distance to every indexed courier, the speed
        # groups and travel seconds (great-circle model); dropped on any upsert or removal, so
        # the growing budgets of one search, and the searches after prepare(), share one pass.
        self._scans: dict[Location, _Scan] = {}
        # A factored travel model's factor of each slot's courier (NaN: not looked up yet), for
        # the model it was looked up with; dropped with the scans.
        self._factors: tuple[object, FloatArray] | None = None

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
        check_speed(speed_mps)
        self._scans.clear()
        self._factors = None
        cell = _cell_at(location.lat, location.lng, self._resolution)
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
                self._occupied = None
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
        self._scans.clear()
        self._factors = None
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
        budget = as_seconds(budget_s, "budget_s")
        return self._ordered(*self.within_slots(target, budget, travel))

    def within_slots(
        self, target: Location, budget_s: int, travel: TravelModel
    ) -> tuple[npt.NDArray[np.intp], IntArray]:
        """Like :meth:`within`, unsorted, as arrays: index slots and travel seconds.

        For callers that time thousands of candidates: map slots back with :meth:`slot_of`.
        """
        budget = as_seconds(budget_s, "budget_s")
        if budget < 0 or not self._slot_of:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.int64)
        scanned = self._scans.get(target)
        if scanned is not None and scanned.travel is travel:
            return self._scan(target, budget, travel)
        reach = travel.reach_m(budget, self._max_speed())
        cell = _cell_at(target.lat, target.lng, self._resolution)
        shortest_m, circumradius_m = _cell_scale_m(cell)
        k = _disk_k(shortest_m, circumradius_m, _check_reach(reach), bool(h3.is_pentagon(cell)))
        if len(self._slot_of) <= self._SCAN_ALL_RATIO * _disk_cells(k):
            # Every courier within reach lies in the disk, and the reach filter drops the rest:
            # timing them all gives the same couriers.
            return self._scan(target, budget, travel)
        if _disk_cells(k) > self._SCAN_CELLS_RATIO * len(self._cells):
            cells: Iterable[str] = self._occupied_cells_near(target, reach)
        else:
            cells = h3.grid_disk(cell, k)
        return self._timed(target, budget, travel, self._slots_in(cells))

    def prepare(self, targets: Iterable[Location], travel: TravelModel) -> None:
        """Time every indexed courier to each target in one numpy pass, for the searches of
        those targets that follow until the index changes (a tick's merchants: many targets,
        the same couriers). Only the great-circle model is timed this way; the results of
        the searches are the same either way."""
        if type(travel) is not GreatCircleTravel or not self._slot_of:
            return
        assert isinstance(travel, GreatCircleTravel)
        todo = list(dict.fromkeys(t for t in targets if t not in self._scans))
        if not todo:
            return
        slots = np.flatnonzero(self._speed[: self._used] > 0.0)  # 0.0 marks a free slot
        speed = self._speed[slots]
        speeds, group = np.unique(speed, return_inverse=True)
        for s in speeds.tolist():
            check_speed(s)
        distance_m = haversine_matrix_m(
            self._lat[slots], self._lng[slots], [t.lat for t in todo], [t.lng for t in todo]
        )  # one row per courier, one column per target
        seconds = distance_m * travel.road_factor / speed[:, None]
        whole = np.ceil(seconds)
        # as in _great_circle_s: entries within rounding of a whole second are timed exactly
        near_whole = np.abs(seconds - np.rint(seconds)) <= 1e-7 * np.maximum(seconds, 1.0)
        locations = self._locations
        for i, j in zip(*np.nonzero(near_whole), strict=True):
            slot = int(slots[i])
            whole[i, j] = travel.travel_s(locations[slot], todo[j], float(self._speed[slot]))
        timed = whole.astype(np.int64)
        for j, target in enumerate(todo):
            self._scans[target] = _Scan(
                target, travel, slots, speeds, group, distance_m[:, j].copy(), timed[:, j].copy()
            )

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
        budget = as_seconds(max_budget_s, "max_budget_s")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be a whole number >= 1, got {limit!r}", field="limit")
        if budget < 0 or not self._slot_of:
            return []
        top_speed = self._max_speed()
        cell = _cell_at(target.lat, target.lng, self._resolution)
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
            self._occupied = None

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
        if self._occupied is None:
            cells = list(self._cells)
            centres = np.array([_cell_centre(cell) for cell in cells], dtype=np.float64).reshape(-1, 2)
            radius_m = np.array([_circumradius_m(cell) for cell in cells])
            self._occupied = (cells, centres, radius_m)
        cells, centres, radius_m = self._occupied
        distance_m = haversine_matrix_m([target.lat], [target.lng], centres[:, 0], centres[:, 1])[0]
        limit_m = reach_m * (1.0 + 1e-9) + radius_m * (1.0 + CELL_SLACK_REL) + CELL_SLACK_M
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

    def _scan(
        self, target: Location, budget_s: int, travel: TravelModel
    ) -> tuple[npt.NDArray[np.intp], IntArray]:
        """:meth:`_timed` of every indexed courier, in the same order (by speed, then slot)."""
        if type(travel) is not GreatCircleTravel:
            return self._timed(target, budget_s, travel, np.flatnonzero(self._speed[: self._used] > 0.0))
        assert isinstance(travel, GreatCircleTravel)
        near = self._scans.get(target)
        if near is None or near.travel is not travel:
            if len(self._scans) >= self._SCANS_KEPT:
                self._scans.clear()
            near = self._scans[target] = self._scanned(target, travel)
        reach_m = np.array([travel.reach_m(budget_s, s) for s in near.speeds.tolist()])
        keep = (near.distance_m <= reach_m[near.group] * (1.0 + 1e-9) + 1e-6) & (near.seconds <= budget_s)
        found = np.flatnonzero(keep)
        found = found[np.argsort(near.group[found], kind="stable")]
        return near.slots[found], near.seconds[found]

    def _scanned(self, target: Location, travel: GreatCircleTravel) -> _Scan:
        slots = np.flatnonzero(self._speed[: self._used] > 0.0)  # 0.0 marks a free slot
        speeds, group = np.unique(self._speed[slots], return_inverse=True)
        distance_m = haversine_matrix_m(self._lat[slots], self._lng[slots], [target.lat], [target.lng])[:, 0]
        seconds = np.zeros(len(slots), dtype=np.int64)
        for g, speed in enumerate(speeds.tolist()):
            members = np.flatnonzero(group == g)
            seconds[members] = _great_circle_s(
                travel, distance_m[members], self._locations, slots[members], target, speed
            )
        return _Scan(target, travel, slots, speeds, group, distance_m, seconds)

    def _factors_of(self, travel: TravelModel, slots: npt.NDArray[np.intp]) -> FloatArray:
        """``travel.factor`` of the couriers in ``slots`` (see :func:`~dispatch.geo.travel.factored_base`)."""
        cached = self._factors
        if cached is None or cached[0] is not travel or cached[1].size < self._used:
            cached = self._factors = (travel, np.full(max(self._used, 1), np.nan))
        factors = cached[1]
        missing = slots[np.isnan(factors[slots])]
        if missing.size:
            factor = travel.factor  # type: ignore[attr-defined]
            locations = self._locations
            factors[missing] = [factor(locations[i]) for i in missing.tolist()]
        return factors[slots]

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
        # The great-circle model times a courier from the very distance just computed.
        great_circle = type(travel) is GreatCircleTravel
        distance_m = distance_m[keep][order]
        bounds = np.searchsorted(inverse[order], np.arange(len(speeds) + 1)).tolist()
        locations = self._locations
        kept_slots = [slots[:0]]
        kept_s = [np.zeros(0, dtype=np.int64)]
        for group, speed in enumerate(speeds.tolist()):
            members = slots[bounds[group] : bounds[group + 1]]
            if members.size == 0:
                continue
            if great_circle:
                assert isinstance(travel, GreatCircleTravel)
                seconds = _great_circle_s(
                    travel, distance_m[bounds[group] : bounds[group + 1]], locations, members, target, speed
                )
            elif (base := factored_base(travel)) is not None:
                # a great-circle model corrected by a factor per origin (learned travel): the
                # great-circle seconds of the pass above, times each courier's factor, looked
                # up once per courier while the index and the model stay the same
                seconds = _great_circle_s(
                    base, distance_m[bounds[group] : bounds[group + 1]], locations, members, target, speed
                )
                factors = self._factors_of(travel, members)
                seconds = np.where(factors == 1.0, seconds, np.ceil(seconds * factors)).astype(np.int64)
            else:
                origins = [locations[i] for i in members.tolist()]
                seconds = np.asarray(travel.matrix_s(origins, [target], speed)[:, 0], dtype=np.int64)
            ok = seconds <= budget_s
            kept_slots.append(members[ok])
            kept_s.append(seconds[ok])
        return np.concatenate(kept_slots), np.concatenate(kept_s)
