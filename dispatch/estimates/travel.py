"""Travel times learned online: how much longer (or shorter) rides really take than the base
travel model says, per H3 cell of the leg's origin (resolution 7, ~5 km²) and hour of day,
shrunk towards the hour's figure, and that towards the city's.

A leg is a courier's ride from where it leaves (a merchant after its last pickup there, a
customer's door, the place it waited idle when a tick gave it work) to its next stop. When it
leaves, the engine notes where from, when, and where to (:func:`note_departure`); when it
reports arriving there (:func:`observe_arrival`), the leg measures ``log(actual_s / base_s)``,
``base_s`` being the base model's seconds for the same ride. A leg whose plan changed on the way
(it arrived somewhere else), shorter than :data:`MIN_LEG_S` by the model, or more than
:data:`MAX_RATIO` times off is no observation. Position pings on the way teach the same way
(:func:`observe_ping`): the stretch from the leg's checkpoint (where it left, or the last ping
learned from) to the ping, when the courier came nearer its destination; the ping becomes the
checkpoint, so the arrival then observes only the rest of the ride.

The factor of a cell and hour is ``exp`` of the shrunk mean log ratio (the median ride over
the model's): a cell with few legs leans on its hour, an hour with few on the city, and the
city on 1.0, each with ``travel_prior_legs`` pseudo-observations. :class:`LearnedTravel` wraps
the base model behind the same :class:`~dispatch.geo.TravelModel` protocol, multiplying its
seconds by the factor of the origin's cell (rounded up); where every factor is exactly 1.0
(nothing learned, learning off, or rides that always take the model's time, as in the
Grubhub replays) the base model itself is used, so decisions are the same to the second.

>>> LogRatios(0, 0.0).shrunk(prior=0.1, prior_n=20)
0.1
>>> round(LogRatios(20, 20 * 0.2).shrunk(prior=0.0, prior_n=20), 3)
0.1
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Final, NamedTuple

import h3
import numpy as np

from dispatch.errors import InvalidInput
from dispatch.geo import TravelModel
from dispatch.geo.distance import IntArray
from dispatch.lookups import Engine, courier_of
from dispatch.models import Assignment, Location, Route, StopKind

__all__ = [
    "CELL_RESOLUTION",
    "MAX_RATIO",
    "MIN_LEG_S",
    "LearnedTravel",
    "Leg",
    "LogRatios",
    "TravelFactors",
    "TravelMemo",
    "cell_of",
    "hour_of",
    "legs_of",
    "note_departure",
    "observe_arrival",
    "observe_ping",
    "ride_arrives",
    "ride_leaves",
    "rides_start",
    "travel_factors",
]

#: H3 resolution of the cells travel is learned for (res 7: ~1.2 km edges, ~5 km²).
CELL_RESOLUTION = 7
#: Legs the base model puts under this are not observed: whole-second rounding and the
#: hand-over at the door dominate them.
MIN_LEG_S = 60
#: A leg more than this many times longer (or shorter) than the model is a courier that
#: stopped on the way, or a plan that changed, not traffic: no observation.
MAX_RATIO = 3.0

_CITY = "travel:city"


def _hour_key(hour: int) -> str:
    return f"travel:h{hour}"


def _leg_key(courier_id: str) -> str:
    return f"leg:{courier_id}"


def hour_of(at: int) -> int:
    """The hour of day of ``at`` (seconds of the day or POSIX seconds, UTC)."""
    return (at // 3600) % 24


def cell_of(location: Location) -> str:
    """The learning cell of ``location``."""
    return str(h3.latlng_to_cell(location.lat, location.lng, CELL_RESOLUTION))


class LogRatios(NamedTuple):
    """Observed legs of a cell (or hour, or the city): their count and sum of log(actual / model)."""

    n: int
    total: float

    def shrunk(self, prior: float, prior_n: int) -> float:
        """The mean, with ``prior_n`` pseudo-observations of ``prior``."""
        return (self.total + prior_n * prior) / (self.n + prior_n) if self.n + prior_n else prior

    def plus(self, log_ratio: float) -> LogRatios:
        return LogRatios(self.n + 1, self.total + log_ratio)


def _ratios(raw: object) -> LogRatios:
    if not isinstance(raw, list) or len(raw) != 2:
        return LogRatios(0, 0.0)
    return LogRatios(int(raw[0]), float(raw[1]))


class _HourTable(NamedTuple):
    """What is stored for one hour of day: all its legs, and its legs per origin cell."""

    all: LogRatios
    cells: dict[str, LogRatios]

    @classmethod
    def parse(cls, raw: str | None) -> _HourTable:
        if not raw:
            return cls(LogRatios(0, 0.0), {})
        data = json.loads(raw)
        return cls(_ratios(data.get("all")), {c: _ratios(v) for c, v in data.get("cells", {}).items()})

    def dump(self) -> str:
        return json.dumps(
            {"all": list(self.all), "cells": {c: list(v) for c, v in sorted(self.cells.items())}},
            separators=(",", ":"),
        )


class TravelFactors(NamedTuple):
    """The learned factors of one hour: the hour's (for cells without legs) and each cell's."""

    hour: float
    cells: dict[str, float]

    @property
    def neutral(self) -> bool:
        """Every factor is exactly 1.0: the base model's times stand."""
        return self.hour == 1.0 and all(f == 1.0 for f in self.cells.values())

    def of(self, cell: str) -> float:
        return self.cells.get(cell, self.hour)


