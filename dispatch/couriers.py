"""The courier state machine: shifts, positions, arrivals, pickups, deliveries and releases
(and cancellations, which take orders out of plans); every plan follows the events."""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from dispatch import ranges
from dispatch.declines import with_bar
from dispatch.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    TooManyPinAttempts,
    UnknownOffer,
    WrongPin,
)
from dispatch.geo import location_to_cell
from dispatch.lookups import (
    Engine,
    check_now,
    courier_of,
    courier_on_shift,
    merchant_of,
    order_of,
    retime,
    route_with_stops,
)
from dispatch.models import (
    CancelledBy,
    Courier,
    CourierStatus,
    DeliveryStatus,
    EventKind,
    Location,
    Order,
    OrderStatus,
    Route,
    Stop,
    StopKind,
    delivery_status,
)
from dispatch.store import Change, NewEvent, next_version
from dispatch.timing import handover_s, leave_s

__all__ = [
    "accept_offer",
    "arrived",
    "cancel_order",
    "decline",
    "decline_offer",
    "delivered",
    "drop_from_plan",
    "end_shift",
    "expected_next",
    "expire_offers",
    "picked_up",
    "release",
    "returned",
    "start_shift",
    "update_position",
]


_REASON = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def cancel_order(
    ctx: Engine,
    order_id: str,
    now: int,
    *,
    reason: str = "unspecified",
    by: CancelledBy = CancelledBy.OPERATOR,
) -> Order:
    """Cancel an order not yet picked up; its courier's plan drops its stops.

    ``reason`` is a short code (``customer_request``, ``store_closed`` ...: lowercase letters,
    digits and ``_``), stored on the order with ``by``, who cancelled; ``order.cancelled``
    carries both.
    """
    check_now(now)
    if not isinstance(reason, str) or not _REASON.match(reason):
        raise InvalidInput(
            f"reason {reason!r} is not a reason code (lowercase letters, digits and _, at most 64)",
            field="reason",
        )
    if not isinstance(by, CancelledBy):
        raise InvalidInput(f"cancelled by {by!r}: one of {[b.value for b in CancelledBy]}", field="by")
    order = order_of(ctx, order_id)
    if order.status not in (OrderStatus.PLACED, OrderStatus.ASSIGNED):
        raise IllegalTransition(f"order {order_id!r} is {order.status.value}; it can no longer be cancelled")
    cancelled = next_version(order, status=OrderStatus.CANCELLED, cancel_reason=reason, cancelled_by=by)
    event = NewEvent(
        EventKind.ORDER_CANCELLED,
        now,
        order_id=order_id,
        data={"reason": reason, "by": by.value, "status": DeliveryStatus.CANCELLED.value},
    )
    change = Change(orders=[cancelled], events=[event])
    if order.courier_id is not None:
        drop_from_plan(ctx, change, order.courier_id, {order_id}, now)
    ctx.store.apply(change)
    return cancelled


def _created() -> dict[str, Any]:
    """The data of an event that puts an order back to waiting for a courier."""
    return {"status": DeliveryStatus.CREATED.value}


def _arrival_data(stop: Stop) -> dict[str, Any]:
    """``courier.arrived``: which stop, and (at a pickup or drop-off) its orders' new status."""
    if stop.kind is StopKind.REPOSITION:
        return {"stop": stop.kind.value}
    status = (
        DeliveryStatus.ARRIVED_AT_PICKUP
        if stop.kind is StopKind.PICKUP
        else DeliveryStatus.ARRIVED_AT_DROPOFF
    )
    return {"stop": stop.kind.value, "order_ids": list(stop.order_ids), "status": status.value}


