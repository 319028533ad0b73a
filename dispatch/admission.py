"""Admission and quotes: the delivery area, the promise window, and when the nearest supply
could collect the food."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple

import h3
import numpy as np

from dispatch import isolation, ranges
from dispatch.errors import (
    DuplicateId,
    InvalidInput,
    InvalidWindow,
    NoCourierCapacity,
    OutsideDeliveryArea,
    WindowInfeasible,
)
from dispatch.estimates import expected_ready_at, remember_stated
from dispatch.geo import AreaIndex, disk_k_for, haversine_matrix_m, location_to_cell, seconds_from, seconds_to
from dispatch.lookups import Engine, check_now, merchant_of
from dispatch.models import (
    Courier,
    CourierStatus,
    EventKind,
    Location,
    Merchant,
    Order,
    OrderDetails,
    OrderStatus,
    StopKind,
    Window,
)
from dispatch.store import Change, NewEvent
from dispatch.timing import pickup_at, pickup_to_dropoff_s

__all__ = [
    "Admitted",
    "AreaCache",
    "CountedEta",
    "Quote",
    "Supply",
    "admit",
    "after_pickup_s",
    "check_supply",
    "counted_eta",
    "place_order",
    "placed_eta",
    "quote",
    "supply_near",
]

#: A quote reads the plans of at most this many busy couriers near the merchant, to find one
#: on its way to wait there (a read per quote, so it stays small).
QUOTE_BUSY_PLANS = 16


@dataclass(frozen=True, slots=True)
class Quote:
    """What a delivery app is told before it places an order."""

    merchant_id: str
    dropoff: Location
    distance_m: float
    ready_at: int
    window: Window
    scheduled: bool
    pickup_eta: int
    dropoff_eta: int
    valid_until: int
    #: no courier could deliver the ASAP promise: ``window`` is the earliest feasible scheduled
    #: window, offered instead (``offer_schedule_when_full``)
    offered_instead: bool = False


@dataclass(frozen=True, slots=True)
class Admitted:
    """An order that passed admission: its promise and when its food will be ready."""

    merchant: Merchant
    distance_m: float
    ready_at: int
    window: Window
    scheduled: bool
    #: from the food being ready to it being in the customer's hands, at the earliest
    after_ready_s: int
    #: when the food is expected to be ready: ``ready_at`` (as stated) plus the merchant's
    #: learned delay (see :mod:`dispatch.estimates`)
    expected_ready_at: int


def _check_ahead(ahead_s: int, field: str) -> None:
    if not ranges.SCHEDULE_AHEAD_S.contains(ahead_s):
        days = ranges.SCHEDULE_AHEAD_S.high / 86400
        error = InvalidWindow if field == "window" else InvalidInput
        raise error(
            f"{field} is {ahead_s / 86400:.1f} days ahead; at most {days:.0f} days ahead are taken "
            f"(in {ranges.SCHEDULE_AHEAD_S.describe()} from now)",
            field=field,
        )


class AreaCache:
    """Each merchant's :class:`AreaIndex`, built once per version of the merchant."""

    def __init__(self) -> None:
        self._areas: dict[str, tuple[Merchant, AreaIndex]] = {}

    def get(self, merchant: Merchant, resolution: int) -> AreaIndex:
        cached = self._areas.get(merchant.id)
        # polygons compare by value: a shared store hands out a fresh copy on every read
        if cached is None or cached[0] != merchant or cached[0].area.polygon != merchant.area.polygon:
            cached = (merchant, AreaIndex(merchant.location, merchant.area, resolution))
            self._areas[merchant.id] = cached
        return cached[1]


