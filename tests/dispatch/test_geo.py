"""dispatch.geo: distances, travel-time models, the courier index and delivery areas."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from functools import cache
from typing import Any

import h3
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, shape

from dispatch.errors import InvalidInput
from dispatch.geo import (
    EARTH_RADIUS_M,
    AreaIndex,
    CellVerdict,
    CourierIndex,
    GreatCircleTravel,
    PlanarTravel,
    TravelModel,
    disk_k_for,
    haversine_m,
    haversine_matrix_m,
    location_to_cell,
    planar_to_location,
    seconds_from,
    seconds_to,
)
from dispatch.models import DeliveryArea, Location

CHICAGO = Location(41.8781, -87.6298)
MDRP_SPEED = 427 / 60  # 427 metres per minute, as in 36 of the MDRP instances


def destination(origin: Location, bearing_deg: float, distance_m: float) -> Location:
    """The point ``distance_m`` from ``origin`` along an initial bearing, on the same sphere."""
    lat1, lng1 = math.radians(origin.lat), math.radians(origin.lng)
    bearing, delta = math.radians(bearing_deg), distance_m / EARTH_RADIUS_M
    lat2 = math.asin(math.sin(lat1) * math.cos(delta) + math.cos(lat1) * math.sin(delta) * math.cos(bearing))
    lng2 = lng1 + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(lat1),
        math.cos(delta) - math.sin(lat1) * math.sin(lat2),
    )
    return Location(math.degrees(lat2), (math.degrees(lng2) + 540.0) % 360.0 - 180.0)


def planar(x_m: float, y_m: float) -> Location:
    return planar_to_location(x_m, y_m)


# -- distances -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected_m"),
    [
        (Location(0.0, 0.0), Location(1.0, 0.0), 111_195.08),  # one degree of latitude
        (Location(0.0, 0.0), Location(0.0, 1.0), 111_195.08),  # one degree of longitude on the equator
        (
            Location(60.0, 10.0),
            Location(60.0, 11.0),
            55_597.01,
        ),  # at 60 degrees: under half, the great circle cuts inside the parallel
        (Location(0.0, 0.0), Location(90.0, 0.0), math.pi / 2 * EARTH_RADIUS_M),  # equator to pole
        (Location(0.0, 0.0), Location(0.0, 180.0), math.pi * EARTH_RADIUS_M),  # antipodes
        (CHICAGO, CHICAGO, 0.0),  # the same point
    ],
)
def test_haversine_known_distances(a: Location, b: Location, expected_m: float) -> None:
    assert haversine_m(a, b) == pytest.approx(expected_m, abs=0.01)
    assert haversine_m(b, a) == pytest.approx(expected_m, abs=0.01)


def test_haversine_matrix_equals_scalar() -> None:
    rng = np.random.default_rng(7)
    points = [
        destination(CHICAGO, b, d)
        for b, d in zip(rng.uniform(0, 360, 40), rng.uniform(0, 30_000, 40), strict=True)
    ]
    points += [CHICAGO, Location(-33.9, 151.2), Location(89.9, 0.0)]
    lat = np.array([p.lat for p in points])
    lng = np.array([p.lng for p in points])
    matrix = haversine_matrix_m(lat, lng, lat[:10], lng[:10])
    assert matrix.shape == (len(points), 10)
    expected = np.array([[haversine_m(a, b) for b in points[:10]] for a in points])
    np.testing.assert_allclose(matrix, expected, rtol=1e-12, atol=1e-9)
    assert np.all(np.diagonal(matrix[:10]) == 0.0)


def test_haversine_matrix_rejects_mismatched_shapes() -> None:
    with pytest.raises(InvalidInput):
        haversine_matrix_m([0.0, 1.0], [0.0], [0.0], [0.0])
    with pytest.raises(InvalidInput):
        haversine_matrix_m([0.0], [0.0], [[0.0]], [[0.0]])


# -- travel-time models ----------------------------------------------------------------------


def test_great_circle_travel_is_ceiled_seconds_of_road_metres() -> None:
    travel = GreatCircleTravel(road_factor=1.3)
    a, b = Location(0.0, 0.0), Location(0.01, 0.0)  # 1111.95 m apart
    assert travel.travel_s(a, b, 5.0) == 290  # 1111.95 * 1.3 / 5 = 289.1
    assert travel.travel_s(a, a, 5.0) == 0
    assert GreatCircleTravel(1.0).travel_s(a, b, 1.0) == 1112
    assert isinstance(travel.travel_s(a, b, 5.0), int)


@pytest.mark.parametrize("road_factor", [0.0, -1.3, math.nan, math.inf, True, "1.3"])
def test_great_circle_travel_rejects_bad_road_factor(road_factor: Any) -> None:
    with pytest.raises(InvalidInput, match="road factor"):
        GreatCircleTravel(road_factor)


@pytest.mark.parametrize("travel", [GreatCircleTravel(), PlanarTravel()])
@pytest.mark.parametrize("speed_mps", [0.0, -4.5, math.nan, math.inf])
def test_travel_models_reject_bad_speed(travel: TravelModel, speed_mps: float) -> None:
    a = planar(0.0, 0.0)
    with pytest.raises(InvalidInput, match="speed"):
        travel.travel_s(a, a, speed_mps)
    with pytest.raises(InvalidInput, match="speed"):
        travel.matrix_s([a], [a], speed_mps)


def test_seconds_from_and_to_equal_the_scalar_at_each_origins_speed() -> None:
    """Couriers at their own speeds timed to several merchants: the same numbers as
    ``travel_s`` entry by entry, for the great-circle model and a learned correction of it."""
    from dispatch.estimates.travel import LearnedTravel, TravelFactors, cell_of

    rng = np.random.default_rng(5)
    points = [
        destination(CHICAGO, b, d)
        for b, d in zip(rng.uniform(0, 360, 40), rng.uniform(0, 9_000, 40), strict=True)
    ]
    speeds = [(3.0, 4.5, 6.9)[i % 3] for i in range(len(points))]
    targets = points[:7]
    base = GreatCircleTravel(road_factor=1.3)
    learned = LearnedTravel(base, TravelFactors(1.1, {cell_of(points[3]): 1.4, cell_of(points[8]): 0.8}))
    distance_m = haversine_matrix_m(
        [p.lat for p in points], [p.lng for p in points], [t.lat for t in targets], [t.lng for t in targets]
    )
    for travel in (base, learned):
        expected = [[travel.travel_s(a, t, v) for t in targets] for a, v in zip(points, speeds, strict=True)]
        assert seconds_from(travel, points, speeds, targets).tolist() == expected
        # the caller's distances (the same haversine_matrix_m) are used, not computed again
        assert seconds_from(travel, points, speeds, targets, distance_m).tolist() == expected
        # a few entries go entry by entry, to the same numbers
        assert seconds_from(travel, points[:2], speeds[:2], targets[:3]).tolist() == [
            r[:3] for r in expected[:2]
        ]
        assert seconds_to(travel, points, speeds, targets[2]) == [row[2] for row in expected]
    assert seconds_from(base, [], [], targets).shape == (0, 7)
    with pytest.raises(InvalidInput):
        seconds_from(base, points, speeds[:-1], targets)


def test_great_circle_matrix_equals_scalar_even_at_whole_seconds() -> None:
    travel = GreatCircleTravel(road_factor=1.3)
    rng = np.random.default_rng(11)
    points = [
        destination(CHICAGO, b, d)
        for b, d in zip(rng.uniform(0, 360, 60), rng.uniform(0, 15_000, 60), strict=True)
    ]
    for speed in (3.0, 4.5, 11.0):
        matrix = travel.matrix_s(points, points[:20], speed)
        assert matrix.dtype == np.int64
        assert matrix.tolist() == [[travel.travel_s(a, b, speed) for b in points[:20]] for a in points]
    # Speeds that put a pair's quotient on a whole second, by numpy's distance or by math's:
    # where the two differ in the last bit (SIMD arcsin does on long distances), ceil would too.
    rng_pairs = random.Random(4)
    origin = Location(0.0, 0.0)
    far = [Location(rng_pairs.uniform(-60, 60), rng_pairs.uniform(-180, 180)) for _ in range(300)]
    far += points[:20]
    by_numpy = haversine_matrix_m([p.lat for p in far], [p.lng for p in far], [0.0], [0.0])[:, 0]
    for point, numpy_m in zip(far, by_numpy.tolist(), strict=True):
        for seconds in (7, 1000, 7777):
            for distance_m in (numpy_m, haversine_m(point, origin)):
                speed = distance_m * 1.3 / seconds
                assert travel.matrix_s([point], [origin], speed).tolist() == [
                    [travel.travel_s(point, origin, speed)]
                ]
                # seconds_from's one pass, from these very distances
                matrix = seconds_from(travel, [point], [speed], [origin], np.array([[numpy_m]]))
                assert matrix.tolist() == [[travel.travel_s(point, origin, speed)]]


@pytest.mark.parametrize(
    ("dx_m", "dy_m", "expected_s"),
    [
        (0, 0, 0),  # same point
        (427, 0, 60),  # exactly one minute of road
        (0, -427, 60),  # ... in any direction
        (428, 0, 120),  # a metre more starts the second minute
        (3, 4, 60),  # a 3-4-5 triangle: 5 m
        (2562, 3416, 600),  # a 3-4-5 triangle of exactly 4270 m = 10 minutes
        (2562, 3417, 660),  # a metre off it: 4270.6 m
        (35_124, 54_766, 9180),  # across the largest MDRP instance: 65_061.6 m, 152.4 min
    ],
)
def test_planar_travel_reproduces_the_mdrp_formula(dx_m: int, dy_m: int, expected_s: int) -> None:
    travel = PlanarTravel()
    a, b = planar(1000.0, 2000.0), planar(1000.0 + dx_m, 2000.0 + dy_m)
    assert travel.travel_s(a, b, MDRP_SPEED) == expected_s
    assert travel.travel_s(b, a, MDRP_SPEED) == expected_s
    assert travel.matrix_s([a, b], [b, a], MDRP_SPEED).tolist() == [[expected_s, 0], [0, expected_s]]


@pytest.mark.parametrize("per_minute", [314, 320, 419, 427])  # every meters_per_minute of the MDRP instances
def test_planar_metres_per_minute_round_trips(per_minute: int) -> None:
    assert PlanarTravel.metres_per_minute(per_minute / 60) == float(per_minute)


def test_planar_distance_is_the_correctly_rounded_root_of_integer_squares() -> None:
    # On integer coordinates up to 20 km, sqrt of the (exact) integer sum of squares and hypot
    # agree, and the float formula equals ceil(distance / mpm) done in exact integer arithmetic.
    rng = random.Random(5)
    travel = PlanarTravel()
    pairs = [(rng.randint(-20_000, 20_000), rng.randint(-20_000, 20_000)) for _ in range(20_000)]
    pairs += [(20_000, 20_000), (427 * 3, 427 * 4), (0, 1), (19_999, 1)]
    origin = planar(0.0, 0.0)
    for dx, dy in pairs:
        assert math.sqrt(float(dx * dx + dy * dy)) == math.hypot(dx, dy)
        squares = dx * dx + dy * dy
        minutes = math.isqrt(squares) // 427
        while minutes * minutes * 427 * 427 < squares:  # the smallest n with n * 427 >= distance
            minutes += 1
        assert travel.travel_s(origin, planar(float(dx), float(dy)), MDRP_SPEED) == 60 * minutes


def test_planar_matrix_equals_scalar() -> None:
    rng = random.Random(3)
    travel = PlanarTravel()
    points = [planar(rng.randint(0, 35_000), rng.randint(0, 55_000)) for _ in range(50)]
    for speed in (MDRP_SPEED, 314 / 60, 4.5):
        matrix = travel.matrix_s(points, points[:15], speed)
        assert matrix.dtype == np.int64
        assert matrix.tolist() == [[travel.travel_s(a, b, speed) for b in points[:15]] for a in points]


def test_planar_travel_needs_planar_coordinates() -> None:
    travel = PlanarTravel()
    with pytest.raises(InvalidInput, match="no planar coordinates"):
        travel.travel_s(planar(0.0, 0.0), CHICAGO, MDRP_SPEED)
    with pytest.raises(InvalidInput, match="no planar coordinates"):
        travel.matrix_s([planar(0.0, 0.0), CHICAGO], [planar(1.0, 1.0)], MDRP_SPEED)


@pytest.mark.parametrize("travel", [GreatCircleTravel(1.3), GreatCircleTravel(1.0), PlanarTravel()])
def test_reach_bounds_the_great_circle_distance_of_every_reachable_point(travel: TravelModel) -> None:
    rng = random.Random(9)
    target = planar(0.0, 0.0)
    for _ in range(3000):
        point = planar(rng.uniform(-25_000, 25_000), rng.uniform(-25_000, 25_000))
        speed = rng.choice([MDRP_SPEED, 4.5, 9.0])
        seconds = travel.travel_s(point, target, speed)
        assert haversine_m(point, target) <= travel.reach_m(seconds, speed)
    assert travel.reach_m(-1, 4.5) == 0.0


# -- planar points on the globe, cells --------------------------------------------------------


def test_planar_to_location_keeps_planar_coordinates_and_metres() -> None:
    origin = planar_to_location(0.0, 0.0)
    assert (origin.lat, origin.lng) == (41.8781, -87.6298)
    north, east = planar_to_location(0.0, 5000.0), planar_to_location(5000.0, 0.0)
    assert (north.x_m, north.y_m) == (0.0, 5000.0)
    assert haversine_m(origin, north) == pytest.approx(5000.0, abs=1e-6)
    assert haversine_m(origin, east) == pytest.approx(5000.0, abs=0.01)
    assert north.lat > origin.lat and east.lng > origin.lng
    moved = planar_to_location(0.0, 0.0, origin_lat=0.0, origin_lng=0.0)
    assert (moved.lat, moved.lng) == (0.0, 0.0)


@pytest.mark.parametrize(
    "args",
    [(math.nan, 0.0), (0.0, math.inf), (0.0, 0.0, 90.0, 0.0), (0.0, 1e9)],  # last: past the pole
)
def test_planar_to_location_rejects_bad_input(args: tuple[float, ...]) -> None:
    with pytest.raises(InvalidInput):
        planar_to_location(*args)


def test_location_to_cell_is_h3() -> None:
    assert location_to_cell(CHICAGO, 8) == h3.latlng_to_cell(CHICAGO.lat, CHICAGO.lng, 8)
    assert h3.get_resolution(location_to_cell(CHICAGO, 15)) == 15
    for bad in (-1, 16, 8.0, True):
        with pytest.raises(InvalidInput, match="resolution"):
            location_to_cell(CHICAGO, bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "cell",
    [
        location_to_cell(CHICAGO, 7),
        location_to_cell(CHICAGO, 8),
        location_to_cell(CHICAGO, 9),
        location_to_cell(Location(-33.87, 151.21), 8),  # Sydney
        location_to_cell(Location(64.13, -21.9), 9),  # Reykjavik: cells shrink toward the poles
        h3.get_pentagons(8)[3],  # a pentagon
        sorted(h3.grid_ring(h3.get_pentagons(9)[5], 2))[0],  # next to a pentagon
    ],
)
def test_disk_covers_every_point_within_reach_of_the_cell(cell: str) -> None:
    rng = random.Random(cell)
    edge_m = h3.average_hexagon_edge_length(h3.get_resolution(cell), "m")
    lat, lng = h3.cell_to_latlng(cell)
    # The vertices of the cell, pulled a hair inwards, and its centre.
    starts = [
        Location(lat + 0.9999 * (v_lat - lat), lng + 0.9999 * (v_lng - lng))
        for v_lat, v_lng in h3.cell_to_boundary(cell)
    ]
    starts.append(Location(lat, lng))
    previous_k = 0
    for reach_m in (0.0, 0.5 * edge_m, 2.0 * edge_m, 7.3 * edge_m, 20.0 * edge_m):
        k = disk_k_for(cell, reach_m)
        assert k >= previous_k
        previous_k = k
        disk = set(h3.grid_disk(cell, k))
        for start in starts:
            for bearing in range(0, 360, 10):
                end = destination(start, bearing + rng.random() * 10, reach_m * 0.999999)
                assert h3.latlng_to_cell(end.lat, end.lng, h3.get_resolution(cell)) in disk
    assert disk_k_for(cell, 0.0) <= 1


def test_disk_k_for_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput):
        disk_k_for("not a cell", 100.0)
    for reach in (-1.0, math.nan, math.inf):
        with pytest.raises(InvalidInput):
            disk_k_for(location_to_cell(CHICAGO, 8), reach)


# -- the courier index -------------------------------------------------------------------------


def brute_force(
    couriers: dict[str, tuple[Location, float]], target: Location, budget_s: int, travel: TravelModel
) -> list[tuple[str, int]]:
    timed = [(travel.travel_s(loc, target, speed), cid) for cid, (loc, speed) in couriers.items()]
    return [(cid, t) for t, cid in sorted(timed) if t <= budget_s]


class SpyTravel:
    """A travel model that remembers which couriers it was asked to time."""

    def __init__(self) -> None:
        self.inner = GreatCircleTravel()
        self.timed: list[Location] = []

    def travel_s(self, a: Location, b: Location, speed_mps: float) -> int:
        return self.inner.travel_s(a, b, speed_mps)

    def matrix_s(
        self, origins: Sequence[Location], destinations: Sequence[Location], speed_mps: float
    ) -> Any:
        self.timed.extend(origins)
        return self.inner.matrix_s(origins, destinations, speed_mps)

    def reach_m(self, budget_s: int, speed_mps: float) -> float:
        return self.inner.reach_m(budget_s, speed_mps)


def test_upsert_moves_a_courier_between_cells() -> None:
    index = CourierIndex(resolution=8)
    travel = GreatCircleTravel()
    home, away = CHICAGO, destination(CHICAGO, 90.0, 8000.0)
    index.upsert("c1", home, 4.5)
    assert len(index) == 1 and "c1" in index
    assert index.cell_of("c1") == location_to_cell(home, 8)
    assert [cid for cid, _ in index.within(home, 60, travel)] == ["c1"]

    index.upsert("c1", away, 4.5)
    assert len(index) == 1
    assert index.cell_of("c1") == location_to_cell(away, 8)
    assert index.within(home, 600, travel) == []
    assert index.within(away, 0, travel) == [("c1", 0)]

    index.upsert("c1", destination(away, 0.0, 10.0), 4.5)  # a ping within the same cell
    assert index.within(away, 600, travel) == [("c1", 3)]  # 10 m * 1.3 / 4.5 m/s = 2.9 s


def test_remove_forgets_a_courier_and_its_slot_is_reused() -> None:
    index = CourierIndex(resolution=9)
    travel = GreatCircleTravel()
    index.upsert("c1", CHICAGO, 4.5)
    index.upsert("c2", destination(CHICAGO, 0.0, 100.0), 4.5)
    index.remove("c1")
    index.remove("c1")  # unknown now: a no-op
    index.remove("never-seen")
    assert len(index) == 1 and "c1" not in index and index.cell_of("c1") is None
    assert index.within(CHICAGO, 600, travel) == [("c2", 29)]
    index.upsert("c3", destination(CHICAGO, 180.0, 50.0), 3.0)  # takes c1's old slot
    assert index.within(CHICAGO, 600, travel) == [("c3", 22), ("c2", 29)]
    assert 42 not in index and None not in index  # non-string ids are simply absent


def test_index_rejects_bad_input() -> None:
    with pytest.raises(InvalidInput, match="resolution"):
        CourierIndex(resolution=16)
    index = CourierIndex()
    for speed in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(InvalidInput, match="speed"):
            index.upsert("c1", CHICAGO, speed)
    for courier_id in ("", "c\x00", 7):
        with pytest.raises(InvalidInput, match="courier id"):
            index.upsert(courier_id, CHICAGO, 4.5)  # type: ignore[arg-type]
    assert len(index) == 0
    with pytest.raises(InvalidInput, match="budget_s"):
        index.within(CHICAGO, 60.5, GreatCircleTravel())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="limit"):
        index.nearest(CHICAGO, GreatCircleTravel(), max_budget_s=60, limit=0)


def test_empty_index_and_negative_budget_find_no_one() -> None:
    index = CourierIndex()
    travel = GreatCircleTravel()
    assert index.within(CHICAGO, 900, travel) == []
    assert index.nearest(CHICAGO, travel, max_budget_s=900) == []
    index.upsert("c1", CHICAGO, 4.5)
    assert index.within(CHICAGO, -1, travel) == []
    assert index.nearest(CHICAGO, travel, max_budget_s=-1) == []


def test_within_includes_a_courier_exactly_at_the_budget() -> None:
    # Planar: 3 minutes of road at 427 m/min is 1281 m; a metre more is a 4th minute.
    index = CourierIndex(resolution=9)
    travel = PlanarTravel()
    index.upsert("at", planar(1281.0, 0.0), MDRP_SPEED)
    index.upsert("beyond", planar(0.0, -1282.0), MDRP_SPEED)
    target = planar(0.0, 0.0)
    assert index.within(target, 180, travel) == [("at", 180)]
    assert index.within(target, 179, travel) == []
    assert index.within(target, 240, travel) == [("at", 180), ("beyond", 240)]
    # Great circle: the budget set to a courier's own travel time.
    index = CourierIndex(resolution=8)
    travel_gc = GreatCircleTravel()
    courier = destination(CHICAGO, 33.0, 3456.0)
    index.upsert("c1", courier, 4.5)
    seconds = travel_gc.travel_s(courier, CHICAGO, 4.5)
    assert index.within(CHICAGO, seconds, travel_gc) == [("c1", seconds)]
    assert index.within(CHICAGO, seconds - 1, travel_gc) == []


def test_within_times_only_couriers_of_the_disk() -> None:
    index = CourierIndex(resolution=8)
    for i in range(50):
        index.upsert(f"far{i}", destination(CHICAGO, 7.2 * i, 40_000.0), 4.5)
    index.upsert("near", destination(CHICAGO, 0.0, 500.0), 4.5)
    spy = SpyTravel()
    assert index.within(CHICAGO, 900, spy) == [("near", 145)]
    assert len(spy.timed) == 1  # the 50 couriers 40 km away were never looked at


def test_nearest_returns_the_fastest_couriers_in_order() -> None:
    index = CourierIndex(resolution=8)
    travel = GreatCircleTravel()
    index.upsert("walker", destination(CHICAGO, 0.0, 200.0), 1.5)  # 174 s
    index.upsert("cyclist", destination(CHICAGO, 90.0, 620.0), 6.0)  # 134.3 s
    index.upsert("b", destination(CHICAGO, 180.0, 3000.0), 4.5)  # 867 s
    index.upsert("a", destination(CHICAGO, 270.0, 3000.0), 4.5)  # 867 s, same as b: by id
    assert index.nearest(CHICAGO, travel, max_budget_s=3600) == [("cyclist", 135)]
    assert index.nearest(CHICAGO, travel, max_budget_s=3600, limit=3) == [
        ("cyclist", 135),
        ("walker", 174),
        ("a", 867),
    ]
    assert index.nearest(CHICAGO, travel, max_budget_s=600, limit=10) == [("cyclist", 135), ("walker", 174)]
    assert index.nearest(CHICAGO, travel, max_budget_s=100, limit=10) == []


def test_search_filters_occupied_cells_when_the_disk_would_be_huge() -> None:
    # Resolution 13 cells are 3.5 m across: a 30-minute budget would need a disk of millions.
    index = CourierIndex(resolution=13)
    travel = GreatCircleTravel()
    rng = random.Random(2)
    couriers = {
        f"c{i}": (destination(CHICAGO, rng.uniform(0, 360), rng.uniform(0, 12_000)), 4.5) for i in range(60)
    }
    for cid, (loc, speed) in couriers.items():
        index.upsert(cid, loc, speed)
    expected = brute_force(couriers, CHICAGO, 1800, travel)
    assert 0 < len(expected) < len(couriers)
    assert index.within(CHICAGO, 1800, travel) == expected
    assert index.nearest(CHICAGO, travel, max_budget_s=1800, limit=5) == expected[:5]


SPEEDS = st.sampled_from([1.5, 3.0, 4.5, MDRP_SPEED, 9.0, 12.5])


def random_spot(rng: random.Random, planar_points: bool) -> Location:
    if planar_points:
        radius_m, angle = 15_000 * math.sqrt(rng.random()), rng.uniform(0, 2 * math.pi)
        return planar(round(radius_m * math.cos(angle)), round(radius_m * math.sin(angle)))
    return destination(CHICAGO, rng.uniform(0, 360), 15_000 * math.sqrt(rng.random()))


@st.composite
def courier_cloud(draw: st.DrawFn, planar_points: bool) -> tuple[dict[str, tuple[Location, float]], Location]:
    """Couriers within 15 km of the city centre, and a target among them.

    A few positions hypothesis picks (and shrinks), then a seeded crowd to fill the city.
    """
    if planar_points:
        coordinate = st.integers(-10_600, 10_600)  # whole metres, as in the MDRP instances
        spots = st.tuples(coordinate, coordinate).map(lambda xy: planar(float(xy[0]), float(xy[1])))
    else:
        spots = st.tuples(st.floats(0, 360), st.floats(0, 15_000)).map(lambda bd: destination(CHICAGO, *bd))
    positions = draw(st.lists(st.tuples(spots, SPEEDS), max_size=10))
    rng = random.Random(draw(st.integers(0, 2**32 - 1), label="seed"))
    crowd = draw(st.integers(0, 250), label="crowd")
    speeds = [1.5, 3.0, 4.5, MDRP_SPEED, 9.0, 12.5]
    positions += [(random_spot(rng, planar_points), rng.choice(speeds)) for _ in range(crowd)]
    couriers = {f"c{i:03d}": position for i, position in enumerate(positions)}
    return couriers, draw(spots)


def _learned_near_chicago() -> TravelModel:
    """Learned travel over the great-circle model with factors below, at and above 1.0 in the
    res-7 cells around Chicago (the index applies them itself: see ``factored_base``)."""
    from dispatch.estimates.travel import LearnedTravel, TravelFactors

    cells = sorted(h3.grid_disk(h3.latlng_to_cell(CHICAGO.lat, CHICAGO.lng, 7), 3))
    factors = {cell: (0.8, 1.0, 1.25, 1.1)[i % 4] for i, cell in enumerate(cells)}
    return LearnedTravel(GreatCircleTravel(), TravelFactors(1.07, factors))


@pytest.mark.parametrize("resolution", [7, 8, 9])
@pytest.mark.parametrize(
    "travel",
    [GreatCircleTravel(), PlanarTravel(), _learned_near_chicago()],
    ids=["great-circle", "planar", "learned"],
)
@pytest.mark.parametrize("search", ["disk", "occupied-cells"])
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_within_is_exactly_the_brute_force_set(
    resolution: int, travel: TravelModel, search: str, data: st.DataObject
) -> None:
    couriers, target = data.draw(courier_cloud(isinstance(travel, PlanarTravel)))
    index = CourierIndex(resolution)
    for cid, (loc, speed) in couriers.items():
        index.upsert(cid, loc, speed)
    budgets = [data.draw(st.integers(0, 1200), label="budget_s")]
    seconds = {cid: travel.travel_s(loc, target, speed) for cid, (loc, speed) in couriers.items()}
    near = sorted(cid for cid, t in seconds.items() if t <= 1500)
    if near:  # a courier exactly at the budget, and one second short of it
        at_budget = seconds[data.draw(st.sampled_from(near), label="at budget")]
        budgets += [at_budget, at_budget - 1]
    with pytest.MonkeyPatch.context() as patch:
        # Both ways of finding candidate cells: the grid disk, and filtering the occupied
        # cells (which the index prefers when the disk would be mostly empty).
        patch.setattr(CourierIndex, "_SCAN_CELLS_RATIO", 10**9 if search == "disk" else 0)
        for budget in budgets:
            expected = brute_force(couriers, target, budget, travel)
            assert index.within(target, budget, travel) == expected
            limit = data.draw(st.integers(1, 5), label="limit")
            assert index.nearest(target, travel, max_budget_s=budget, limit=limit) == expected[:limit]


@settings(max_examples=25, deadline=None)
@given(
    moves=st.lists(st.tuples(st.integers(0, 9), st.floats(0, 360), st.floats(0, 6000), SPEEDS), max_size=60)
)
@pytest.mark.parametrize("learned", [False, True], ids=["great-circle", "learned"])
def test_index_stays_exact_through_moves_and_removals(
    learned: bool, moves: list[tuple[int, float, float, float]]
) -> None:
    index = CourierIndex(resolution=9)
    couriers: dict[str, tuple[Location, float]] = {}
    travel = _learned_near_chicago() if learned else GreatCircleTravel()
    for number, bearing, distance, speed in moves:
        cid = f"c{number}"
        if distance < 300 and cid in couriers:  # now and then a courier goes off shift
            index.remove(cid)
            del couriers[cid]
        else:
            couriers[cid] = (destination(CHICAGO, bearing, distance), speed)
            index.upsert(cid, *couriers[cid])
        assert len(index) == len(couriers)
        assert index.within(CHICAGO, 900, travel) == brute_force(couriers, CHICAGO, 900, travel)


# -- delivery areas -----------------------------------------------------------------------------

U_SHAPE = {  # concave: a U open to the north
    "type": "Polygon",
    "coordinates": [
        [
            [-87.66, 41.86],
            [-87.60, 41.86],
            [-87.60, 41.90],
            [-87.62, 41.90],
            [-87.62, 41.875],
            [-87.64, 41.875],
            [-87.64, 41.90],
            [-87.66, 41.90],
            [-87.66, 41.86],
        ]
    ],
}
TWO_PARTS = {  # a MultiPolygon: a square with a hole, and a triangle
    "type": "MultiPolygon",
    "coordinates": [
        [
            [[-87.66, 41.86], [-87.63, 41.86], [-87.63, 41.89], [-87.66, 41.89], [-87.66, 41.86]],
            [[-87.65, 41.87], [-87.64, 41.87], [-87.64, 41.88], [-87.65, 41.88], [-87.65, 41.87]],
        ],
        [[[-87.62, 41.86], [-87.59, 41.86], [-87.605, 41.895], [-87.62, 41.86]]],
    ],
}
BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[-87.66, 41.86], [-87.60, 41.90], [-87.60, 41.86], [-87.66, 41.90], [-87.66, 41.86]]],
}


@cache
def parsed(geojson: str) -> Any:
    return shape(json.loads(geojson))


def exact_rule(area: DeliveryArea, center: Location, point: Location) -> bool:
    if area.radius_m is not None:
        return haversine_m(center, point) <= area.radius_m
    assert area.polygon is not None
    return bool(parsed(json.dumps(area.polygon)).covers(Point(point.lng, point.lat)))


@pytest.mark.parametrize("bearing", [0.0, 45.0, 90.0, 161.0, 270.0, 333.3])
def test_radius_area_includes_its_boundary(bearing: float) -> None:
    area = AreaIndex(CHICAGO, DeliveryArea(radius_m=3000.0))
    at = destination(CHICAGO, bearing, 3000.0)
    beyond = destination(CHICAGO, bearing, 3000.001)
    assert area.distance_m(at) == pytest.approx(3000.0, abs=1e-6)
    assert area.contains(at) is (area.distance_m(at) <= 3000.0)
    assert area.contains(beyond) is False
    assert area.contains(destination(CHICAGO, bearing, 2999.999)) is True
    # A radius that is, bit for bit, the point's distance: on the boundary, hence inside.
    exactly = AreaIndex(CHICAGO, DeliveryArea(radius_m=haversine_m(CHICAGO, at)))
    assert exactly.contains(at) is True
    assert exactly.cell_verdict(location_to_cell(at, 9)) is CellVerdict.BOUNDARY


def test_radius_area_refuses_with_the_distance() -> None:
    area = AreaIndex(CHICAGO, DeliveryArea(radius_m=3000.0))
    dropoff = destination(CHICAGO, 120.0, 3200.0)
    assert not area.contains(dropoff)
    assert round(area.distance_m(dropoff)) == 3200
    assert area.cell_verdict(location_to_cell(CHICAGO, 9)) is CellVerdict.INSIDE
    assert area.cell_verdict(location_to_cell(destination(CHICAGO, 0.0, 5000.0), 9)) is CellVerdict.OUTSIDE


@cache
def area_index(kind: str, resolution: int) -> tuple[AreaIndex, DeliveryArea]:
    area = {
        "radius": DeliveryArea(radius_m=2500.0),
        "concave": DeliveryArea(polygon=U_SHAPE),
        "multi": DeliveryArea(polygon=TWO_PARTS),
    }[kind]
    return AreaIndex(CHICAGO, area, resolution), area


def boundary_points(polygon: dict[str, Any]) -> list[tuple[float, float]]:
    geometry = shape(polygon)
    rings = [
        ring for part in getattr(geometry, "geoms", [geometry]) for ring in (part.exterior, *part.interiors)
    ]
    return [xy for ring in rings for xy in ring.coords]


NEAR_CHICAGO = st.tuples(st.floats(41.845, 41.915), st.floats(-87.675, -87.575))


@pytest.mark.parametrize("kind", ["radius", "concave", "multi"])
@pytest.mark.parametrize("resolution", [8, 9])
@settings(max_examples=40, deadline=None)
@given(points=st.lists(NEAR_CHICAGO, min_size=1, max_size=40))
@example(points=[(lat, lng) for lng, lat in boundary_points(U_SHAPE) + boundary_points(TWO_PARTS)])
@example(points=[(41.88, -87.62), (41.875, -87.63), (41.86, -87.61), (41.90, -87.66)])  # on edges
def test_area_contains_equals_the_exact_rule(
    kind: str, resolution: int, points: list[tuple[float, float]]
) -> None:
    index, area = area_index(kind, resolution)
    for lat, lng in points:
        point = Location(lat, lng)
        assert index.contains(point) is exact_rule(area, CHICAGO, point)


@pytest.mark.parametrize("kind", ["radius", "concave", "multi"])
def test_cell_verdicts_are_certain_and_spare_most_exact_tests(kind: str) -> None:
    index, area = AreaIndex(CHICAGO, area_index(kind, 9)[1], 9), area_index(kind, 9)[1]
    grid = [
        Location(lat, lng)
        for lat in np.linspace(41.845, 41.915, 70)
        for lng in np.linspace(-87.675, -87.575, 70)
    ]
    for point in grid:
        assert index.contains(point) is exact_rule(area, CHICAGO, point)
    verdicts = {cell: index.cell_verdict(cell) for cell in {location_to_cell(p, 9) for p in grid}}
    counts = {v: list(verdicts.values()).count(v) for v in CellVerdict}
    assert counts[CellVerdict.INSIDE] > 0 and counts[CellVerdict.OUTSIDE] > 0
    assert counts[CellVerdict.BOUNDARY] < 0.25 * len(verdicts)
    for cell, verdict in verdicts.items():  # a certain verdict holds for the cell's own vertices
        if verdict is not CellVerdict.BOUNDARY:
            inside = verdict is CellVerdict.INSIDE
            assert all(exact_rule(area, CHICAGO, Location(*v)) is inside for v in h3.cell_to_boundary(cell))


def test_area_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(AreaIndex, "_MAX_CACHED_CELLS", 5)
    area = DeliveryArea(polygon=U_SHAPE)
    index = AreaIndex(CHICAGO, area, resolution=10)
    for i in range(200):
        point = destination(CHICAGO, 17.0 * i, 40.0 * i)
        assert index.contains(point) is exact_rule(area, CHICAGO, point)
    assert len(index._verdicts) <= 5


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        (BOWTIE, "Self-intersection"),  # crosses itself
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}, "not valid GeoJSON"),  # too few points
        ({"type": "Polygon", "coordinates": "abc"}, "not valid GeoJSON"),
        ({"type": "Polygon"}, "not valid GeoJSON"),  # no coordinates
        ({"type": "Polygon", "coordinates": [[[0, 0], [0, 100], [1, 100], [0, 0]]]}, "within"),  # lat 100
    ],
)
def test_invalid_polygon_is_refused(polygon: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as error:
        AreaIndex(CHICAGO, DeliveryArea(polygon=polygon))
    assert error.value.field == "polygon"


@pytest.mark.parametrize("kind", ["Point", "LineString", "Feature", None])
def test_polygon_of_the_wrong_type_is_refused(kind: str | None) -> None:
    with pytest.raises(InvalidInput, match="Polygon or MultiPolygon"):
        DeliveryArea(polygon={"type": kind, "coordinates": [[-87.63, 41.88], [-87.62, 41.89]]})


def test_area_index_rejects_bad_resolution() -> None:
    with pytest.raises(InvalidInput, match="resolution"):
        AreaIndex(CHICAGO, DeliveryArea(radius_m=1000.0), resolution=-1)