def expected_next(route: Route | None) -> dict[str, Any]:
    """What the courier's plan expects it to report next (the 409 of an out-of-order event says it).

    >>> expected_next(None)
    {'event': None, 'detail': 'no stops ahead: nothing to report'}
    """
    if route is None or not route.stops:
        return {"event": None, "detail": "no stops ahead: nothing to report"}
    stop = route.stops[0]
    where = {"stop": stop.kind.value, "order_ids": list(stop.order_ids), "merchant_id": stop.merchant_id}
    if route.arrived_at is None or stop.kind is StopKind.REPOSITION:
        return {"event": "arrived", **where}
    if stop.kind is StopKind.PICKUP:
        return {"event": "picked_up", **where}
    return {"event": "delivered", **where}


def _out_of_order(route: Route, why: str) -> IllegalTransition:
    """The 409 of an event the plan does not expect now: why, and what the plan expects."""
    expected = expected_next(route)
    step = expected["event"]
    ids = ", ".join(expected.get("order_ids", ())) or "-"
    then = f"expected next: {step} ({expected.get('stop')}: {ids})" if step else expected["detail"]
    return IllegalTransition(f"{why}; {then}", expected_next=expected)


def start_shift(
    ctx: Engine,
    courier_id: str,
    location: Location,
    now: int,
    shift_end: int,
    *,
    speed_mps: float = 4.5,
    capacity: int = 3,
) -> Courier:
    """Put a courier on shift at ``location`` until ``shift_end``."""
    check_now(now)
    if not ranges.is_whole(shift_end) or shift_end <= now:
        raise InvalidInput(f"shift_end must be whole seconds after now ({now} s)", field="shift_end")
    ranges.SHIFT_S.check(shift_end - now, "shift length (shift_end - now)")
    old = ctx.store.get_courier(courier_id)
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
    ctx.store.apply(
        Change(
            couriers=[courier],
            courier_cells={courier_id: location_to_cell(location, ctx.config.h3_resolution)},
            events=[
                NewEvent(
                    EventKind.COURIER_SHIFT_STARTED, now, courier_id=courier_id, data={"shift_end": shift_end}
                )
            ],
        )
    )
    return courier


def end_shift(ctx: Engine, courier_id: str, now: int) -> Courier:
    """End a shift: orders not yet picked up go back to the pool; picked-up ones are still delivered."""
    check_now(now)
    courier = courier_on_shift(ctx, courier_id)
    route = ctx.store.get_route(courier_id)
    change = Change(events=[NewEvent(EventKind.COURIER_SHIFT_ENDED, now, courier_id=courier_id)])
    not_picked = {
        oid for oid in (route.order_ids if route else ()) if order_of(ctx, oid).status is OrderStatus.ASSIGNED
    }
    remaining = drop_from_plan(ctx, change, courier_id, not_picked, now, courier=courier, write_courier=False)
    status = CourierStatus.BUSY if remaining else CourierStatus.OFF_SHIFT
    updated = next_version(courier, shift_end=min(courier.shift_end, now), status=status)
    change.couriers.append(updated)
    if status is CourierStatus.OFF_SHIFT:
        change.courier_cells[courier_id] = None
    ctx.store.apply(change)
    return updated


def update_position(ctx: Engine, courier_id: str, location: Location, now: int) -> Courier:
    """A position ping: the hot path. Updates the cell index; no event, no re-planning. Returns
    the courier as read before the ping."""
    check_now(now)
    if not isinstance(location, Location):
        raise InvalidInput("location must be a Location", field="location")
    courier = courier_on_shift(ctx, courier_id)
    ctx.store.set_position(courier_id, location, location_to_cell(location, ctx.config.h3_resolution), now)
    return courier