def _factors(city: LogRatios, table: _HourTable, prior_n: int) -> TravelFactors:
    city_log = city.shrunk(0.0, prior_n)
    hour_log = table.all.shrunk(city_log, prior_n)
    return TravelFactors(
        math.exp(hour_log),
        {cell: math.exp(r.shrunk(hour_log, prior_n)) for cell, r in table.cells.items()},
    )


def _read(ctx: Engine, hour: int) -> tuple[str | None, str | None]:
    raw = ctx.store.learned([_CITY, _hour_key(hour)])
    return raw.get(_CITY), raw.get(_hour_key(hour))


def _parse(raw_city: str | None, raw_hour: str | None, prior_n: int) -> TravelFactors:
    city = _ratios(json.loads(raw_city)) if raw_city else LogRatios(0, 0.0)
    return _factors(city, _HourTable.parse(raw_hour), prior_n)


def travel_factors(ctx: Engine, at: int) -> TravelFactors:
    """The learned factors for rides at ``at``'s hour of day (all 1.0 with learning off)."""
    if not ctx.config.learning:
        return TravelFactors(1.0, {})
    return _parse(*_read(ctx, hour_of(at)), ctx.config.travel_prior_legs)


class LearnedTravel:
    """A base travel model corrected by learned factors: the seconds of a ride are the base
    model's times the factor of the origin's cell, rounded up.

    ``cells`` memoizes the cell of each origin (it may be shared between instances).

    >>> from dispatch.geo import GreatCircleTravel
    >>> base = GreatCircleTravel(road_factor=1.3)
    >>> a, b = Location(0.0, 0.0), Location(0.01, 0.0)
    >>> travel = LearnedTravel(base, TravelFactors(1.5, {}))
    >>> base.travel_s(a, b, 5.0), travel.travel_s(a, b, 5.0)
    (290, 435)
    >>> travel.matrix_s([a, b], [a, b], 5.0).tolist()
    [[0, 435], [435, 0]]
    """

    __slots__ = ("_cells", "_least", "base", "factors")

    #: A ride's seconds are ``base``'s times :meth:`factor` of its origin, rounded up (1.0: the
    #: base seconds exactly); a courier index may apply the factors itself.
    factored_origin: Final = True

    def __init__(
        self, base: TravelModel, factors: TravelFactors, cells: dict[tuple[float, float], str] | None = None
    ) -> None:
        self.base = base
        self.factors = factors
        self._cells = {} if cells is None else cells
        self._least = min(factors.hour, *factors.cells.values()) if factors.cells else factors.hour

    def __repr__(self) -> str:
        f = self.factors
        return f"LearnedTravel({self.base!r}, hour factor {f.hour:.3f}, {len(f.cells)} cells)"

    def factor(self, origin: Location) -> float:
        """The factor of rides from ``origin``."""
        cells = self.factors.cells
        if not cells:
            return self.factors.hour
        key = (origin.lat, origin.lng)
        cell = self._cells.get(key)
        if cell is None:
            if len(self._cells) >= _CELL_MEMO:
                self._cells.clear()
            cell = self._cells[key] = cell_of(origin)
        return cells.get(cell, self.factors.hour)

    def travel_s(self, a: Location, b: Location, speed_mps: float) -> int:
        base_s = self.base.travel_s(a, b, speed_mps)
        f = self.factor(a)
        return base_s if f == 1.0 else math.ceil(base_s * f)

    def matrix_s(
        self, origins: Sequence[Location], destinations: Sequence[Location], speed_mps: float
    ) -> IntArray:
        matrix = self.base.matrix_s(origins, destinations, speed_mps)
        rows = np.array([self.factor(o) for o in origins], dtype=np.float64)
        if np.all(rows == 1.0):
            return matrix
        # the same IEEE product and ceiling as travel_s, entry by entry
        result: IntArray = np.ceil(matrix * rows[:, None]).astype(np.int64)
        return result

    def reach_m(self, budget_s: int, speed_mps: float) -> float:
        if self._least >= 1.0:
            return self.base.reach_m(budget_s, speed_mps)
        # ceil(base_s * f) <= budget only if base_s <= budget / f; the + 1 covers rounding
        return self.base.reach_m(math.floor(budget_s / self._least) + 1, speed_mps)


