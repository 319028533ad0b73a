"""Domain objects to public schemas, where it takes more than one record (an order with its ETA)."""

from __future__ import annotations

from api.schemas.common import Point, TimeWindow
from api.schemas.orders import CourierPosition, OrderEta, OrderPublic
from dispatch.engine import Dispatcher
from dispatch.models import Order, OrderStatus

__all__ = ["external_id_of", "order_id_for", "order_public"]


def order_id_for(merchant_id: str, external_id: str) -> str:
    """The engine id of an API order: ``<merchant_id>:<external_id>`` (ids hold no ``:``).

    So an external id is unique per merchant by construction, and a merchant's order can be
    found again from the client's own id.

    >>> order_id_for("m-17", "A-1001")
    'm-17:A-1001'
    """
    return f"{merchant_id}:{external_id}"


def external_id_of(order: Order) -> str:
    prefix = f"{order.merchant_id}:"
    return order.id[len(prefix) :] if order.id.startswith(prefix) else order.id


def order_public(dispatcher: Dispatcher, order: Order, now: int) -> OrderPublic:
    """The public view of an order: ETAs while it is open, the courier's position while one carries it."""
    eta = None
    if order.status.is_open:
        e = dispatcher.eta(order.id, now)
        eta = OrderEta(
            courier_arrival_at=e.courier_arrival_at,
            pickup_at=e.pickup_at,
            dropoff_at=e.dropoff_at,
            estimated=e.estimated,
        )
    position = None
    if order.courier_id is not None and order.status in (OrderStatus.ASSIGNED, OrderStatus.PICKED_UP):
        courier = dispatcher.courier(order.courier_id)
        position = CourierPosition(
            courier_id=courier.id, lat=courier.location.lat, lng=courier.location.lng, seen_at=courier.seen_at
        )
    return OrderPublic(
        id=order.id,
        external_id=external_id_of(order),
        merchant_id=order.merchant_id,
        status=order.status,
        dropoff=Point.of(order.dropoff),
        placed_at=order.placed_at,
        ready_at=order.ready_at,
        scheduled=order.scheduled,
        dropoff_window=TimeWindow.of(order.window),
        deadline_at=order.deadline,
        courier_id=order.courier_id if order.status is not OrderStatus.CANCELLED else None,
        eta=eta,
        courier_position=position,
    )
