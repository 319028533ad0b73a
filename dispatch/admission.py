"""Admission and quotes: the delivery area, the promise window, and when the nearest supply
could collect the food."""

from __future__ import annotations

from dataclasses import dataclass

import h3

from dispatch import ranges
from dispatch.errors import DuplicateId, InvalidInput, InvalidWindow, OutsideDeliveryArea, WindowInfeasible
from dispatch.geo import AreaIndex, disk_k_for, location_to_cell
from dispatch.lookups import Engine, check_now, merchant_of
from dispatch.models import (
    CourierStatus,
    EventKind,
    Location,
    Merchant,
    Order,
    OrderDetails,
    StopKind,
    Window,
)
from dispatch.store import Change, NewEvent
from dispatch.timing import pickup_at, pickup_to_dropoff_s

__all__ = [
    "Admitted",
    "AreaCache",
    "Quote",
    "admit",
    "after_pickup_s",
    "place_order",
    "quote",
    "supply_arrival",
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
    pickup_eta = pickup_at(supply_arrival(ctx, a.merchant, now), a.ready_at, cfg.pickup_service_s)
    return Quote(
        merchant_id=a.merchant.id,
        dropoff=dropoff,
        distance_m=a.distance_m,
        ready_at=a.ready_at,
        window=a.window,
        scheduled=a.scheduled,
        pickup_eta=pickup_eta,
        dropoff_eta=max(pickup_eta + a.after_ready_s, a.window.start),
        valid_until=now + cfg.quote_valid_s,
    )


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
    if isinstance(ready, bool) or not isinstance(ready, int) or ready < now:
        raise InvalidInput(f"ready_at must be whole seconds, not before now ({now} s)", field="ready_at")
    _check_ahead(window.start - now, "window")
    _check_ahead(ready - now, "ready_at")
    earliest = ready + after_ready_s
    if earliest > window.end and cfg.refuse_infeasible_promises:
        late_min = (earliest - window.end) / 60
        raise WindowInfeasible(
            f"the earliest possible drop-off is {late_min:.1f} min after the promised "
            f"{'window' if scheduled else 'deadline'} ends",
            late_s=earliest - window.end,
            earliest_dropoff=earliest,
            window_end=window.end,
        )
    return Admitted(merchant, distance_m, ready, window, scheduled, after_ready_s)


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
) -> Order:
    """Accept an order (same rules as :meth:`quote`) and record it as placed."""
    admitted = admit(ctx, areas, merchant_id, dropoff, now, window, ready_at)
    extra = details or OrderDetails()
    extra.check(merchant_of(ctx, merchant_id))
    order = Order(
        id=order_id,
        merchant_id=merchant_id,
        dropoff=dropoff,
        placed_at=now,
        ready_at=admitted.ready_at,
        window=admitted.window,
        scheduled=admitted.scheduled,
        pickup_contact=extra.pickup_contact,
        dropoff_contact=extra.dropoff_contact,
        contactless=extra.contactless,
        delivery_pin=extra.delivery_pin,
    )
    if ctx.store.get_order(order_id) is not None:
        raise DuplicateId(f"order {order_id!r} already exists", id=order_id)
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
    return order


def after_pickup_s(ctx: Engine, merchant: Merchant, dropoff: Location) -> int:
    """From the pickup hand-over to the drop-off hand-over, riding straight there."""
    cfg = ctx.config
    ride_s = ctx.travel.travel_s(merchant.location, dropoff, cfg.reference_speed_mps)
    return pickup_to_dropoff_s(ride_s, cfg.pickup_service_s, cfg.dropoff_service_s)


def supply_arrival(ctx: Engine, merchant: Merchant, now: int) -> int:
    """When the nearest idle (or repositioning) courier could be at the merchant (for quotes)."""
    cfg = ctx.config
    cell = location_to_cell(merchant.location, cfg.h3_resolution)
    reach = ctx.travel.reach_m(cfg.max_pickup_travel_s, cfg.reference_speed_mps)
    cells = h3.grid_disk(cell, disk_k_for(cell, reach))
    best = None
    busy = []
    for courier in ctx.store.couriers_in_cells(cells):
        if courier.shift_end <= now:
            continue
        t = ctx.travel.travel_s(courier.location, merchant.location, courier.speed_mps)
        if courier.status is not CourierStatus.IDLE:
            busy.append((t, courier.id, courier))
        elif t <= cfg.max_pickup_travel_s and (best is None or t < best):
            best = t
    # A courier on its way to wait at a merchant is as good as idle there once it arrives:
    # work given on the way starts where the move ends. Its plan says so; only the plans of
    # the few busy couriers nearest now, and nearer than the best idle one, are read.
    limit = cfg.max_pickup_travel_s if best is None else best
    moving = [c for t, _, c in sorted(busy)[:QUOTE_BUSY_PLANS] if t < limit]
    routes = ctx.store.routes([c.id for c in moving]) if moving else {}
    for courier in moving:
        route = routes.get(courier.id)
        if route is None or len(route.stops) != 1 or route.stops[0].kind is not StopKind.REPOSITION:
            continue
        stop = route.stops[0]
        t = max(0, stop.arrive_at - now) + ctx.travel.travel_s(
            stop.location, merchant.location, courier.speed_mps
        )
        if t <= cfg.max_pickup_travel_s and (best is None or t < best):
            best = t
    # With nobody idle nearby, expect a courier to free up within the horizon.
    return now + (best if best is not None else cfg.free_horizon_s)