#: Origins whose cell a :class:`TravelMemo` remembers before it starts again.
_CELL_MEMO = 200_000


class TravelMemo:
    """One dispatcher's learned travel models, by hour: the stored factors are parsed again
    only when they changed, and origins' cells are remembered across calls."""

    __slots__ = ("_cells", "_hours")

    def __init__(self) -> None:
        self._cells: dict[tuple[float, float], str] = {}
        self._hours: dict[int, tuple[str | None, str | None, TravelModel]] = {}

    def model(self, ctx: Engine, base: TravelModel, at: int) -> TravelModel:
        """The travel model for rides at ``at``: ``base`` corrected by the learned factors of
        its hour, or ``base`` itself where they are all exactly 1.0 (learning off, nothing
        learned, or rides that always took the model's time)."""
        if not ctx.config.learning:
            return base
        hour = hour_of(at)
        raw_city, raw_hour = _read(ctx, hour)
        memo = self._hours.get(hour)
        if memo is not None and memo[0] == raw_city and memo[1] == raw_hour and _base_of(memo[2]) is base:
            return memo[2]
        factors = _parse(raw_city, raw_hour, ctx.config.travel_prior_legs)
        model = base if factors.neutral else LearnedTravel(base, factors, self._cells)
        self._hours[hour] = (raw_city, raw_hour, model)
        return model


def _base_of(model: TravelModel) -> TravelModel:
    return model.base if isinstance(model, LearnedTravel) else model


# -- observations ------------------------------------------------------------------------------