def quote(
    ctx: Engine,
    areas: AreaCache,
    merchant_id: str,
    dropoff: Location,
    now: int,
    *,
    window: Window | None = None,
    ready_at: int | None = None,
) -> Quote:
    """Whether an order could be accepted now, and its promise and ETAs if so.

    Raises :class:`OutsideDeliveryArea` (with the distance and radius) or
    :class:`WindowInfeasible` (with the minutes it would be late) when it could not.
    """
    a = admit(ctx, areas, merchant_id, dropoff, now, window, ready_at)
    cfg = ctx.config
    if supply_counts(ctx, a):
        try:
            promised = check_supply(ctx, a, dropoff, now, now + 1, "")
        except NoCourierCapacity as exc:
            earliest = exc.details.get("earliest_dropoff")
            offer = a.merchant.offer_schedule_when_full
            if not (cfg.offer_schedule_when_full if offer is None else offer) or earliest is None:
                raise
            return _offer_schedule(ctx, areas, a, dropoff, now, earliest)
    else:
        supply = supply_near(ctx, a.merchant, now)
        promised = counted_eta(ctx, supply, 0, a.merchant, dropoff, a.expected_ready_at, a.window.start, now)
    return Quote(
        merchant_id=a.merchant.id,
        dropoff=dropoff,
        distance_m=a.distance_m,
        ready_at=a.ready_at,
        window=a.window,
        scheduled=a.scheduled,
        pickup_eta=promised.pickup_at,
        dropoff_eta=promised.dropoff_at,
        valid_until=now + cfg.quote_valid_s,
    )


def _offer_schedule(
    ctx: Engine, areas: AreaCache, a: Admitted, dropoff: Location, now: int, earliest: int
) -> Quote:
    """The quote of the earliest feasible scheduled window, offered instead of an ASAP promise."""
    cfg = ctx.config
    offered = Window(earliest, earliest + cfg.max_window_s)
    s = admit(ctx, areas, a.merchant.id, dropoff, now, offered, None)
    return Quote(
        merchant_id=s.merchant.id,
        dropoff=dropoff,
        distance_m=s.distance_m,
        ready_at=s.ready_at,
        window=s.window,
        scheduled=True,
        pickup_eta=earliest - s.after_ready_s,
        dropoff_eta=earliest,
        valid_until=now + cfg.quote_valid_s,
        offered_instead=True,
    )


def supply_counts(ctx: Engine, a: Admitted) -> bool:
    """Whether admission checks the couriers for this order: ASAP orders, when promises are
    refused at all (a replay of accepted orders does not) and ``supply_admission`` is on."""
    cfg = ctx.config
    return not a.scheduled and cfg.supply_admission and cfg.refuse_infeasible_promises


def check_supply(
    ctx: Engine,
    a: Admitted,
    dropoff: Location,
    now: int,
    placed_at: int,
    order_id: str,
    supply: Supply | None = None,
) -> CountedEta:
    """The ETA of the courier counted on for this order, behind the orders waiting before
    ``(placed_at, order_id)`` in ``supply`` (searched now if not given; see
    :func:`counted_eta`); raises :class:`NoCourierCapacity` when it cannot deliver in time."""
    cfg = ctx.config
    if supply is None:
        supply = supply_near(ctx, a.merchant, now)
    ahead = supply.ahead_of(placed_at, order_id, a.merchant.id, cfg.max_bundle_size)
    if supply.arrival(ahead) is None:
        raise NoCourierCapacity(
            f"no courier is within {cfg.max_pickup_travel_s / 60:.0f} min of merchant "
            f"{a.merchant.id!r} for this order",
            earliest_dropoff=None,
            late_s=None,
            window_end=a.window.end,
        )
    promised = counted_eta(ctx, supply, ahead, a.merchant, dropoff, a.expected_ready_at, a.window.start, now)
    earliest = promised.dropoff_at
    # the margin counts as part of the drop-off (rounded up): what is promised is kept with it
    earliest += math.ceil(cfg.promise_margin_share * max(0, earliest - now))
    if earliest > a.window.end:
        margin = f" (with a {cfg.promise_margin_share:.0%} margin)" if cfg.promise_margin_share else ""
        raise NoCourierCapacity(
            f"no courier can deliver within the promise: the earliest feasible drop-off{margin} is "
            f"{(earliest - a.window.end) / 60:.1f} min after the deadline",
            earliest_dropoff=earliest,
            late_s=earliest - a.window.end,
            window_end=a.window.end,
        )
    return promised


