"""Domain records: merchants, couriers, orders, stops, routes, assignments, events.

Records are frozen dataclasses; a change is a new record made with ``dataclasses.replace``.
Times are integer seconds, distances metres. Every record checks its own values in
``__post_init__`` and raises a specific :class:`~dispatch.errors.InvalidInput`.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from enum import StrEnum
from typing import Any, NamedTuple, TypeVar

from dispatch import ranges
from dispatch.errors import InvalidInput, InvalidLocation, InvalidWindow

__all__ = [
    "Assignment",
    "CancelledBy",
    "Contact",
    "Courier",
    "CourierStatus",
    "DeliveryArea",
    "DeliveryStatus",
    "Event",
    "Location",
    "Merchant",
    "Order",
    "OrderDetails",
    "OrderStatus",
    "Route",
    "Stop",
    "StopKind",
    "Window",
    "delivery_status",
    "restored",
]

R = TypeVar("R")


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class Location:
    """A point on Earth, optionally with planar coordinates in metres.

    ``x_m``/``y_m`` are set by readers of planar instances (the Grubhub ones), whose travel
    model works on them exactly; ``lat``/``lng`` always exist so that H3 can index the point.

    >>> Location(41.88, -87.63)
    Location(lat=41.88, lng=-87.63, x_m=None, y_m=None)
    >>> Location(91.0, 0.0)
    Traceback (most recent call last):
    ...
    dispatch.errors.InvalidLocation: latitude 91.0 is outside [-90, 90]
    """

    lat: float
    lng: float
    x_m: float | None = None
    y_m: float | None = None

    def __post_init__(self) -> None:
        if not _finite(self.lat):
            raise InvalidLocation(f"latitude {self.lat!r} is not a finite number", field="lat")
        if not _finite(self.lng):
            raise InvalidLocation(f"longitude {self.lng!r} is not a finite number", field="lng")
        if not -90.0 <= self.lat <= 90.0:
            raise InvalidLocation(f"latitude {self.lat} is outside [-90, 90]", field="lat")
        if not -180.0 <= self.lng <= 180.0:
            raise InvalidLocation(f"longitude {self.lng} is outside [-180, 180]", field="lng")
        if (self.x_m is None) != (self.y_m is None):
            raise InvalidLocation("planar coordinates need both x_m and y_m", field="x_m")
        if self.x_m is not None and not (_finite(self.x_m) and _finite(self.y_m)):  # type: ignore[arg-type]
            raise InvalidLocation("planar coordinates must be finite", field="x_m")


@dataclass(frozen=True, slots=True)
class DeliveryArea:
    """Where a merchant delivers: a radius in metres around it, or a GeoJSON polygon.

    Exactly one of ``radius_m`` and ``polygon`` is set. ``polygon`` is a GeoJSON
    ``Polygon`` or ``MultiPolygon`` geometry mapping (coordinates are ``[lng, lat]``).
    """

    radius_m: float | None = None
    polygon: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    def __post_init__(self) -> None:
        if (self.radius_m is None) == (self.polygon is None):
            raise InvalidInput("a delivery area is a radius or a polygon, exactly one", field="area")
        if self.radius_m is not None:
            ranges.RADIUS_M.check(self.radius_m, "radius_m")
        if self.polygon is not None:
            kind = self.polygon.get("type") if isinstance(self.polygon, dict) else None
            if kind not in ("Polygon", "MultiPolygon"):
                raise InvalidInput(
                    f"delivery polygon must be a GeoJSON Polygon or MultiPolygon, got {kind!r}",
                    field="polygon",
                )
            vertices = _vertices(self.polygon)
            # too few, or malformed: refused with its own reason by the area index
            if vertices is not None and vertices > ranges.POLYGON_VERTICES.high:
                ranges.POLYGON_VERTICES.check(vertices, "polygon vertices")

    @classmethod
    def circle(cls, radius_m: float) -> DeliveryArea:
        return cls(radius_m=radius_m)


@dataclass(frozen=True, slots=True)
class Merchant:
    """A restaurant or shop: where orders are picked up.

    ``prep_s`` is the typical preparation time (placement to ready); ``promise_s`` the ASAP
    promise (placement to drop-off), ``None`` for the city's default;
    ``offer_schedule_when_full`` whether a quote no courier can keep offers the earliest
    feasible scheduled window instead of refusing, ``None`` for the city's choice
    (``DispatchConfig.offer_schedule_when_full``).
    """

    id: str
    location: Location
    area: DeliveryArea
    prep_s: int = 600
    promise_s: int | None = None
    #: its orders need the customer's 4-digit PIN at delivery (unless left at the door)
    delivery_pin: bool = False
    offer_schedule_when_full: bool | None = None

    def __post_init__(self) -> None:
        ranges.check_id(self.id, "merchant id")
        ranges.PREP_S.check(self.prep_s, "prep_s")
        if self.promise_s is not None:
            ranges.PROMISE_S.check(self.promise_s, "promise_s")
        offer = self.offer_schedule_when_full
        if offer is not None and not isinstance(offer, bool):
            raise InvalidInput(
                f"offer_schedule_when_full must be true, false or null, got {offer!r}",
                field="offer_schedule_when_full",
            )


class CourierStatus(StrEnum):
    OFF_SHIFT = "off_shift"
    IDLE = "idle"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class Courier:
    """A courier: where it was last seen and when, its shift and vehicle."""

    id: str
    location: Location
    seen_at: int
    shift_end: int
    speed_mps: float = 4.5
    capacity: int = 3
    status: CourierStatus = CourierStatus.IDLE
    #: when an idle courier can leave where it is (the end of its last hand-over)
    available_at: int = 0
    version: int = 1

    def __post_init__(self) -> None:
        ranges.check_id(self.id, "courier id")
        ranges.SPEED_MPS.check(self.speed_mps, "speed_mps")
        ranges.CAPACITY.check(self.capacity, "capacity")
        ranges.TIMESTAMP.check(self.seen_at, "seen_at")
        ranges.TIMESTAMP.check(self.shift_end, "shift_end")

    @property
    def on_shift(self) -> bool:
        return self.status is not CourierStatus.OFF_SHIFT


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle, as the engine stores and indexes it.

    Integrators see the finer :class:`DeliveryStatus`, which adds where the courier is in its
    plan (:func:`dispatch.couriers.delivery_status`).
    """

    PLACED = "placed"
    ASSIGNED = "assigned"
    PICKED_UP = "picked_up"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    #: picked up, then brought back to the merchant (the customer could not be handed it)
    RETURNED = "returned"

    @property
    def is_open(self) -> bool:
        return self in (OrderStatus.PLACED, OrderStatus.ASSIGNED, OrderStatus.PICKED_UP)