class Leg(NamedTuple):
    """A ride under way: from where and when the courier left (or its last checkpoint: the last
    position ping learned from, see :func:`observe_ping`), and where to."""

    origin: Location
    depart_at: int
    destination: Location

    def dump(self) -> str:
        o, d = self.origin, self.destination
        return json.dumps([o.lat, o.lng, o.x_m, o.y_m, self.depart_at, d.lat, d.lng, d.x_m, d.y_m])

    @classmethod
    def parse(cls, raw: str | None) -> Leg | None:
        if not raw:
            return None
        values = json.loads(raw)
        lat, lng, x_m, y_m, depart_at, dest_lat, dest_lng = values[:7]
        # (notes written before the destination's planar coordinates were kept have 7 values)
        dest_x, dest_y = values[7:9] if len(values) >= 9 else (None, None)
        return cls(
            Location(lat, lng, x_m=x_m, y_m=y_m),
            int(depart_at),
            Location(dest_lat, dest_lng, x_m=dest_x, y_m=dest_y),
        )


def legs_of(ctx: Engine, courier_ids: Sequence[str]) -> dict[str, Leg | None]:
    """The rides the couriers are on, as noted at their departure (``None``: none is), in one read."""
    raw = ctx.store.learned([_leg_key(cid) for cid in courier_ids])
    return {cid: Leg.parse(raw.get(_leg_key(cid))) for cid in courier_ids}


def note_departure(ctx: Engine, legs: dict[str, Leg | None]) -> None:
    """Note rides that start (``None``: the courier's ride, if any, is over without an
    observation), for :func:`observe_arrival` (nothing with learning off)."""
    if ctx.config.learning and legs:
        ctx.store.set_learned({_leg_key(cid): leg.dump() if leg else "" for cid, leg in legs.items()})


def _same_place(a: Location, b: Location) -> bool:
    return a.lat == b.lat and a.lng == b.lng


def _log_ratio(base_s: int, actual_s: int) -> float | None:
    """``log(actual_s / base_s)`` of a ride that is an observation: at least :data:`MIN_LEG_S`
    by the model, and at most :data:`MAX_RATIO` times off it (``None`` otherwise)."""
    if base_s < MIN_LEG_S or actual_s <= 0 or not 1 / MAX_RATIO <= actual_s / base_s <= MAX_RATIO:
        return None
    return math.log(actual_s / base_s)


def _learn(ctx: Engine, origin: Location, start_at: int, log_ratio: float) -> dict[str, str]:
    """The city's and the hour's tables with one more ride, from ``origin`` at ``start_at``."""
    hour = hour_of(start_at)
    raw_city, raw_hour = _read(ctx, hour)
    city = _ratios(json.loads(raw_city)) if raw_city else LogRatios(0, 0.0)
    table = _HourTable.parse(raw_hour)
    cell = cell_of(origin)
    cells = dict(table.cells)
    cells[cell] = cells.get(cell, LogRatios(0, 0.0)).plus(log_ratio)
    return {
        _CITY: json.dumps(list(city.plus(log_ratio))),
        _hour_key(hour): _HourTable(table.all.plus(log_ratio), cells).dump(),
    }


def _noted_ride(ctx: Engine, courier_id: str) -> tuple[str, Leg] | None:
    """The key and the ride noted for ``courier_id`` (``None``: none, or learning is off)."""
    if not ctx.config.learning:
        return None
    key = _leg_key(courier_id)
    leg = Leg.parse(ctx.store.learned([key]).get(key))
    return None if leg is None else (key, leg)


def observe_arrival(
    ctx: Engine, base: TravelModel, courier_id: str, stop: Location, speed_mps: float, now: int
) -> bool:
    """Learn from ``courier_id`` reporting at ``now`` its arrival at ``stop``: the ride noted at
    its departure (from its last checkpoint, when position pings taught the first part of it),
    against ``base``'s seconds for it. Returns whether it was an observation."""
    noted = _noted_ride(ctx, courier_id)
    if noted is None:
        return False
    key, leg = noted
    learned: dict[str, str] = {key: ""}  # the ride is over, observed or not
    log_ratio = (
        _log_ratio(base.travel_s(leg.origin, stop, speed_mps), now - leg.depart_at)
        if _same_place(leg.destination, stop)
        else None
    )
    if log_ratio is not None:
        learned.update(_learn(ctx, leg.origin, leg.depart_at, log_ratio))
    ctx.store.set_learned(learned)
    return log_ratio is not None


