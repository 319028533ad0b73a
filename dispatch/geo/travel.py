"""Travel-time models behind one protocol, and planar points placed on the globe."""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from dispatch.errors import InvalidInput
from dispatch.geo.distance import EARTH_RADIUS_M, FloatArray, IntArray, haversine_m, haversine_matrix_m
from dispatch.models import Location

__all__ = ["GreatCircleTravel", "PlanarTravel", "TravelModel", "planar_to_location", "seconds_to"]

# -- travel-time models ----------------------------------------------------------------------


def check_speed(speed_mps: float) -> None:
    if not (speed_mps > 0.0 and math.isfinite(speed_mps)):
        raise InvalidInput(f"speed must be a positive number of m/s, got {speed_mps!r}", field="speed_mps")


def as_seconds(value: int, what: str) -> int:
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
        check_speed(speed_mps)
        return math.ceil(haversine_m(a, b) * self.road_factor / speed_mps)

    def matrix_s(
        self, origins: Sequence[Location], destinations: Sequence[Location], speed_mps: float
    ) -> IntArray:
        check_speed(speed_mps)
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
        check_speed(speed_mps)
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


def factored_base(travel: TravelModel) -> GreatCircleTravel | None:
    """The great-circle model under ``travel`` when ``travel`` times a ride as that model's
    seconds times a factor of the ride's origin, rounded up (``factored_origin``, as
    :class:`dispatch.estimates.travel.LearnedTravel` does); ``None`` otherwise."""
    base = getattr(travel, "base", None)
    if getattr(travel, "factored_origin", False) and type(base) is GreatCircleTravel:
        return base
    return None


def seconds_from(
    travel: TravelModel,
    origins: Sequence[Location],
    speeds_mps: Sequence[float],
    targets: Sequence[Location],
    distance_m: FloatArray | None = None,
) -> IntArray:
    """``travel.travel_s(origins[i], targets[j], speeds_mps[i])`` as a matrix: each origin at
    its own speed (couriers timed to several merchants).

    The great-circle model, and one that corrects it by a factor per origin (learned travel),
    time every entry in one numpy pass from the great-circle distances; ``distance_m``, when
    given, is ``haversine_matrix_m`` of these very origins and targets (a caller that needs the
    distances too), and is not computed again. Entries within rounding of a whole second are
    recomputed with ``travel_s``, as in :meth:`GreatCircleTravel.matrix_s`, so the seconds are
    the model's exactly. Other models get one ``matrix_s`` per speed.

    >>> travel = GreatCircleTravel()
    >>> seconds_from(travel, [Location(0.0, 0.0), Location(0.01, 0.0)], [5.0, 4.0],
    ...              [Location(0.0, 0.0), Location(0.01, 0.0)]).tolist()
    [[0, 290], [362, 0]]
    """
    if len(origins) != len(speeds_mps):
        raise InvalidInput("origins and speeds must be as many", field="speeds_mps")
    found: IntArray = np.zeros((len(origins), len(targets)), dtype=np.int64)
    if not origins or not targets:
        return found
    base = travel if type(travel) is GreatCircleTravel else factored_base(travel)
    if base is not None and (distance_m is not None or len(origins) * len(targets) > _SMALL_MATRIX):
        assert isinstance(base, GreatCircleTravel)
        speeds = np.asarray(speeds_mps, dtype=np.float64)
        if not np.all((speeds > 0.0) & np.isfinite(speeds)):
            for speed in np.unique(speeds).tolist():
                check_speed(speed)
        if distance_m is None:
            distance_m = haversine_matrix_m(
                [p.lat for p in origins],
                [p.lng for p in origins],
                [t.lat for t in targets],
                [t.lng for t in targets],
            )
        seconds = distance_m * base.road_factor / speeds[:, None]
        whole = np.ceil(seconds)
        near_whole = np.abs(seconds - np.rint(seconds)) <= 1e-7 * np.maximum(seconds, 1.0)
        if near_whole.any():
            for i, j in zip(*np.nonzero(near_whole), strict=True):
                whole[i, j] = base.travel_s(origins[i], targets[j], float(speeds[i]))
        if base is not travel:
            # ceil(seconds * factor), the same IEEE product as the model's own (a factor of
            # 1.0 leaves the whole seconds as they are)
            factor = travel.factor  # type: ignore[attr-defined]
            whole = np.ceil(whole * np.array([factor(p) for p in origins], dtype=np.float64)[:, None])
        found[:, :] = whole
        return found
    by_speed: dict[float, list[int]] = {}
    for i, speed in enumerate(speeds_mps):
        by_speed.setdefault(speed, []).append(i)
    for speed, members in by_speed.items():
        found[members, :] = travel.matrix_s([origins[i] for i in members], targets, speed)
    return found


def seconds_to(
    travel: TravelModel, origins: Sequence[Location], speeds_mps: Sequence[float], target: Location
) -> list[int]:
    """``travel.travel_s(origins[i], target, speeds_mps[i])`` for every ``i``: each origin at
    its own speed (couriers timed to a merchant), the same numbers in fewer steps.

    A column of :func:`seconds_from` (one numpy pass for the great-circle model and its learned
    correction); a few origins go entry by entry.

    >>> travel = GreatCircleTravel()
    >>> seconds_to(travel, [Location(0.0, 0.0), Location(0.01, 0.0)], [5.0, 4.0], Location(0.0, 0.0))
    [0, 362]
    """
    if len(origins) != len(speeds_mps):
        raise InvalidInput("origins and speeds must be as many", field="speeds_mps")
    if len(origins) <= _SMALL_MATRIX:
        return [travel.travel_s(a, target, speed) for a, speed in zip(origins, speeds_mps, strict=True)]
    found: list[int] = seconds_from(travel, origins, speeds_mps, [target])[:, 0].tolist()
    return found


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
        check_speed(speed_mps)
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
