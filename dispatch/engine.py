"""The Dispatcher: the one object every caller drives.

It owns the rules (admission, the order and courier state machines, when a decision is
written) and delegates the math to :mod:`dispatch.geo`, :mod:`dispatch.matching` and
:mod:`dispatch.routing`. It never reads the wall clock: every call is given ``now``
(integer seconds). Every call either writes all of its changes, through one
:meth:`Store.apply`, or raises a :class:`~dispatch.errors.DispatchError` having written
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import h3

from dispatch import ranges
from dispatch.config import DispatchConfig
from dispatch.declines import Declines
from dispatch.errors import (
    Conflict,
    CourierOffShift,
    DuplicateId,
    IllegalTransition,
    InvalidInput,
    InvalidWindow,
    OutsideDeliveryArea,
    UnknownCourier,
    UnknownMerchant,
    UnknownOrder,
    WindowInfeasible,
)
from dispatch.geo import AreaIndex, GreatCircleTravel, TravelModel, disk_k_for, location_to_cell
from dispatch.matching import DispatchPolicy, OptimizingPolicy
from dispatch.models import (
    Courier,
    CourierStatus,
    Location,
    Merchant,
    Order,
    OrderStatus,
    Route,
    Stop,
    StopKind,
    Window,
)
from dispatch.planning import retime_stops
from dispatch.store import Change, MemoryStore, NewEvent, Store, next_version
from dispatch.ticking import TickResult, run_tick, stops_of

__all__ = ["Dispatcher", "Eta", "Quote", "TickResult"]

#: A quote reads the plans of at most this many busy couriers near the merchant, to find one
#: on its way to wait there (a read per quote, so it stays small).
_QUOTE_BUSY_PLANS = 16
#: A process that has not ticked for this long recalls the recent demand from the event log
#: on its next tick (another process may have dispatched meanwhile).
_RECALL_AFTER_S = 300


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
class Eta:
    """When things will happen for one order.

    ``courier_arrival_at`` is when a courier reaches the restaurant (for the restaurant);
    ``pickup_at`` and ``dropoff_at`` when the food changes hands. ``estimated`` is true
    while no courier is assigned: then the times come from nearby supply and preparation.
    """

    order_id: str
    status: OrderStatus
    courier_id: str | None
    courier_arrival_at: int | None
    pickup_at: int | None
    dropoff_at: int | None
    deadline: int
    estimated: bool


@dataclass(frozen=True, slots=True)
class _Admission:
    """An order that passed admission: its promise and when its food will be ready."""

    merchant: Merchant
    distance_m: float
    ready_at: int
    window: Window
    scheduled: bool
    #: from the food being ready to it being in the customer's hands, at the earliest
    after_ready_s: int


def _check_now(now: object) -> int:
    if isinstance(now, bool) or not isinstance(now, int):
        raise InvalidInput(f"now must be whole seconds >= 0, got {now!r}", field="now")
    return ranges.TIMESTAMP.check(now, "now")


def _check_ahead(ahead_s: int, field: str) -> None:
    if not ranges.SCHEDULE_AHEAD_S.contains(ahead_s):
        days = ranges.SCHEDULE_AHEAD_S.high / 86400
        error = InvalidWindow if field == "window" else InvalidInput
        raise error(
            f"{field} is {ahead_s / 86400:.1f} days ahead; at most {days:.0f} days ahead are taken "
            f"(in {ranges.SCHEDULE_AHEAD_S.describe()} from now)",
            field=field,
        )


class Dispatcher:
    """Admission, dispatch ticks, courier events and ETAs for one city.

    Examples
    --------
    >>> from dispatch import DeliveryArea, Dispatcher, Location, Merchant
    >>> d = Dispatcher()
    >>> _ = d.add_merchant(Merchant("m1", Location(52.5200, 13.4050), DeliveryArea(radius_m=3000)), now=0)
    >>> _ = d.start_shift("c1", Location(52.5210, 13.4100), now=0, shift_end=4 * 3600)
    >>> order = d.place_order("o1", "m1", Location(52.5300, 13.4150), now=60)
    >>> [a.order_ids for a in d.tick(now=600).assignments]
    [('o1',)]
    """

    def __init__(
        self,
        store: Store | None = None,
        config: DispatchConfig | None = None,
        travel: TravelModel | None = None,
        policy: DispatchPolicy | None = None,
    ) -> None:
        self.config = config or DispatchConfig()
        self.store: Store = store if store is not None else MemoryStore(self.config.city)
        self.travel: TravelModel = travel or GreatCircleTravel()
        self.policy: DispatchPolicy = policy or OptimizingPolicy()
        self._areas: dict[str, tuple[Merchant, AreaIndex]] = {}
        self._ticked_at: int | None = None  # this process's last tick
        self._declines = Declines()

    # -- merchants ---------------------------------------------------------------------------

    def add_merchant(self, merchant: Merchant, now: int) -> Merchant:
        """Register a merchant; its delivery area is checked now (a bad polygon is refused)."""
        _check_now(now)
        self._area(merchant)
        self.store.apply(
            Change(
                merchants=[merchant],
                new_merchant_ids={merchant.id},
                events=[NewEvent("merchant.created", now, merchant_id=merchant.id)],
            )
        )
        return merchant

    def update_merchant(self, merchant: Merchant, now: int) -> Merchant:
        _check_now(now)
        self._merchant(merchant.id)
        self._area(merchant)
        self.store.apply(
            Change(merchants=[merchant], events=[NewEvent("merchant.updated", now, merchant_id=merchant.id)])
        )
        return merchant

    def merchant(self, merchant_id: str) -> Merchant:
        return self._merchant(merchant_id)

    # -- admission ---------------------------------------------------------------------------

    def quote(
        self,
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
        a = self._admit(merchant_id, dropoff, now, window, ready_at)
        cfg = self.config
        pickup_eta = max(a.ready_at, self._supply_arrival(a.merchant, now) + cfg.pickup_service_s // 2)
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

    def _admit(
        self, merchant_id: str, dropoff: Location, now: int, window: Window | None, ready_at: int | None
    ) -> _Admission:
        """The admission rules shared by quotes and orders; no ETA, no supply search."""
        _check_now(now)
        merchant = self._merchant(merchant_id)
        if not isinstance(dropoff, Location):
            raise InvalidInput("dropoff must be a Location", field="dropoff")
        _, area = self._area(merchant)
        distance_m = area.distance_m(dropoff)
        if not area.contains(dropoff):
            radius = merchant.area.radius_m
            limit = f"its {radius:.0f} m delivery radius" if radius is not None else "its delivery zone"
            raise OutsideDeliveryArea(
                f"drop-off is {distance_m:.0f} m from merchant {merchant.id!r}, outside {limit}",
                distance_m=round(distance_m, 1),
                radius_m=radius,
            )
        cfg = self.config
        # the food is in the customer's hands this long after it is ready, at the earliest
        after_ready_s = self._after_pickup_s(merchant, dropoff)
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
        return _Admission(merchant, distance_m, ready, window, scheduled, after_ready_s)

    def place_order(
        self,
        order_id: str,
        merchant_id: str,
        dropoff: Location,
        now: int,
        *,
        window: Window | None = None,
        ready_at: int | None = None,
    ) -> Order:
        """Accept an order (same rules as :meth:`quote`) and record it as placed."""
        admitted = self._admit(merchant_id, dropoff, now, window, ready_at)
        order = Order(
            id=order_id,
            merchant_id=merchant_id,
            dropoff=dropoff,
            placed_at=now,
            ready_at=admitted.ready_at,
            window=admitted.window,
            scheduled=admitted.scheduled,
        )
        if self.store.get_order(order_id) is not None:
            raise DuplicateId(f"order {order_id!r} already exists", id=order_id)
        self.store.apply(
            Change(
                orders=[order],
                events=[
                    NewEvent(
                        "order.placed",
                        now,
                        order_id=order.id,
                        merchant_id=merchant_id,
                        data={"ready_at": order.ready_at, "deadline": order.window.end},
                    )
                ],
            )
        )
        return order

    def cancel_order(self, order_id: str, now: int) -> Order:
        """Cancel an order not yet picked up; its courier's plan drops its stops."""
        _check_now(now)
        order = self._order(order_id)
        if order.status not in (OrderStatus.PLACED, OrderStatus.ASSIGNED):
            raise IllegalTransition(
                f"order {order_id!r} is {order.status.value}; it can no longer be cancelled"
            )
        cancelled = next_version(order, status=OrderStatus.CANCELLED)
        change = Change(orders=[cancelled], events=[NewEvent("order.cancelled", now, order_id=order_id)])
        if order.courier_id is not None:
            self._drop_from_plan(change, order.courier_id, {order_id}, now)
        self.store.apply(change)
        return cancelled

    def order(self, order_id: str) -> Order:
        return self._order(order_id)

    # -- couriers ----------------------------------------------------------------------------

    def start_shift(
        self,
        courier_id: str,
        location: Location,
        now: int,
        shift_end: int,
        *,
        speed_mps: float = 4.5,
        capacity: int = 3,
    ) -> Courier:
        """Put a courier on shift at ``location`` until ``shift_end``."""
        _check_now(now)
        if isinstance(shift_end, bool) or not isinstance(shift_end, int) or shift_end <= now:
            raise InvalidInput(f"shift_end must be whole seconds after now ({now} s)", field="shift_end")
        ranges.SHIFT_S.check(shift_end - now, "shift length (shift_end - now)")
        old = self.store.get_courier(courier_id)
        if old is not None and old.on_shift:
            raise Conflict(f"courier {courier_id!r} is already on shift")
        courier = Courier(
            id=courier_id,
            location=location,
            seen_at=now,
            shift_end=shift_end,
            speed_mps=speed_mps,
            capacity=capacity,
            status=CourierStatus.IDLE,
            version=1 if old is None else old.version + 1,
        )
        self.store.apply(
            Change(
                couriers=[courier],
                courier_cells={courier_id: location_to_cell(location, self.config.h3_resolution)},
                events=[
                    NewEvent(
                        "courier.shift_started", now, courier_id=courier_id, data={"shift_end": shift_end}
                    )
                ],
            )
        )
        return courier

    def end_shift(self, courier_id: str, now: int) -> Courier:
        """End a shift: orders not yet picked up go back to the pool; picked-up ones are still delivered."""
        _check_now(now)
        courier = self._courier_on_shift(courier_id)
        route = self.store.get_route(courier_id)
        change = Change(events=[NewEvent("courier.shift_ended", now, courier_id=courier_id)])
        not_picked = {
            oid
            for oid in (route.order_ids if route else ())
            if self._order(oid).status is OrderStatus.ASSIGNED
        }
        remaining = self._drop_from_plan(
            change, courier_id, not_picked, now, courier=courier, write_courier=False
        )
        status = CourierStatus.BUSY if remaining else CourierStatus.OFF_SHIFT
        updated = next_version(courier, shift_end=min(courier.shift_end, now), status=status)
        change.couriers.append(updated)
        if status is CourierStatus.OFF_SHIFT:
            change.courier_cells[courier_id] = None
        self.store.apply(change)
        return updated

    def update_position(self, courier_id: str, location: Location, now: int) -> None:
        """A position ping: the hot path. Updates the cell index; no event, no re-planning."""
        _check_now(now)
        if not isinstance(location, Location):
            raise InvalidInput("location must be a Location", field="location")
        self._courier_on_shift(courier_id)
        self.store.set_position(
            courier_id, location, location_to_cell(location, self.config.h3_resolution), now
        )

    def arrived(self, courier_id: str, now: int) -> Route:
        """The courier reports being at its next stop."""
        _check_now(now)
        courier = self._courier_on_shift(courier_id)
        route = self._route_with_stops(courier_id)
        first = route.stops[0]
        # a plan is part of its courier: every write of one bumps the other (see _drop_from_plan)
        if first.kind is StopKind.REPOSITION:
            # arrived where it was sent to wait: the stop is done, whatever comes next
            rest = self._retime(courier, first.location, now, route.stops[1:])
            new_route = replace(route, stops=rest, arrived_at=None, planned_at=now)
            # with nothing after it, the courier waits here, idle
            idle = {} if rest else {"status": CourierStatus.IDLE, "available_at": now}
            bumped = next_version(courier, **idle)
        else:
            stops = self._retime(courier, first.location, now, route.stops)
            new_route = replace(route, stops=stops, arrived_at=now)
            bumped = next_version(courier)
        change = Change(
            couriers=[bumped],
            routes={courier_id: new_route if new_route.stops else None},
            events=[
                NewEvent(
                    "courier.arrived",
                    now,
                    courier_id=courier_id,
                    merchant_id=first.merchant_id if first.kind is not StopKind.DROPOFF else None,
                    order_id=first.order_ids[0] if first.kind is StopKind.DROPOFF else None,
                    data={"stop": first.kind.value},
                )
            ],
        )
        self.store.apply(change)
        return new_route

    def picked_up(self, courier_id: str, order_id: str, now: int) -> Route:
        """The courier collected ``order_id`` at its merchant."""
        _check_now(now)
        courier = self._courier_on_shift(courier_id)
        route = self._route_with_stops(courier_id)
        order = self._order(order_id)
        if order.courier_id != courier_id:
            raise Conflict(f"order {order_id!r} is not assigned to courier {courier_id!r}")
        if order.status is not OrderStatus.ASSIGNED:
            raise IllegalTransition(f"order {order_id!r} is {order.status.value}, not waiting for pickup")
        stops = []
        for stop in route.stops:
            if stop.kind is StopKind.PICKUP and order_id in stop.order_ids:
                left = tuple(o for o in stop.order_ids if o != order_id)
                if left:
                    stops.append(replace(stop, order_ids=left))
            else:
                stops.append(stop)
        merchant = self._merchant(order.merchant_id)
        rest = self.config.pickup_service_s - self.config.pickup_service_s // 2
        still_here = bool(stops) and stops[0].kind is StopKind.PICKUP and stops[0].merchant_id == merchant.id
        picked = next_version(order, status=OrderStatus.PICKED_UP, picked_up_at=now)
        orders_now = {order_id: picked}
        # still at the merchant with more to collect: the next hand-over can be right now
        start_at = now - self.config.pickup_service_s // 2 if still_here else now + rest
        new_stops = self._retime(courier, merchant.location, start_at, stops, overrides=orders_now)
        new_route = replace(route, stops=new_stops, arrived_at=now if still_here else None, planned_at=now)
        self.store.apply(
            Change(
                orders=[picked],
                couriers=[next_version(courier)],
                routes={courier_id: new_route},
                events=[NewEvent("order.picked_up", now, order_id=order_id, courier_id=courier_id)],
            )
        )
        return new_route

    def delivered(self, courier_id: str, order_id: str, now: int) -> Route:
        """The courier handed ``order_id`` to its customer."""
        _check_now(now)
        courier = self._courier(courier_id)
        route = self._route_with_stops(courier_id)
        order = self._order(order_id)
        if order.courier_id != courier_id:
            raise Conflict(f"order {order_id!r} is not assigned to courier {courier_id!r}")
        if order.status is not OrderStatus.PICKED_UP:
            raise IllegalTransition(
                f"order {order_id!r} is {order.status.value}; only picked-up orders are delivered"
            )
        stops = tuple(s for s in route.stops if not (s.kind is StopKind.DROPOFF and order_id in s.order_ids))
        done = next_version(order, status=OrderStatus.DELIVERED, delivered_at=now)
        rest = self.config.dropoff_service_s - self.config.dropoff_service_s // 2
        change = Change(
            orders=[done],
            events=[NewEvent("order.delivered", now, order_id=order_id, courier_id=courier_id)],
        )
        if stops:
            new_stops = self._retime(courier, order.dropoff, now + rest, stops)
            new_route: Route | None = replace(route, stops=new_stops, arrived_at=None, planned_at=now)
            change.routes[courier_id] = new_route
            change.couriers.append(next_version(courier))
        else:
            new_route = None
            change.routes[courier_id] = None
            off = courier.shift_end <= now
            status = CourierStatus.OFF_SHIFT if off else CourierStatus.IDLE
            change.couriers.append(next_version(courier, status=status, available_at=now + rest))
            if off:
                change.courier_cells[courier_id] = None
        self.store.apply(change)
        return new_route or Route(courier_id, (), now)

    def release(self, courier_id: str, order_id: str, now: int) -> Order:
        """The courier turns down an order it has not picked up: it goes back to the pool."""
        _check_now(now)
        courier = self._courier_on_shift(courier_id)
        order = self._order(order_id)
        if order.courier_id != courier_id or order.status is not OrderStatus.ASSIGNED:
            raise IllegalTransition(f"order {order_id!r} is not waiting for pickup by courier {courier_id!r}")
        change = Change(events=[NewEvent("order.released", now, order_id=order_id, courier_id=courier_id)])
        self._drop_from_plan(change, courier_id, {order_id}, now, courier=courier)
        self.store.apply(change)
        return self._order(order_id)

    def decline(self, courier_id: str, order_ids: Sequence[str], now: int) -> list[Order]:
        """The courier turns down an assignment: its orders go back to waiting, and it is not
        offered them again for ``decline_cooloff_s`` (see :mod:`dispatch.declines`)."""
        _check_now(now)
        return self._declines.decline(self, courier_id, order_ids, now)

    def courier(self, courier_id: str) -> Courier:
        return self._courier(courier_id)

    def route(self, courier_id: str) -> Route:
        """The courier's current plan: the stops ahead of it, with planned times."""
        self._courier(courier_id)
        return self.store.get_route(courier_id) or Route(courier_id, (), 0)

    # -- dispatch ----------------------------------------------------------------------------

    def tick(self, now: int) -> TickResult:
        """Decide on the open orders and write every decision, or none (see :mod:`dispatch.ticking`).

        On this process's first tick, after :meth:`recall_demand`, and when it has not ticked
        for ``_RECALL_AFTER_S`` (it was not the city's dispatcher meanwhile), the policy is also
        told the orders placed in the demand window, from the event log: the orders another
        process assigned while this one was not ticking are demand too.
        """
        _check_now(now)
        last = self._ticked_at
        recall = last is None or not 0 <= now - last <= _RECALL_AFTER_S  # (or the clock went back)
        policy = self._declines.guard(self.policy, now)
        result = run_tick(self.store, policy, self.travel, self.config, now, recall=recall)
        if result.available_couriers:  # the policy was asked (with no courier it is not)
            self._ticked_at = now
        return result

    def recall_demand(self) -> None:
        """Have the next tick recall the demand window from the event log: call it when this
        process becomes the city's dispatcher (another one may have dispatched meanwhile)."""
        self._ticked_at = None

    # -- ETAs --------------------------------------------------------------------------------

    def eta(self, order_id: str, now: int) -> Eta:
        """When the courier reaches the restaurant, and when the food is picked up and delivered."""
        _check_now(now)
        order = self._order(order_id)
        arrival: int | None = None
        pickup: int | None = order.picked_up_at
        dropoff: int | None = order.delivered_at
        if order.status is OrderStatus.PLACED:
            merchant = self._merchant(order.merchant_id)
            arrival = self._supply_arrival(merchant, now)
            pickup = max(order.ready_at, arrival + self.config.pickup_service_s // 2)
            dropoff = pickup + self._after_pickup_s(merchant, order.dropoff)
        elif order.status in (OrderStatus.ASSIGNED, OrderStatus.PICKED_UP):
            assert order.courier_id is not None
            courier = self._courier(order.courier_id)
            route = self._route_with_stops(courier.id)
            stops = route.stops
            if route.arrived_at is None and now > stops[0].arrive_at:
                # running late on the first leg: replan from where the courier was last seen
                stops = self._retime(courier, courier.location, max(now, courier.seen_at), stops)
            pickup_stop, dropoff_stop = stops_of(Route(courier.id, stops, now), order.id)
            if pickup_stop is not None:
                arrival, pickup = pickup_stop.arrive_at, pickup_stop.service_at
            dropoff = dropoff_stop.service_at if dropoff_stop else None
        return Eta(
            order_id=order.id,
            status=order.status,
            courier_id=order.courier_id if order.status is not OrderStatus.CANCELLED else None,
            courier_arrival_at=arrival,
            pickup_at=pickup,
            dropoff_at=dropoff,
            deadline=order.window.end,
            estimated=order.status is OrderStatus.PLACED,
        )

    # -- internals ---------------------------------------------------------------------------

    def _merchant(self, merchant_id: str) -> Merchant:
        merchant = self.store.get_merchant(merchant_id)
        if merchant is None:
            raise UnknownMerchant(f"no merchant {merchant_id!r}", id=merchant_id)
        return merchant

    def _order(self, order_id: str) -> Order:
        order = self.store.get_order(order_id)
        if order is None:
            raise UnknownOrder(f"no order {order_id!r}", id=order_id)
        return order

    def _courier(self, courier_id: str) -> Courier:
        courier = self.store.get_courier(courier_id)
        if courier is None:
            raise UnknownCourier(f"no courier {courier_id!r}", id=courier_id)
        return courier

    def _courier_on_shift(self, courier_id: str) -> Courier:
        courier = self._courier(courier_id)
        if not courier.on_shift:
            raise CourierOffShift(f"courier {courier_id!r} is off shift", id=courier_id)
        return courier

    def _route_with_stops(self, courier_id: str) -> Route:
        route = self.store.get_route(courier_id)
        if route is None or not route.stops:
            raise IllegalTransition(f"courier {courier_id!r} has no stops planned")
        return route

    def _area(self, merchant: Merchant) -> tuple[Merchant, AreaIndex]:
        cached = self._areas.get(merchant.id)
        # polygons compare by value: a shared store hands out a fresh copy on every read
        if cached is None or cached[0] != merchant or cached[0].area.polygon != merchant.area.polygon:
            cached = (merchant, AreaIndex(merchant.location, merchant.area, self.config.area_resolution))
            self._areas[merchant.id] = cached
        return cached

    def _after_pickup_s(self, merchant: Merchant, dropoff: Location) -> int:
        """From the pickup hand-over to the drop-off hand-over, riding straight there."""
        cfg = self.config
        ride_s = self.travel.travel_s(merchant.location, dropoff, cfg.reference_speed_mps)
        return cfg.pickup_service_s - cfg.pickup_service_s // 2 + ride_s + cfg.dropoff_service_s // 2

    def _supply_arrival(self, merchant: Merchant, now: int) -> int:
        """When the nearest idle (or repositioning) courier could be at the merchant (for quotes)."""
        cfg = self.config
        cell = location_to_cell(merchant.location, cfg.h3_resolution)
        reach = self.travel.reach_m(cfg.max_pickup_travel_s, cfg.reference_speed_mps)
        cells = h3.grid_disk(cell, disk_k_for(cell, reach))
        best = None
        busy = []
        for courier in self.store.couriers_in_cells(cells):
            if courier.shift_end <= now:
                continue
            t = self.travel.travel_s(courier.location, merchant.location, courier.speed_mps)
            if courier.status is not CourierStatus.IDLE:
                busy.append((t, courier.id, courier))
            elif t <= cfg.max_pickup_travel_s and (best is None or t < best):
                best = t
        # A courier on its way to wait at a merchant is as good as idle there once it arrives:
        # work given on the way starts where the move ends. Its plan says so; only the plans of
        # the few busy couriers nearest now, and nearer than the best idle one, are read.
        limit = cfg.max_pickup_travel_s if best is None else best
        moving = [c for t, _, c in sorted(busy)[:_QUOTE_BUSY_PLANS] if t < limit]
        routes = self.store.routes([c.id for c in moving]) if moving else {}
        for courier in moving:
            route = routes.get(courier.id)
            if route is None or len(route.stops) != 1 or route.stops[0].kind is not StopKind.REPOSITION:
                continue
            stop = route.stops[0]
            t = max(0, stop.arrive_at - now) + self.travel.travel_s(
                stop.location, merchant.location, courier.speed_mps
            )
            if t <= cfg.max_pickup_travel_s and (best is None or t < best):
                best = t
        # With nobody idle nearby, expect a courier to free up within the horizon.
        return now + (best if best is not None else cfg.free_horizon_s)

    def _retime(
        self,
        courier: Courier,
        start: Location,
        start_at: int,
        stops: Sequence[Stop],
        overrides: dict[str, Order] | None = None,
    ) -> tuple[Stop, ...]:
        if not stops:
            return ()
        orders = {}
        for stop in stops:
            for oid in stop.order_ids:
                orders[oid] = (overrides or {}).get(oid) or self._order(oid)
        on_board = frozenset(oid for oid, o in orders.items() if o.status is OrderStatus.PICKED_UP)
        merchants = {o.merchant_id: self._merchant(o.merchant_id) for o in orders.values()}
        return retime_stops(
            self.config,
            self.travel,
            speed_mps=courier.speed_mps,
            start=start,
            start_at=start_at,
            stops=stops,
            orders=orders,
            on_board=on_board,
            merchants=merchants,
        )

    def _drop_from_plan(
        self,
        change: Change,
        courier_id: str,
        order_ids: set[str],
        now: int,
        *,
        courier: Courier | None = None,
        write_courier: bool = True,
    ) -> tuple[Stop, ...]:
        """Take not-yet-picked-up orders out of a courier's plan; returns the stops left.

        Orders other than the ones already in ``change`` go back to ``placed``.
        """
        courier = courier or self._courier(courier_id)
        route = self.store.get_route(courier_id)
        in_change = {o.id for o in change.orders}
        for oid in sorted(order_ids - in_change):
            order = self._order(oid)
            change.orders.append(
                next_version(order, status=OrderStatus.PLACED, courier_id=None, assigned_at=None)
            )
            change.events.append(NewEvent("order.unassigned", now, order_id=oid, courier_id=courier_id))
        if route is None:
            return ()
        kept = tuple(
            replace(s, order_ids=tuple(o for o in s.order_ids if o not in order_ids))
            for s in route.stops
            if s.kind is StopKind.REPOSITION or any(o not in order_ids for o in s.order_ids)
        )
        if kept == route.stops:
            return kept  # nothing of this plan changes: its times stand
        if kept:
            # Stops before the first one that changed keep their times; the rest are re-timed
            # from where and when the courier leaves the last unchanged stop.
            same = 0
            while same < len(kept) and kept[same] == route.stops[same]:
                same += 1
            if same:
                start, start_at = kept[same - 1].location, kept[same - 1].depart_at
            elif route.arrived_at is not None and kept[0].location == route.stops[0].location:
                start, start_at = kept[0].location, route.arrived_at
            else:
                start, start_at = courier.location, max(now, courier.seen_at, courier.available_at)
            kept = kept[:same] + self._retime(courier, start, start_at, kept[same:])
            change.routes[courier_id] = replace(route, stops=kept, planned_at=now)
            # Every write of a plan bumps its courier's version (read before the plan), so two
            # callers changing one courier's plan at once (a tick and a cancel, in two processes)
            # cannot both win: the store refuses the second as a StaleWrite.
            if write_courier:
                change.couriers.append(next_version(courier))
        else:
            change.routes[courier_id] = None
            if write_courier:
                change.couriers.append(next_version(courier, status=CourierStatus.IDLE))
        return kept