def admit(
    ctx: Engine,
    areas: AreaCache,
    merchant_id: str,
    dropoff: Location,
    now: int,
    window: Window | None,
    ready_at: int | None,
) -> Admitted:
    """The admission rules shared by quotes and orders; no ETA, no supply search."""
    check_now(now)
    merchant = merchant_of(ctx, merchant_id)
    if not isinstance(dropoff, Location):
        raise InvalidInput("dropoff must be a Location", field="dropoff")
    area = areas.get(merchant, ctx.config.area_resolution)
    distance_m = area.distance_m(dropoff)
    if not area.contains(dropoff):
        radius = merchant.area.radius_m
        limit = f"its {radius:.0f} m delivery radius" if radius is not None else "its delivery zone"
        raise OutsideDeliveryArea(
            f"drop-off is {distance_m:.0f} m from merchant {merchant.id!r}, outside {limit}",
            distance_m=round(distance_m, 1),
            radius_m=radius,
        )
    cfg = ctx.config
    # the food is in the customer's hands this long after it is ready, at the earliest
    after_ready_s = after_pickup_s(ctx, merchant, dropoff)
    if window is None:
        promise = merchant.promise_s or cfg.promise_s
        window = Window(now, now + promise)
        scheduled = False
        ready = now + merchant.prep_s if ready_at is None else ready_at
    else:
        if not isinstance(window, Window):
            raise InvalidWindow("window must be a Window", field="window")
        if window.start < now:
            raise InvalidWindow(
                f"scheduled window starts at {window.start} s, before now ({now} s)", field="window"
            )
        if window.length_s > cfg.max_window_s:
            raise InvalidWindow(
                f"scheduled window is {window.length_s / 60:.1f} min long; the longest allowed is "
                f"{cfg.max_window_s / 60:.0f} min",
                field="window",
            )
        scheduled = True
        ready = max(now + merchant.prep_s, window.start - after_ready_s) if ready_at is None else ready_at
    if not ranges.is_whole(ready) or ready < now:
        raise InvalidInput(f"ready_at must be whole seconds, not before now ({now} s)", field="ready_at")
    _check_ahead(window.start - now, "window")
    _check_ahead(ready - now, "ready_at")
    expected = expected_ready_at(ctx, merchant, ready, now)
    earliest = expected + after_ready_s
    if earliest > window.end and cfg.refuse_infeasible_promises:
        late_min = (earliest - window.end) / 60
        raise WindowInfeasible(
            f"the earliest possible drop-off is {late_min:.1f} min after the promised "
            f"{'window' if scheduled else 'deadline'} ends",
            late_s=earliest - window.end,
            earliest_dropoff=earliest,
            window_end=window.end,
        )
    return Admitted(merchant, distance_m, ready, window, scheduled, after_ready_s, expected)


def place_order(
    ctx: Engine,
    areas: AreaCache,
    order_id: str,
    merchant_id: str,
    dropoff: Location,
    now: int,
    *,
    window: Window | None = None,
    ready_at: int | None = None,
    details: OrderDetails | None = None,
) -> tuple[Order, Supply | None]:
    """Accept an order (same rules as :meth:`quote`) and record it as placed; with the supply
    admission counted it on (``None`` where it counted none), which is the placed order's
    :func:`~dispatch.etas.eta` until anything else happens."""
    admitted = admit(ctx, areas, merchant_id, dropoff, now, window, ready_at)
    extra = details or OrderDetails()
    extra.check(merchant_of(ctx, merchant_id))
    order = Order(
        id=order_id,
        merchant_id=merchant_id,
        dropoff=dropoff,
        placed_at=now,
        ready_at=admitted.expected_ready_at,
        window=admitted.window,
        scheduled=admitted.scheduled,
        pickup_contact=extra.pickup_contact,
        dropoff_contact=extra.dropoff_contact,
        contactless=extra.contactless,
        delivery_pin=extra.delivery_pin,
    )
    if ctx.store.get_order(order_id) is not None:
        raise DuplicateId(f"order {order_id!r} already exists", id=order_id)
    supply = None
    if supply_counts(ctx, admitted):
        supply = supply_near(ctx, admitted.merchant, now)
        check_supply(ctx, admitted, dropoff, now, now, order_id, supply)
    ctx.store.apply(
        Change(
            orders=[order],
            events=[
                NewEvent(
                    EventKind.ORDER_PLACED,
                    now,
                    order_id=order.id,
                    merchant_id=merchant_id,
                    data={"ready_at": order.ready_at, "deadline": order.window.end, "status": "created"},
                )
            ],
        )
    )
    if order.ready_at != admitted.ready_at:
        remember_stated(ctx, order.id, admitted.ready_at)
    return order, supply