def arrived(ctx: Engine, courier_id: str, now: int) -> Route:
    """The courier reports being at its next stop."""
    check_now(now)
    courier = courier_on_shift(ctx, courier_id)
    route = route_with_stops(ctx, courier_id)
    first = route.stops[0]
    if route.arrived_at is not None:
        raise _out_of_order(route, f"courier {courier_id!r} has already arrived at its next stop")
    # a plan is part of its courier: every write of one bumps the other (see _drop_from_plan)
    if first.kind is StopKind.REPOSITION:
        # arrived where it was sent to wait: the stop is done, whatever comes next
        rest = retime(ctx, courier, first.location, now, route.stops[1:])
        new_route = replace(route, stops=rest, arrived_at=None, planned_at=now)
        # with nothing after it, the courier waits here, idle
        idle = {} if rest else {"status": CourierStatus.IDLE, "available_at": now}
        bumped = next_version(courier, **idle)
    else:
        stops = retime(ctx, courier, first.location, now, route.stops)
        new_route = replace(route, stops=stops, arrived_at=now)
        bumped = next_version(courier)
    change = Change(
        couriers=[bumped],
        routes={courier_id: new_route if new_route.stops else None},
        events=[
            NewEvent(
                EventKind.COURIER_ARRIVED,
                now,
                courier_id=courier_id,
                merchant_id=first.merchant_id if first.kind is not StopKind.DROPOFF else None,
                order_id=first.order_ids[0] if first.kind is StopKind.DROPOFF else None,
                data=_arrival_data(first),
            )
        ],
    )
    ctx.store.apply(change)
    return new_route


def picked_up(ctx: Engine, courier_id: str, order_id: str, now: int) -> Route:
    """The courier collected ``order_id`` at its merchant."""
    check_now(now)
    courier = courier_on_shift(ctx, courier_id)
    route = route_with_stops(ctx, courier_id)
    order = order_of(ctx, order_id)
    if order.courier_id != courier_id:
        raise Conflict(f"order {order_id!r} is not assigned to courier {courier_id!r}")
    if order.status is not OrderStatus.ASSIGNED:
        raise _out_of_order(route, f"order {order_id!r} is {order.status.value}, not waiting for pickup")
    if order.offer_pending:
        raise IllegalTransition(
            f"order {order_id!r} is offered to courier {courier_id!r}, not accepted yet: "
            f"accept offer {order.offer_id!r} first",
            expected_next={"event": "accept", "offer_id": order.offer_id},
        )
    first = route.stops[0]
    if route.arrived_at is None or first.kind is not StopKind.PICKUP or order_id not in first.order_ids:
        raise _out_of_order(route, f"picked_up of order {order_id!r} is out of order")
    stops = []
    for stop in route.stops:
        if stop.kind is StopKind.PICKUP and order_id in stop.order_ids:
            left = tuple(o for o in stop.order_ids if o != order_id)
            if left:
                stops.append(replace(stop, order_ids=left))
        else:
            stops.append(stop)
    merchant = merchant_of(ctx, order.merchant_id)
    rest = leave_s(ctx.config.pickup_service_s)
    still_here = bool(stops) and stops[0].kind is StopKind.PICKUP and stops[0].merchant_id == merchant.id
    picked = next_version(order, status=OrderStatus.PICKED_UP, picked_up_at=now)
    orders_now = {order_id: picked}
    # still at the merchant with more to collect: the next hand-over can be right now
    start_at = now - handover_s(ctx.config.pickup_service_s) if still_here else now + rest
    new_stops = retime(ctx, courier, merchant.location, start_at, stops, overrides=orders_now)
    new_route = replace(route, stops=new_stops, arrived_at=now if still_here else None, planned_at=now)
    ctx.store.apply(
        Change(
            orders=[picked],
            couriers=[next_version(courier)],
            routes={courier_id: new_route},
            events=[
                NewEvent(
                    EventKind.ORDER_PICKED_UP,
                    now,
                    order_id=order_id,
                    courier_id=courier_id,
                    data={"status": delivery_status(picked, new_route).value},
                )
            ],
        )
    )
    return new_route


#: wrong PINs allowed per order before attempts pause for ``PIN_LOCKOUT_S``
MAX_PIN_FAILURES = 5
PIN_LOCKOUT_S = 300


