"""Order schemas: create (from a quote or direct), public view with ETAs."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import Id, Point, PublicModel, RequestModel, Timestamp, TimeWindow
from dispatch.models import CancelledBy, Contact, DeliveryStatus, OrderDetails

__all__ = [
    "CancelRequest",
    "ContactIn",
    "ContactPublic",
    "CourierPosition",
    "OrderCreate",
    "OrderCreateDirect",
    "OrderCreateFromQuote",
    "OrderEta",
    "OrderPublic",
]


class ContactIn(RequestModel):
    """Who to ask for at a stop. Personal data: shown only to keys that may see the order (and
    the courier carrying it), never logged, never in events."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, min_length=3, max_length=32, pattern=r"^\+?[0-9][0-9 ()./-]*$")
    instructions: str | None = Field(default=None, max_length=500)

    def to_contact(self) -> Contact:
        return Contact(name=self.name, phone=self.phone, instructions=self.instructions)


class ContactPublic(PublicModel):
    name: str | None
    phone: str | None
    instructions: str | None

    @classmethod
    def of(cls, c: Contact | None) -> ContactPublic | None:
        return None if c is None else cls(name=c.name, phone=c.phone, instructions=c.instructions)


class _OrderDetailsIn(RequestModel):
    pickup_contact: ContactIn | None = None
    dropoff_contact: ContactIn | None = None
    contactless: bool = Field(
        default=False, description="leave at the door: no hand-over, so no delivery PIN"
    )

    def details(self, delivery_pin: str | None) -> OrderDetails:
        return OrderDetails(
            pickup_contact=self.pickup_contact.to_contact() if self.pickup_contact else None,
            dropoff_contact=self.dropoff_contact.to_contact() if self.dropoff_contact else None,
            contactless=self.contactless,
            delivery_pin=delivery_pin,
        )


class OrderCreateFromQuote(_OrderDetailsIn):
    external_id: Id = Field(description="the client's order id, unique per merchant")
    quote_id: str = Field(min_length=1, max_length=64, pattern=r"^q_[A-Za-z0-9_-]+$")


class OrderCreateDirect(_OrderDetailsIn):
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
        strict=False,  # the enum's value, from JSON
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
    contactless: bool = False
    pickup_contact: ContactPublic | None = None
    dropoff_contact: ContactPublic | None = None
    delivery_pin: str | None = Field(
        default=None,
        description="the 4 digits the customer tells the courier at the door; only in the "
        "response that creates the order (the merchant asks for PINs; contactless orders have none)",
    )
    cancel_reason: str | None = Field(default=None, description="once cancelled: the reason code")
    cancelled_by: CancelledBy | None = Field(
        default=None, description="once cancelled: customer, merchant, courier or operator"
    )
    tracking_url: str | None = Field(
        default=None,
        description="the order's public tracking page (no key: its token is unguessable); "
        "share it with the customer",
    )
