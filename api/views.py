"""Domain objects to public schemas, where it takes more than one record (an order with its ETA)."""

from __future__ import annotations

from api.schemas.common import Point, TimeWindow
from api.schemas.orders import ContactPublic, CourierPosition, OrderEta, OrderPublic
from dispatch.engine import Dispatcher
from dispatch.geo.distance import haversine_m
from dispatch.models import Location, Order, OrderStatus, Route, StopKind, delivery_status

__all__ = ["courier_imminent", "external_id_of", "order_id_for", "order_public"]


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


def order_public(
    dispatcher: Dispatcher, order: Order, now: int, tracking_url: str | None = None, *, with_pin: bool = False
) -> OrderPublic:
    """The public view of an order: ETAs while it is open, the courier's position while one carries it.

    Only for keys that may see the order: it holds its contacts. ``with_pin``: the delivery PIN
    too (the response that creates the order).
    """
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
    imminent = False
    route = None
    if order.courier_id is not None and order.status in (OrderStatus.ASSIGNED, OrderStatus.PICKED_UP):
        route = dispatcher.route(order.courier_id)
        courier = dispatcher.courier(order.courier_id)
        position = CourierPosition(
            courier_id=courier.id,
            lat=courier.location.lat,
            lng=courier.location.lng,
            seen_at=courier.seen_at,
            age_s=max(0, now - courier.seen_at),
        )
        imminent = courier_imminent(route, order, courier.location, now)
    return OrderPublic(
        id=order.id,
        external_id=external_id_of(order),
        merchant_id=order.merchant_id,
        status=delivery_status(order, route),
        dropoff=Point.of(order.dropoff),
        placed_at=order.placed_at,
        ready_at=order.ready_at,
        scheduled=order.scheduled,
        dropoff_window=TimeWindow.of(order.window),
        deadline_at=order.deadline,
        courier_id=order.courier_id if order.status is not OrderStatus.CANCELLED else None,
        eta=eta,
        courier_position=position,
        courier_imminent=imminent,
        contactless=order.contactless,
        pickup_contact=ContactPublic.of(order.pickup_contact),
        dropoff_contact=ContactPublic.of(order.dropoff_contact),
        delivery_pin=order.delivery_pin if with_pin else None,
        cancel_reason=order.cancel_reason,
        cancelled_by=order.cancelled_by,
        tracking_url=tracking_url,
    )


#: how close (metres, seconds) a courier is to a stop for it to be "imminent"
IMMINENT_M = 100.0
IMMINENT_S = 60


def courier_imminent(route: Route, order: Order, position: Location, now: int) -> bool:
    """Whether the courier is within ``IMMINENT_M`` or ``IMMINENT_S`` of this order's next stop
    (its pickup while assigned, its drop-off once picked up), or already there."""
    kind = StopKind.PICKUP if order.status is OrderStatus.ASSIGNED else StopKind.DROPOFF
    for i, stop in enumerate(route.stops):
        if stop.kind is kind and order.id in stop.order_ids:
            if i == 0 and route.arrived_at is not None:
                return True
            return haversine_m(position, stop.location) <= IMMINENT_M or stop.arrive_at - now <= IMMINENT_S
    return False
