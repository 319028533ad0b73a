"""One ETA per order: from nearby supply while it waits, from its courier's plan once assigned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from dispatch.admission import Supply, placed_eta, supply_near
from dispatch.lookups import Engine, check_now, courier_of, merchant_of, order_of, route_with_stops
from dispatch.models import Order, OrderStatus, Route
from dispatch.ticking import EtaCause, eta_changes, stops_of

__all__ = ["BoardRow", "Eta", "EtaCause", "eta", "eta_changes", "merchant_board"]


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


class BoardRow(NamedTuple):
    """One order of a merchant's board, with its ETA while it is open."""

    order: Order
    eta: Eta | None


def eta(ctx: Engine, order_id: str, now: int, supply: Supply | None = None) -> Eta:
    """When the courier reaches the restaurant, and when the food is picked up and delivered.
    ``supply``: the supply near its merchant already searched at ``now`` (as admission did
    when it placed the order), for a placed order; searched here if not given."""
    check_now(now)
    order = order_of(ctx, order_id)
    if order.status is not OrderStatus.PLACED:
        return _eta(ctx, order, now, None)
    if supply is None:
        supply = supply_near(ctx, merchant_of(ctx, order.merchant_id), now)
    return _eta(ctx, order, now, supply)


def merchant_board(
    ctx: Engine, merchant_id: str, now: int, *, include_closed: bool, limit: int
) -> list[BoardRow]:
    """A merchant's orders in placement order (at most ``limit``; closed ones too with
    ``include_closed``), each open one with its :func:`eta`. The orders still waiting for a
    courier share one supply search: the nearest supply depends on the merchant, not the order.
    """
    check_now(now)
    merchant = merchant_of(ctx, merchant_id)
    rows: list[BoardRow] = []
    supply: Supply | None = None
    for order in ctx.store.orders_of_merchant(merchant_id):
        if len(rows) >= limit:
            break
        if not order.status.is_open:
            if include_closed:
                rows.append(BoardRow(order, None))
            continue
        if order.status is OrderStatus.PLACED and supply is None:
            supply = supply_near(ctx, merchant, now)
        rows.append(BoardRow(order, _eta(ctx, order, now, supply)))
    return rows


def _eta(ctx: Engine, order: Order, now: int, supply_if_placed: Supply | None) -> Eta:
    """``order``'s ETA; ``supply_if_placed``: the supply near its merchant, if it is placed
    (it waits behind the orders placed before it, as admission counted it)."""
    arrival: int | None = None
    pickup: int | None = order.picked_up_at
    dropoff: int | None = order.delivered_at
    if order.status is OrderStatus.PLACED:
        assert supply_if_placed is not None
        merchant = merchant_of(ctx, order.merchant_id)
        arrival, pickup, dropoff = placed_eta(ctx, supply_if_placed, order, merchant, now)
    elif order.status in (OrderStatus.ASSIGNED, OrderStatus.PICKED_UP):
        assert order.courier_id is not None
        courier = courier_of(ctx, order.courier_id)
        # the plan is the ETA: the same in reads, in route() and in the events; it moves only
        # when something happens (a courier event, a tick re-timing a late courier)
        stops = route_with_stops(ctx, courier.id).stops
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
