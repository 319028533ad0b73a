"""Courier schemas: shifts, position pings, events from the courier app, routes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from api.schemas.common import (
    Latitude,
    Longitude,
    OrderId,
    Point,
    PublicModel,
    RequestModel,
    Timestamp,
    WholeNumber,
    in_range,
    range_field,
)
from dispatch import ranges
from dispatch.models import Courier, CourierStatus, Route, StopKind

__all__ = [
    "CourierEvent",
    "CourierEventResult",
    "CourierPublic",
    "OfferPublic",
    "PositionUpdate",
    "RoutePublic",
    "ShiftStart",
    "StopPublic",
]

#: an offer id as the engine makes them (``dispatch.ticking.offer_of``)
OFFER_ID_PATTERN = r"^of-[0-9]{1,12}-[0-9a-f]{10}$"


_SHIFT_MIN = ranges.SHIFT_S.in_minutes()


class ShiftStart(RequestModel):
    location: Point
    duration_minutes: Annotated[
        int,
        range_field(_SHIFT_MIN, "the shift ends this long from now"),
        WholeNumber,
        in_range(_SHIFT_MIN, "duration_minutes"),
    ]
    speed_mps: Annotated[
        float,
        Field(allow_inf_nan=False),
        range_field(ranges.SPEED_MPS, "typical speed, metres per second"),
        in_range(ranges.SPEED_MPS, "speed_mps"),
    ] = 4.5
    capacity: Annotated[
        int,
        range_field(ranges.CAPACITY, "orders carried at once"),
        WholeNumber,
        in_range(ranges.CAPACITY, "capacity"),
    ] = 3


class PositionUpdate(RequestModel):
    """A position ping: the hottest call of the API."""

    lat: Latitude
    lng: Longitude


class Arrived(RequestModel):
    type: Literal["arrived"]


class PickedUp(RequestModel):
    type: Literal["picked_up"]
    order_id: OrderId


class Delivered(RequestModel):
    type: Literal["delivered"]
    order_id: OrderId
    pin: str | None = Field(
        default=None,
        pattern=r"^[0-9]{4}$",
        description="the customer's delivery PIN, when the order has one (422 wrong, 429 too many wrong)",
    )


class Returned(RequestModel):
    """At the door, the order could not be handed over: the courier takes it back."""

    type: Literal["returned"]
    order_id: OrderId


class Rejected(RequestModel):
    """The courier turns down an order it has not picked up; it goes back to the pool."""

    type: Literal["rejected"]
    order_id: OrderId


CourierEvent = Annotated[Arrived | PickedUp | Delivered | Returned | Rejected, Field(discriminator="type")]


class CourierPublic(PublicModel):
    id: str
    status: CourierStatus
    location: Point
    seen_at: Timestamp
    shift_end_at: Timestamp
    speed_mps: float
    capacity: int

    @classmethod
    def of(cls, c: Courier) -> CourierPublic:
        return cls(
            id=c.id,
            status=c.status,
            location=Point.of(c.location),
            seen_at=c.seen_at,
            shift_end_at=c.shift_end,
            speed_mps=c.speed_mps,
            capacity=c.capacity,
        )


class StopPublic(PublicModel):
    kind: StopKind
    order_ids: list[str]
    merchant_id: str | None
    location: Point
    arrive_at: Timestamp
    service_at: Timestamp = Field(description="when the food changes hands")
    depart_at: Timestamp


class RoutePublic(PublicModel):
    courier_id: str
    planned_at: Timestamp
    arrived_at: Timestamp | None = Field(description="when the courier reported being at the first stop")
    stops: list[StopPublic]

    @classmethod
    def of(cls, r: Route) -> RoutePublic:
        return cls(
            courier_id=r.courier_id,
            planned_at=r.planned_at,
            arrived_at=r.arrived_at,
            stops=[
                StopPublic(
                    kind=s.kind,
                    order_ids=list(s.order_ids),
                    merchant_id=s.merchant_id,
                    location=Point.of(s.location),
                    arrive_at=s.arrive_at,
                    service_at=s.service_at,
                    depart_at=s.depart_at,
                )
                for s in r.stops
            ],
        )


class CourierEventResult(PublicModel):
    courier_id: str
    event: Literal["arrived", "picked_up", "delivered", "returned", "rejected"]
    order_id: str | None
    route: RoutePublic = Field(description="the courier's plan after the event")


class OfferPublic(PublicModel):
    """An assignment offered to a courier: it accepts or declines it by ``expires_at``."""

    offer_id: str
    courier_id: str
    status: Literal["pending", "accepted", "declined"]
    order_ids: list[str]
    expires_at: Timestamp | None = Field(description="answer by then; null once accepted or declined")
    route: RoutePublic = Field(description="the courier's plan after the answer")