def after_pickup_s(ctx: Engine, merchant: Merchant, dropoff: Location, speed_mps: float | None = None) -> int:
    """From the pickup hand-over to the drop-off hand-over, riding straight there at
    ``speed_mps`` (``reference_speed_mps`` when not given: the direct-ride rule of admission)."""
    cfg = ctx.config
    speed = cfg.reference_speed_mps if speed_mps is None else speed_mps
    ride_s = ctx.travel.travel_s(merchant.location, dropoff, speed)
    return pickup_to_dropoff_s(ride_s, cfg.pickup_service_s, cfg.dropoff_service_s)


class CountedEta(NamedTuple):
    """The times of the courier counted on for an order: when it reaches the merchant, hands
    over the food there and at the customer."""

    arrival_at: int
    pickup_at: int
    dropoff_at: int


def counted_eta(
    ctx: Engine,
    supply: Supply,
    ahead: int,
    merchant: Merchant,
    dropoff: Location,
    ready_at: int,
    window_start: int,
    now: int,
) -> CountedEta:
    """The one ETA of an order waiting for a courier (admission, quotes, placed orders' ETAs):
    the ``ahead``-th courier of ``supply`` collects the food (ready at ``ready_at``) and rides to
    the customer at its own speed, by the engine's travel model; with no courier left in reach,
    one is assumed ``free_horizon_s`` from now, riding at ``reference_speed_mps``."""
    cfg = ctx.config
    counted = supply.counted(ahead)
    arrival, speed = (now + cfg.free_horizon_s, None) if counted is None else counted
    pickup = pickup_at(arrival, ready_at, cfg.pickup_service_s)
    after_s = after_pickup_s(ctx, merchant, dropoff, speed)
    return CountedEta(arrival, pickup, max(pickup + after_s, window_start))


class Supply(NamedTuple):
    """Couriers near a merchant and the orders waiting for them, for admission and ETAs.

    ``arrivals``: when each courier in reach could be at the merchant (sorted; of couriers
    arriving at the same second, the faster first): an idle one after its ride there, a busy one
    once its plan is done (or, repositioning, once it reaches its stop) and it has ridden over.
    ``speeds``: each one's speed (m/s), in the same order. ``waiting``: the orders placed and
    not yet assigned whose merchant is in reach, oldest first, with their merchant ids.
    ``takes``: for each waiting order, the courier (index into ``arrivals``) it is counted on,
    ``-1`` for none of them (none left, or a courier beyond the search serves it; see
    :func:`_counted_on`).
    """

    arrivals: tuple[int, ...]
    speeds: tuple[float, ...]
    waiting: tuple[tuple[int, str, str], ...]
    takes: tuple[int, ...]

    def ahead_of(self, placed_at: int, order_id: str, merchant_id: str, max_bundle_size: int) -> int:
        """Which courier (index into ``arrivals``) an order of ``merchant_id`` placed at
        ``(placed_at, order_id)`` waits for: the orders placed before it have taken theirs
        (``takes``; orders of one merchant share a courier, ``max_bundle_size`` at most), and it
        joins the last courier of its own merchant's orders while that has room, or else takes
        the first courier to arrive that none of them took."""
        taken: set[int] = set()
        own = 0
        last_own = -1
        for (p_at, oid, mid), took in zip(self.waiting, self.takes, strict=True):
            if (p_at, oid) >= (placed_at, order_id):
                break
            taken.add(took)
            if mid == merchant_id:
                own += 1
                last_own = took
        if own % max_bundle_size != 0:
            return len(self.arrivals) if last_own < 0 else last_own
        return next((i for i in range(len(self.arrivals)) if i not in taken), len(self.arrivals))

    def arrival(self, ahead: int) -> int | None:
        """When courier ``ahead`` (see :meth:`ahead_of`) could be at the merchant; ``None``
        past the last one."""
        return self.arrivals[ahead] if ahead < len(self.arrivals) else None

    def counted(self, ahead: int) -> tuple[int, float] | None:
        """That courier's arrival and speed (m/s)."""
        return (self.arrivals[ahead], self.speeds[ahead]) if ahead < len(self.arrivals) else None