def delivered(ctx: Engine, courier_id: str, order_id: str, now: int, *, pin: str | None = None) -> Route:
    """The courier handed ``order_id`` to its customer.

    An order with a delivery PIN (and not left at the door) needs ``pin``: a wrong or missing
    one is refused with :class:`WrongPin` and counted (the count is the one thing it writes);
    after ``MAX_PIN_FAILURES`` wrong ones, attempts are refused with
    :class:`TooManyPinAttempts` until ``PIN_LOCKOUT_S`` after the last.
    """
    check_now(now)
    order, route = _at_door(ctx, courier_id, order_id, now, "delivered")
    if order.delivery_pin is not None and not order.contactless:
        _check_pin(ctx, order, pin, now)
    done = next_version(order, status=OrderStatus.DELIVERED, delivered_at=now)
    return _leave_door(ctx, courier_id, route, done, now, EventKind.ORDER_DELIVERED, DeliveryStatus.DELIVERED)


def returned(ctx: Engine, courier_id: str, order_id: str, now: int) -> Route:
    """At the door, the courier could not hand ``order_id`` over: it takes it back to the merchant.

    The order is ``returned`` and leaves the plan (dispatch is done with it).
    """
    check_now(now)
    order, route = _at_door(ctx, courier_id, order_id, now, "returned")
    done = next_version(order, status=OrderStatus.RETURNED)
    return _leave_door(ctx, courier_id, route, done, now, EventKind.ORDER_RETURNED, DeliveryStatus.RETURNED)


def _at_door(ctx: Engine, courier_id: str, order_id: str, now: int, what: str) -> tuple[Order, Route]:
    """The order and plan of a courier reporting ``what`` at ``order_id``'s door (or a 409)."""
    courier_of(ctx, courier_id)
    route = route_with_stops(ctx, courier_id)
    order = order_of(ctx, order_id)
    if order.courier_id != courier_id:
        raise Conflict(f"order {order_id!r} is not assigned to courier {courier_id!r}")
    if order.status is not OrderStatus.PICKED_UP:
        raise _out_of_order(
            route, f"order {order_id!r} is {order.status.value}; only picked-up orders are {what}"
        )
    first = route.stops[0]
    if route.arrived_at is None or first.kind is not StopKind.DROPOFF or order_id not in first.order_ids:
        raise _out_of_order(route, f"{what} of order {order_id!r} is out of order")
    return order, route


def _check_pin(ctx: Engine, order: Order, pin: str | None, now: int) -> None:
    if order.pin_failures >= MAX_PIN_FAILURES and order.pin_failed_at is not None:
        wait_s = order.pin_failed_at + PIN_LOCKOUT_S - now
        if wait_s > 0:
            raise TooManyPinAttempts(
                f"{order.pin_failures} wrong PINs for order {order.id!r}; try again in {wait_s} s",
                retry_after_s=wait_s,
            )
    assert order.delivery_pin is not None
    if pin is not None and hmac.compare_digest(pin.encode(), order.delivery_pin.encode()):
        return
    failures = order.pin_failures + 1
    ctx.store.apply(Change(orders=[next_version(order, pin_failures=failures, pin_failed_at=now)]))
    left = max(0, MAX_PIN_FAILURES - failures)
    said = "no PIN" if pin is None else "a wrong PIN"
    raise WrongPin(
        f"{said} for order {order.id!r} (the customer has it); {left} attempt(s) left before a pause",
        field="pin",
        attempts_left=left,
    )


def _leave_door(
    ctx: Engine,
    courier_id: str,
    route: Route,
    done: Order,
    now: int,
    kind: EventKind,
    status: DeliveryStatus,
) -> Route:
    """Write ``done`` (delivered or returned): its drop-off leaves the plan, the rest is re-timed."""
    courier = courier_of(ctx, courier_id)
    order_id = done.id
    stops = tuple(s for s in route.stops if not (s.kind is StopKind.DROPOFF and order_id in s.order_ids))
    rest = leave_s(ctx.config.dropoff_service_s)
    change = Change(
        orders=[done],
        events=[NewEvent(kind, now, order_id=order_id, courier_id=courier_id, data={"status": status.value})],
    )
    if stops:
        new_stops = retime(ctx, courier, done.dropoff, now + rest, stops)
        new_route: Route | None = replace(route, stops=new_stops, arrived_at=None, planned_at=now)
        change.routes[courier_id] = new_route
        change.couriers.append(next_version(courier))
    else:
        new_route = None
        change.routes[courier_id] = None
        off = courier.shift_end <= now
        courier_status = CourierStatus.OFF_SHIFT if off else CourierStatus.IDLE
        change.couriers.append(next_version(courier, status=courier_status, available_at=now + rest))
        if off:
            change.courier_cells[courier_id] = None
    ctx.store.apply(change)
    return new_route or Route(courier_id, (), now)


