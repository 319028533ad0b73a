"""Order schemas: create (from a quote or direct), public view with ETAs."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import Id, Point, PublicModel, RequestModel, Timestamp, TimeWindow
from dispatch.models import CancelledBy, DeliveryStatus

__all__ = [
    "CancelRequest",
    "CourierPosition",
    "OrderCreate",
    "OrderCreateDirect",
    "OrderCreateFromQuote",
    "OrderEta",
    "OrderPublic",
]


class OrderCreateFromQuote(RequestModel):
    external_id: Id = Field(description="the client's order id, unique per merchant")
    quote_id: str = Field(min_length=1, max_length=64, pattern=r"^q_[A-Za-z0-9_-]+$")


class OrderCreateDirect(RequestModel):
    external_id: Id = Field(description="the client's order id, unique per merchant")
    merchant_id: Id
    dropoff: Point
    dropoff_window: TimeWindow | None = None
    ready_at: Timestamp | None = None


OrderCreate = OrderCreateFromQuote | OrderCreateDirect


class CancelRequest(RequestModel):
    reason: str = Field(
        default="unspecified",
        pattern=r"^[a-z][a-z0-9_]{0,63}$",
        description="a reason code, e.g. customer_request, store_closed, no_courier",
    )
    cancelled_by: CancelledBy | None = Field(
        default=None,
        description="who cancelled; an admin key may say, other keys cancel as what they are "
        "(an app for its customer, a merchant key as the merchant)",
    )


class OrderEta(PublicModel):
    courier_arrival_at: Timestamp | None = Field(description="courier at the restaurant")
    pickup_at: Timestamp | None
    dropoff_at: Timestamp | None
    estimated: bool = Field(description="true while no courier is assigned (from nearby supply)")


class CourierPosition(PublicModel):
    courier_id: str
    lat: float
    lng: float
    seen_at: Timestamp
    age_s: int = Field(ge=0, description="seconds since the courier last reported where it is")


class OrderPublic(PublicModel):
    id: str = Field(description="<merchant_id>:<external_id>")
    external_id: str
    merchant_id: str
    status: DeliveryStatus = Field(description="the delivery status; see the README's status table")
    dropoff: Point
    placed_at: Timestamp
    ready_at: Timestamp
    scheduled: bool
    dropoff_window: TimeWindow
    deadline_at: Timestamp
    courier_id: str | None
    eta: OrderEta | None = Field(description="null once delivered or cancelled")
    courier_position: CourierPosition | None = Field(description="while a courier is assigned")
    courier_imminent: bool = Field(
        description="the courier is within about 100 m or a minute of this order's next stop "
        "(the restaurant before pickup, the customer after)"
    )
    cancel_reason: str | None = Field(default=None, description="once cancelled: the reason code")
    cancelled_by: CancelledBy | None = Field(
        default=None, description="once cancelled: customer, merchant, courier or operator"
    )