def supply_near(ctx: Engine, merchant: Merchant, now: int) -> Supply:
    """The couriers that could reach ``merchant`` and the orders waiting near it (see :class:`Supply`).

    Only the plans of the ``supply_plans_read`` busy couriers nearest now are read, so a quote
    stays a few reads however many couriers are around.
    """
    cfg = ctx.config
    cell = location_to_cell(merchant.location, cfg.h3_resolution)
    reach = ctx.travel.reach_m(cfg.max_pickup_travel_s, cfg.reference_speed_mps)
    rings = _rings(cell, reach)
    # nearest rings first, the disk half as wide again each time, until enough couriers are found
    on_shift: list[Courier] = []
    done = 0
    while done < len(rings):
        upto = len(rings) if cfg.supply_couriers == 0 else min(len(rings), max(3, done + done // 2))
        found = ctx.store.couriers_in_cells([c for ring in rings[done:upto] for c in ring])
        on_shift += [c for c in found if c.shift_end > now]
        done = upto
        if 0 < cfg.supply_couriers <= len(on_shift):
            break
    near = _near(cell, reach, done)
    speed = np.fromiter((c.speed_mps for c in on_shift), dtype=np.float64, count=len(on_shift))
    times = [c.available_at for c in on_shift]
    if on_shift and not (
        np.all((speed >= ranges.SPEED_MPS.low) & (speed <= ranges.SPEED_MPS.high))
        and ranges.TIMESTAMP.low <= min(times)
        and max(times) <= ranges.TIMESTAMP.high
    ):
        # a record out of its ranges (stored before them) is left out, as a tick leaves it out
        on_shift = [c for c in on_shift if isolation.courier_problem(c) is None]
        speed = np.fromiter((c.speed_mps for c in on_shift), dtype=np.float64, count=len(on_shift))
        times = [c.available_at for c in on_shift]
    rides = seconds_to(ctx.travel, [c.location for c in on_shift], speed.tolist(), merchant.location)
    ride = np.array(rides, dtype=np.int64)
    idle = np.fromiter((c.status is CourierStatus.IDLE for c in on_shift), dtype=bool, count=len(on_shift))
    available = np.array(times, dtype=np.int64)
    ready = np.flatnonzero(idle & (ride <= cfg.max_pickup_travel_s))
    at_merchant = np.maximum(now, available[ready]) + ride[ready]
    wanted = cfg.supply_couriers
    if 0 < wanted < ready.size:
        # the last ring found more than enough: the first to arrive (all those tied with the
        # wanted-th; arrival order is decided below, the same for any subset)
        keep = at_merchant <= np.partition(at_merchant, wanted - 1)[wanted - 1]
        ready, at_merchant = ready[keep], at_merchant[keep]
    starts: list[int] = np.maximum(now, available[ready]).tolist()
    places: list[Location] = [on_shift[i].location for i in ready.tolist()]
    arrivals: list[int] = at_merchant.tolist()
    speeds: list[float] = speed[ready].tolist()
    # the busy couriers nearest now, by (ride, id): all those within the plans-th shortest ride
    busy = np.flatnonzero(~idle)
    plans = cfg.supply_plans_read
    if 0 < plans < busy.size:
        busy = busy[ride[busy] <= np.partition(ride[busy], plans - 1)[plans - 1]]
    ranked = sorted((rides[i], on_shift[i].id, i) for i in busy.tolist())
    nearest = [on_shift[i] for _, _, i in ranked[:plans]]
    routes = ctx.store.routes([c.id for c in nearest]) if nearest else {}
    latest = now + cfg.free_horizon_s + cfg.max_pickup_travel_s
    ends: list[tuple[int, Location, float]] = []
    for courier in nearest:
        route = routes.get(courier.id)
        if route is None or not route.stops:
            continue
        # A courier on its way to wait at a merchant is as good as idle there once it arrives;
        # any other is free where its plan ends.
        last = route.stops[-1]
        free_at = last.arrive_at if last.kind is StopKind.REPOSITION else last.depart_at
        ends.append((max(now, free_at), last.location, courier.speed_mps))
    rides = seconds_to(ctx.travel, [e[1] for e in ends], [e[2] for e in ends], merchant.location)
    for (free_at, place, speed_mps), t in zip(ends, rides, strict=True):
        if free_at + t <= latest:
            starts.append(free_at)
            places.append(place)
            arrivals.append(free_at + t)
            speeds.append(speed_mps)
    # the orders placed and not assigned, but a later scheduled one: it does not compete for
    # today's couriers
    horizon = now + cfg.free_horizon_s
    placed = ctx.store.orders_with_status(OrderStatus.PLACED)
    others = {o.merchant_id for o in placed}
    others.discard(merchant.id)
    located = {merchant.id: merchant.location}
    if others:
        # of the other merchants with orders placed, those in the disk
        located |= {
            m.id: m.location
            for m in ctx.store.merchants()
            if m.id in others and location_to_cell(m.location, cfg.h3_resolution) in near
        }
    waiting = sorted(
        (o.placed_at, o.id, o.merchant_id)
        for o in placed
        if o.merchant_id in located and not (o.scheduled and o.ready_at > horizon)
    )
    order = np.lexsort((-np.array(speeds, dtype=np.float64), np.array(arrivals, dtype=np.int64)))
    sorted_arrivals = np.array(arrivals, dtype=np.int64)[order]
    sorted_speeds = np.array(speeds, dtype=np.float64)[order]
    takes = _counted_on(
        ctx,
        waiting,
        located,
        merchant.id,
        _covered_m(cell, reach, done),
        sorted_arrivals,
        np.array(starts, dtype=np.int64)[order],
        [places[i] for i in order.tolist()],
        sorted_speeds.tolist(),
    )
    return Supply(tuple(sorted_arrivals.tolist()), tuple(sorted_speeds.tolist()), tuple(waiting), takes)


def _counted_on(
    ctx: Engine,
    waiting: list[tuple[int, str, str]],
    located: dict[str, Location],
    merchant_id: str,
    covered_m: float,
    arrivals: np.ndarray,
    starts: np.ndarray,
    places: list[Location],
    speeds: list[float],
) -> tuple[int, ...]:
    """The courier each waiting order is counted on, oldest order first: it joins the last
    courier of its own merchant's orders while that has room (``max_bundle_size``), or else
    takes the courier left that could be at *its* merchant first (an order across town takes a
    courier near it, not the one nearest ``merchant_id``); ``-1`` when none is left.

    The couriers known are those found within ``covered_m`` of ``merchant_id``: another
    merchant's order takes one of them only if it is nearer that merchant than any courier
    beyond could be (within ``covered_m`` less the two merchants' distance); if none is, a
    courier not seen here serves it (``-1``: it takes none of these).

    ``arrivals``: each courier's arrival at ``merchant_id``; ``starts`` and ``places``: when and
    where it is free to ride (now where it is, or where and when its plan ends)."""
    if not arrivals.size:
        return (-1,) * len(waiting)
    size = ctx.config.max_bundle_size
    free = np.ones(arrivals.size, dtype=bool)
    never = np.iinfo(np.int64).max
    others = list(dict.fromkeys(mid for _, _, mid in waiting if mid != merchant_id))
    at: dict[str, np.ndarray] = {merchant_id: arrivals}
    reachable = {merchant_id}  # the merchants some courier here may serve
    if others:
        home = located[merchant_id]
        lats = np.array([located[mid].lat for mid in others], dtype=np.float64)
        lngs = np.array([located[mid].lng for mid in others], dtype=np.float64)
        gap_m = haversine_matrix_m([home.lat], [home.lng], lats, lngs)[0]
        # a merchant at covered_m or farther: any courier beyond could be nearer it than all
        # of these (none of them may serve it; the rule below would say so for each)
        near_enough = gap_m <= covered_m
        others = [mid for mid, ok in zip(others, near_enough.tolist(), strict=True) if ok]
        gap_m, lats, lngs = gap_m[near_enough], lats[near_enough], lngs[near_enough]
    if others:
        # every courier to every other merchant with orders waiting, in one numpy pass,
        # never where a courier not seen here could be nearer that merchant
        targets = [located[mid] for mid in others]
        apart_m = haversine_matrix_m([p.lat for p in places], [p.lng for p in places], lats, lngs)
        there = starts[:, None] + seconds_from(ctx.travel, places, speeds, targets, apart_m)
        there = np.where(apart_m <= covered_m - gap_m[None, :], there, never)
        at |= {mid: there[:, j] for j, mid in enumerate(others)}
        served = (there != never).any(axis=0).tolist()
        reachable.update(mid for mid, some in zip(others, served, strict=True) if some)
    count: dict[str, int] = {}
    last: dict[str, int] = {}
    takes: list[int] = []
    left = arrivals.size
    for _, _, mid in waiting:
        k = count.get(mid, 0)
        count[mid] = k + 1
        if k % size != 0:
            takes.append(last[mid])
            continue
        i = -1
        # (once every courier is taken, or where none of them may serve, it takes none)
        if left and mid in reachable:
            masked = np.where(free, at[mid], never)
            i = int(np.argmin(masked))
            if masked[i] == never:
                i = -1
            else:
                free[i] = False
                left -= 1
        last[mid] = i
        takes.append(i)
    return tuple(takes)


#: The H3 rings of supply searches, per (merchant cell, reach).
_DISKS: Final = 4096


@lru_cache(maxsize=_DISKS)
def _rings(cell: str, reach_m: float) -> tuple[tuple[str, ...], ...]:
    """The cells of ``h3.grid_disk`` covering every point within ``reach_m`` of the cell, by
    ring (grid distance 0, 1, ...); a merchant's cell and the reach do not change."""
    k = disk_k_for(cell, reach_m)
    by_ring: list[list[str]] = [[] for _ in range(k + 1)]
    for other in h3.grid_disk(cell, k):
        by_ring[h3.grid_distance(cell, other)].append(other)
    return tuple(tuple(sorted(ring)) for ring in by_ring)


@lru_cache(maxsize=_DISKS)
def _covered_m(cell: str, reach_m: float, rings: int) -> float:
    """How far from the cell every point is sure to lie in its first ``rings`` rings of
    :func:`_rings` (``disk_k_for``'s rule run backwards)."""
    low, high = 0.0, 2.0 * reach_m + 10_000.0
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if disk_k_for(cell, mid) <= rings - 1 else (low, mid)
    return low


@lru_cache(maxsize=_DISKS)
def _near(cell: str, reach_m: float, rings: int) -> frozenset[str]:
    """The cells of the first ``rings`` rings of :func:`_rings`, as a set."""
    return frozenset(c for ring in _rings(cell, reach_m)[:rings] for c in ring)


def placed_eta(ctx: Engine, supply: Supply, order: Order, merchant: Merchant, now: int) -> CountedEta:
    """The ETA of ``order`` (placed, waiting) from ``supply`` near its merchant: the courier
    left after the orders placed before it (see :func:`counted_eta`), as admission counted it."""
    ahead = supply.ahead_of(order.placed_at, order.id, order.merchant_id, ctx.config.max_bundle_size)
    return counted_eta(ctx, supply, ahead, merchant, order.dropoff, order.ready_at, order.window.start, now)