def release(ctx: Engine, courier_id: str, order_id: str, now: int) -> Order:
    """The courier turns down an order it has not picked up: it goes back to the pool."""
    check_now(now)
    courier = courier_on_shift(ctx, courier_id)
    order = order_of(ctx, order_id)
    if order.courier_id != courier_id or order.status is not OrderStatus.ASSIGNED:
        raise IllegalTransition(f"order {order_id!r} is not waiting for pickup by courier {courier_id!r}")
    change = Change(
        events=[
            NewEvent(EventKind.ORDER_RELEASED, now, order_id=order_id, courier_id=courier_id, data=_created())
        ]
    )
    drop_from_plan(ctx, change, courier_id, {order_id}, now, courier=courier)
    ctx.store.apply(change)
    return order_of(ctx, order_id)


def drop_from_plan(
    ctx: Engine,
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
    courier = courier or courier_of(ctx, courier_id)
    route = ctx.store.get_route(courier_id)
    in_change = {o.id for o in change.orders}
    for oid in sorted(order_ids - in_change):
        order = order_of(ctx, oid)
        change.orders.append(
            next_version(order, status=OrderStatus.PLACED, courier_id=None, assigned_at=None)
        )
        change.events.append(
            NewEvent(EventKind.ORDER_UNASSIGNED, now, order_id=oid, courier_id=courier_id, data=_created())
        )
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
        kept = kept[:same] + retime(ctx, courier, start, start_at, kept[same:])
        # still at the stop it arrived at only if that stop is still the first one
        first, was = kept[0], route.stops[0]
        here = (first.kind, first.location, first.merchant_id) == (was.kind, was.location, was.merchant_id)
        arrived_at = route.arrived_at if here else None
        change.routes[courier_id] = replace(route, stops=kept, planned_at=now, arrived_at=arrived_at)
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


# -- offers and declines ------------------------------------------------------------------------


def _offer_orders(ctx: Engine, courier_id: str, offer_id: str) -> list[Order]:
    """The orders of ``courier_id``'s plan given to it by ``offer_id`` (404 when there are none)."""
    route = ctx.store.get_route(courier_id)
    found = []
    for oid in route.order_ids if route else ():
        order = order_of(ctx, oid)
        if order.offer_id == offer_id and order.courier_id == courier_id:
            found.append(order)
    if not found:
        raise UnknownOffer(
            f"courier {courier_id!r} holds no offer {offer_id!r} (declined, expired or never made)",
            id=offer_id,
        )
    return found


def accept_offer(ctx: Engine, courier_id: str, offer_id: str, now: int) -> list[Order]:
    """The courier accepts an offer: its orders are confirmed. Accepting twice changes nothing."""
    check_now(now)
    courier_on_shift(ctx, courier_id)
    orders = _offer_orders(ctx, courier_id, offer_id)
    pending = [o for o in orders if o.offer_pending]
    if not pending:
        return orders  # accepted already: harmless
    expires_at = min(o.offer_expires_at for o in pending if o.offer_expires_at is not None)
    if now >= expires_at:
        raise IllegalTransition(
            f"offer {offer_id!r} expired at {expires_at} ({now - expires_at} s ago)",
            expected_next={"event": None, "detail": "wait for the next offer"},
        )
    accepted = [next_version(o, offer_expires_at=None) for o in pending]
    route = ctx.store.get_route(courier_id)
    ctx.store.apply(
        Change(
            orders=accepted,
            events=[
                NewEvent(
                    EventKind.OFFER_ACCEPTED,
                    now,
                    order_id=o.id,
                    courier_id=courier_id,
                    merchant_id=o.merchant_id,
                    data={"offer_id": offer_id, "status": delivery_status(o, route).value},
                )
                for o in accepted
            ],
        )
    )
    return [order_of(ctx, o.id) for o in orders]


def decline_offer(ctx: Engine, courier_id: str, offer_id: str, now: int) -> list[Order]:
    """The courier declines an offer it has not accepted: its orders wait for the next tick,
    which does not offer them to this courier for ``decline_cooloff_s``."""
    check_now(now)
    courier_on_shift(ctx, courier_id)
    orders = _offer_orders(ctx, courier_id, offer_id)
    if not any(o.offer_pending for o in orders):
        raise IllegalTransition(
            f"offer {offer_id!r} was accepted; to give an order back, report it rejected",
            expected_next={"event": "rejected", "order_ids": [o.id for o in orders]},
        )
    return _bar(ctx, courier_id, [o for o in orders if o.offer_pending], now, EventKind.OFFER_DECLINED)


def decline(ctx: Engine, courier_id: str, order_ids: Sequence[str], now: int) -> list[Order]:
    """The courier turns down orders it was assigned and has not picked up (all or, on an
    error, none): they wait for the next tick, which does not offer them to it for a while."""
    check_now(now)
    ids = list(dict.fromkeys(order_ids))
    if not ids:
        raise InvalidInput("a decline names at least one order", field="order_ids")
    courier_of(ctx, courier_id)  # an unknown courier is an error before anything else
    orders = []
    for oid in ids:
        order = order_of(ctx, oid)
        if order.courier_id != courier_id or order.status is not OrderStatus.ASSIGNED:
            raise IllegalTransition(
                f"order {oid!r} is not waiting for pickup by courier {courier_id!r}: cannot decline it"
            )
        orders.append(order)
    courier_on_shift(ctx, courier_id)
    return _bar(ctx, courier_id, orders, now, EventKind.ORDER_RELEASED)


def expire_offers(ctx: Engine, now: int) -> list[Order]:
    """Offers not answered by their time: their orders go back to waiting, and the courier is
    barred from them as after a decline. Returns the orders freed."""
    check_now(now)
    if ctx.config.auto_accept:
        return []
    late: dict[str, list[Order]] = {}
    for order in ctx.store.orders_with_status(OrderStatus.ASSIGNED):
        if order.offer_expires_at is not None and order.offer_expires_at <= now and order.courier_id:
            late.setdefault(order.courier_id, []).append(order)
    freed = []
    for courier_id in sorted(late):
        orders = sorted(late[courier_id], key=lambda o: o.id)
        freed += _bar(ctx, courier_id, orders, now, EventKind.OFFER_EXPIRED)
    return freed


def _bar(ctx: Engine, courier_id: str, orders: list[Order], now: int, kind: EventKind) -> list[Order]:
    """Take ``orders`` out of ``courier_id``'s plan, back to waiting, barred from it for a while."""
    until = now + ctx.config.decline_cooloff_s
    freed = [
        next_version(
            o,
            status=OrderStatus.PLACED,
            courier_id=None,
            assigned_at=None,
            offer_id=None,
            offer_expires_at=None,
            declined_by=with_bar(o, courier_id, until, now),
        )
        for o in orders
    ]
    change = Change(orders=list(freed))
    for o in orders:
        data = {"barred_until": until, **_created()} | ({"offer_id": o.offer_id} if o.offer_id else {})
        change.events.append(
            NewEvent(kind, now, order_id=o.id, courier_id=courier_id, merchant_id=o.merchant_id, data=data)
        )
        change.events.append(
            NewEvent(EventKind.ORDER_UNASSIGNED, now, order_id=o.id, courier_id=courier_id, data=_created())
        )
    drop_from_plan(ctx, change, courier_id, {o.id for o in orders}, now)
    ctx.store.apply(change)
    return freed
