"""The engine's reads, shared by its modules: records by id (a missing one is a specific
error), the ``now`` check, and a plan re-timed from the current records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from dispatch import ranges
from dispatch.config import DispatchConfig
from dispatch.errors import (
    CourierOffShift,
    IllegalTransition,
    InvalidInput,
    UnknownCourier,
    UnknownMerchant,
    UnknownOrder,
)
from dispatch.geo import TravelModel
from dispatch.models import Courier, Location, Merchant, Order, OrderStatus, Route, Stop
from dispatch.planning import Planner
from dispatch.store import Store

__all__ = [
    "Engine",
    "check_now",
    "courier_of",
    "courier_on_shift",
    "merchant_of",
    "order_of",
    "retime",
    "route_with_stops",
]


class Engine(Protocol):
    """What the engine's modules read of a :class:`~dispatch.engine.Dispatcher`."""

    store: Store
    config: DispatchConfig
    travel: TravelModel


def check_now(now: object) -> int:
    if ranges.is_whole(now):
        return ranges.TIMESTAMP.check(now, "now")
    raise InvalidInput(f"now must be whole seconds >= 0, got {now!r}", field="now")


def merchant_of(ctx: Engine, merchant_id: str) -> Merchant:
    merchant = ctx.store.get_merchant(merchant_id)
    if merchant is None:
        raise UnknownMerchant(f"no merchant {merchant_id!r}", id=merchant_id)
    return merchant


def order_of(ctx: Engine, order_id: str) -> Order:
    order = ctx.store.get_order(order_id)
    if order is None:
        raise UnknownOrder(f"no order {order_id!r}", id=order_id)
    return order


def courier_of(ctx: Engine, courier_id: str) -> Courier:
    courier = ctx.store.get_courier(courier_id)
    if courier is None:
        raise UnknownCourier(f"no courier {courier_id!r}", id=courier_id)
    return courier


def courier_on_shift(ctx: Engine, courier_id: str) -> Courier:
    courier = courier_of(ctx, courier_id)
    if not courier.on_shift:
        raise CourierOffShift(f"courier {courier_id!r} is off shift", id=courier_id)
    return courier


def route_with_stops(ctx: Engine, courier_id: str) -> Route:
    route = ctx.store.get_route(courier_id)
    if route is None or not route.stops:
        raise IllegalTransition(f"courier {courier_id!r} has no stops planned")
    return route


def retime(
    ctx: Engine,
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
            orders[oid] = (overrides or {}).get(oid) or order_of(ctx, oid)
    on_board = frozenset(oid for oid, o in orders.items() if o.status is OrderStatus.PICKED_UP)
    merchants = {o.merchant_id: merchant_of(ctx, o.merchant_id) for o in orders.values()}
    return Planner(ctx.config, ctx.travel, merchants).retime(
        speed_mps=courier.speed_mps,
        start=start,
        start_at=start_at,
        stops=stops,
        orders=orders,
        on_board=on_board,
    )