class DeliveryStatus(StrEnum):
    """The statuses delivery platforms use (DoorDash Drive, Uber Direct, Stuart), on orders
    and events. The README maps each to the event that leads to it."""

    CREATED = "created"
    CONFIRMED = "confirmed"
    ENROUTE_TO_PICKUP = "enroute_to_pickup"
    ARRIVED_AT_PICKUP = "arrived_at_pickup"
    PICKED_UP = "picked_up"
    ENROUTE_TO_DROPOFF = "enroute_to_dropoff"
    ARRIVED_AT_DROPOFF = "arrived_at_dropoff"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


class CancelledBy(StrEnum):
    """Who cancelled an order (stored with its reason code, and in ``order.cancelled``)."""

    CUSTOMER = "customer"
    MERCHANT = "merchant"
    COURIER = "courier"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Contact:
    """Who to ask for at a stop: personal data, stored and shown only to those allowed to see
    the order, and never logged (its ``repr`` says nothing)."""

    name: str | None = None
    phone: str | None = None
    instructions: str | None = None

    def __post_init__(self) -> None:
        for label, value, most in (("name", self.name, 100), ("phone", self.phone, 32)):
            if value is not None and not (isinstance(value, str) and 0 < len(value) <= most):
                raise InvalidInput(f"contact {label} is 1 to {most} characters", field=label)
        if self.instructions is not None and not (
            isinstance(self.instructions, str) and len(self.instructions) <= 500
        ):
            raise InvalidInput("contact instructions are at most 500 characters", field="instructions")

    def __repr__(self) -> str:
        return "Contact(<redacted>)"


@dataclass(frozen=True, slots=True)
class OrderDetails:
    """What an order carries besides dispatch: contacts, "leave at the door", the delivery PIN.

    The caller draws the PIN (the engine has no randomness of its own): 4 digits, given when
    the merchant requires one and the order is not contactless.
    """

    pickup_contact: Contact | None = None
    dropoff_contact: Contact | None = None
    contactless: bool = False
    delivery_pin: str | None = field(default=None, repr=False)

    def check(self, merchant: Merchant) -> None:
        pin = self.delivery_pin
        if pin is not None and not (isinstance(pin, str) and len(pin) == 4 and pin.isdigit()):
            raise InvalidInput("a delivery PIN is 4 digits", field="delivery_pin")
        if self.contactless and pin is not None:
            raise InvalidInput("a contactless order is left at the door: it has no PIN", field="delivery_pin")
        if merchant.delivery_pin and not self.contactless and pin is None:
            raise InvalidInput(
                f"merchant {merchant.id!r} requires a delivery PIN for orders handed over in person",
                field="delivery_pin",
            )