def observe_ping(
    ctx: Engine, base: TravelModel, courier_id: str, at: Location, speed_mps: float, now: int
) -> bool:
    """Learn from ``courier_id``'s position ping (``at``, at ``now``) on a noted ride: the part
    of it since its checkpoint (where and when it left, or the last ping learned from), against
    ``base``'s seconds for it, screened as :func:`observe_arrival` screens rides.

    Only a courier that came nearer its destination (by ``base``'s seconds) says anything about
    speed: one riding away from it or standing still teaches nothing and leaves the checkpoint.
    A ping learned from becomes the checkpoint, so the arrival observes only the rest of the
    ride. A point ``base`` cannot time (a ping without the planar coordinates of
    :class:`~dispatch.geo.PlanarTravel`) teaches nothing either. The hot path: one read of the
    ride's note, and reads and a write of the tables only for a ping learned from. Returns
    whether it was an observation.
    """
    noted = _noted_ride(ctx, courier_id)
    if noted is None:
        return False
    key, leg = noted
    try:
        log_ratio = _log_ratio(base.travel_s(leg.origin, at, speed_mps), now - leg.depart_at)
        nearer = log_ratio is not None and base.travel_s(at, leg.destination, speed_mps) < base.travel_s(
            leg.origin, leg.destination, speed_mps
        )
    except InvalidInput:
        return False
    if log_ratio is None or not nearer:
        return False
    learned = _learn(ctx, leg.origin, leg.depart_at, log_ratio)
    learned[key] = Leg(at, now, leg.destination).dump()
    ctx.store.set_learned(learned)
    return True


# -- the rides of the engine's events ----------------------------------------------------------


def ride_arrives(
    ctx: Engine, base: TravelModel, courier_id: str, old: Route, new: Route, speed_mps: float, now: int
) -> None:
    """``courier_id`` reported at ``now`` being at ``old``'s first stop (``new`` is its plan
    after): learn from the ride there; from a reposition stop it goes on at once, a new ride."""
    first = old.stops[0]
    observe_arrival(ctx, base, courier_id, first.location, speed_mps, now)
    if first.kind is StopKind.REPOSITION and new.stops:
        note_departure(ctx, {courier_id: Leg(first.location, now, new.stops[0].location)})


def ride_leaves(ctx: Engine, courier_id: str, old: Route | None, new: Route, leaves_at: int) -> None:
    """``courier_id`` leaves ``old``'s first stop at ``leaves_at`` for ``new``'s first stop
    (with none, the ride it was on is over); nothing when ``old`` had no stop."""
    if old is None or not old.stops:
        return
    leg = Leg(old.stops[0].location, leaves_at, new.stops[0].location) if new.stops else None
    note_departure(ctx, {courier_id: leg})


def rides_start(ctx: Engine, plans: Iterable[Assignment], now: int) -> None:
    """Note the rides of couriers a tick took from waiting idle (their first stop is new, in
    ``plans``): from where they waited, once free (as the plan starts them)."""
    if not ctx.config.learning:
        return
    fresh = {}
    for a in plans:
        stops = a.route.stops
        if stops and a.route.arrived_at is None and set(stops[0].order_ids) <= set(a.order_ids):
            fresh[a.courier_id] = stops[0].location
    if not fresh:
        return
    legs: dict[str, Leg | None] = {}
    noted_legs = legs_of(ctx, list(fresh))
    for courier_id, destination in fresh.items():
        noted = noted_legs[courier_id]
        if noted is not None and _same_place(noted.destination, destination):
            continue  # on its way there already (to wait where its new work starts)
        courier = courier_of(ctx, courier_id)
        legs[courier_id] = Leg(courier.location, max(now, courier.available_at), destination)
    note_departure(ctx, legs)