@dataclass(frozen=True, slots=True)
class Window:
    """A drop-off window ``[start, end]`` in seconds; ASAP orders have ``start`` = placement."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not ranges.is_whole(self.start) or not ranges.is_whole(self.end):
            raise InvalidWindow("window bounds must be whole seconds", field="window")
        if self.end <= self.start:
            raise InvalidWindow(
                f"window ends at {self.end} s, not after it starts at {self.start} s", field="window"
            )

    @property
    def length_s(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Order:
    """An order from placement to delivery.

    ``window`` is the promise: for ASAP orders ``[placed_at, placed_at + promise]``;
    ``scheduled`` tells a customer-chosen window from an ASAP promise.
    """

    id: str
    merchant_id: str
    dropoff: Location
    placed_at: int
    ready_at: int
    window: Window
    scheduled: bool = False
    status: OrderStatus = OrderStatus.PLACED
    courier_id: str | None = None
    assigned_at: int | None = None
    picked_up_at: int | None = None
    delivered_at: int | None = None
    version: int = 1
    #: set when cancelled: a short reason code and who cancelled
    cancel_reason: str | None = None
    cancelled_by: CancelledBy | None = None
    #: the offer that gave it to its courier (see :mod:`dispatch.couriers`), and until when the
    #: courier may answer it; ``offer_expires_at`` is ``None`` once accepted
    offer_id: str | None = None
    offer_expires_at: int | None = None
    #: couriers who declined it (or let the offer expire), each with when it may be offered again
    declined_by: tuple[tuple[str, int], ...] = ()
    #: who to ask for at the merchant and at the door (personal data: never in a repr or a log)
    pickup_contact: Contact | None = field(default=None, repr=False)
    dropoff_contact: Contact | None = field(default=None, repr=False)
    #: "leave at the door": no hand-over, so no PIN
    contactless: bool = False
    #: the 4 digits the customer tells the courier, required by ``delivered`` (``None``: none)
    delivery_pin: str | None = field(default=None, repr=False)
    #: wrong PINs tried so far, and when the last one was
    pin_failures: int = 0
    pin_failed_at: int | None = None

    @property
    def offer_pending(self) -> bool:
        """Offered to its courier, not yet accepted."""
        return self.status is OrderStatus.ASSIGNED and self.offer_expires_at is not None

    def __post_init__(self) -> None:
        ranges.check_order_id(self.id)
        if self.ready_at < self.placed_at:
            raise InvalidInput(
                f"ready_at {self.ready_at} is before placed_at {self.placed_at}", field="ready_at"
            )

    @property
    def deadline(self) -> int:
        return self.window.end


class StopKind(StrEnum):
    PICKUP = "pickup"
    DROPOFF = "dropoff"
    #: an idle courier sent to wait at a merchant where orders are expected; no orders
    REPOSITION = "reposition"


@dataclass(frozen=True, slots=True)
class Stop:
    """One stop of a courier's plan with its planned times.

    A pickup collects ``order_ids`` at a merchant; a drop-off delivers one order; a
    reposition (always a plan's first stop, with no orders) moves an idle courier to a
    merchant where work is expected.
    ``arrive_at`` is when the courier gets there, ``service_at`` when the food changes
    hands (pickup or drop-off time), ``depart_at`` when it leaves.
    """

    kind: StopKind
    order_ids: tuple[str, ...]
    location: Location
    arrive_at: int
    service_at: int
    depart_at: int
    merchant_id: str | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """A courier's plan: the stops still ahead of it, in order."""

    courier_id: str
    stops: tuple[Stop, ...]
    planned_at: int
    #: when the courier reported arriving at ``stops[0]``; ``None`` while it is on its way
    arrived_at: int | None = None

    @property
    def order_ids(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for stop in self.stops:
            for oid in stop.order_ids:
                seen[oid] = None
        return tuple(seen)

    @property
    def free_at(self) -> int | None:
        return self.stops[-1].depart_at if self.stops else None


class Placement(NamedTuple):
    """An order as demand: when and where it was placed."""

    placed_at: int
    order_id: str
    merchant_id: str


@dataclass(frozen=True, slots=True)
class Assignment:
    """A decision of one tick: these orders go to this courier, in this plan."""

    courier_id: str
    order_ids: tuple[str, ...]
    route: Route
    cost: float = 0.0


class EventKind(StrEnum):
    """What an event says happened. The values are the wire format (the API's events, the
    stream, webhooks, the Redis log): they never change."""

    MERCHANT_CREATED = "merchant.created"
    MERCHANT_UPDATED = "merchant.updated"
    ORDER_PLACED = "order.placed"
    ORDER_ASSIGNED = "order.assigned"
    ORDER_RESCHEDULED = "order.rescheduled"
    #: an order's pickup or drop-off ETA moved by ``eta_change_threshold_s`` or more
    ORDER_ETA_CHANGED = "order.eta_changed"
    ORDER_UNASSIGNED = "order.unassigned"
    ORDER_RELEASED = "order.released"
    ORDER_PICKED_UP = "order.picked_up"
    ORDER_DELIVERED = "order.delivered"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_RETURNED = "order.returned"
    OFFER_ACCEPTED = "order.offer_accepted"
    OFFER_DECLINED = "order.offer_declined"
    OFFER_EXPIRED = "order.offer_expired"
    COURIER_SHIFT_STARTED = "courier.shift_started"
    COURIER_SHIFT_ENDED = "courier.shift_ended"
    COURIER_ARRIVED = "courier.arrived"
    COURIER_REPOSITIONED = "courier.repositioned"
    TICK_RECORD_SKIPPED = "tick.record_skipped"


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a city's append-only event log. ``id`` is unique within the city."""

    id: str
    seq: int
    at: int
    #: an :class:`EventKind` value (read back from a shared log, the plain string)
    kind: str
    order_id: str | None = None
    courier_id: str | None = None
    merchant_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def delivery_status(order: Order, route: Route | None) -> DeliveryStatus:
    """The integrators' status of ``order``, given its courier's plan (``None``: no plan).

    Assigned: ``created`` while the offer waits for the courier's answer, ``confirmed`` while
    the courier has other stops first, then on its way to / arrived at the pickup. Picked up:
    ``picked_up`` while other stops come first, then on its way to / arrived at the drop-off.
    """
    status = order.status
    if status is OrderStatus.PLACED or (status is OrderStatus.ASSIGNED and order.offer_pending):
        return DeliveryStatus.CREATED
    if status not in (OrderStatus.ASSIGNED, OrderStatus.PICKED_UP):
        return DeliveryStatus(status.value)
    kind = StopKind.PICKUP if status is OrderStatus.ASSIGNED else StopKind.DROPOFF
    first = route.stops[0] if route is not None and route.stops else None
    if first is None or first.kind is not kind or order.id not in first.order_ids:
        return DeliveryStatus.CONFIRMED if kind is StopKind.PICKUP else DeliveryStatus.PICKED_UP
    arrived = route is not None and route.arrived_at is not None
    if kind is StopKind.PICKUP:
        return DeliveryStatus.ARRIVED_AT_PICKUP if arrived else DeliveryStatus.ENROUTE_TO_PICKUP
    return DeliveryStatus.ARRIVED_AT_DROPOFF if arrived else DeliveryStatus.ENROUTE_TO_DROPOFF


def _vertices(polygon: dict[str, Any]) -> int | None:
    """Positions in a GeoJSON (Multi)Polygon, all rings together (``None`` when it is malformed)."""
    coordinates = polygon.get("coordinates")
    if not isinstance(coordinates, list):
        return None
    parts = coordinates if polygon.get("type") == "MultiPolygon" else [coordinates]
    try:
        return sum(len(ring) for part in parts for ring in part)
    except TypeError:
        return None


def restored(cls: type[R], *args: Any, **kwargs: Any) -> R:
    """A record as a store wrote it, not checked again (same arguments as ``cls(...)``).

    Stores read records back with this: a record written before a rule was tightened (an id
    rule, a range) stays readable, so one old record cannot make every read of a city fail.
    A tick checks the values it depends on itself (:func:`dispatch.isolation.screen`).
    """
    record: R = object.__new__(cls)
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    values = dict(zip(names, args, strict=False)) | kwargs
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in values:
            value = values[f.name]
        elif f.default is not MISSING:
            value = f.default
        elif f.default_factory is not MISSING:
            value = f.default_factory()
        else:
            raise TypeError(f"{cls.__name__} record without {f.name}")
        object.__setattr__(record, f.name, value)
    return record
