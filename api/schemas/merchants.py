"""Merchant schemas: create, update, public, serviceability, and a restaurant's order board."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from api.schemas.common import (
    Id,
    Point,
    PublicModel,
    RequestModel,
    Timestamp,
    WholeNumber,
    in_range,
    range_field,
)
from dispatch import ranges
from dispatch.models import DeliveryArea, DeliveryStatus, Merchant

__all__ = [
    "BoardOrder",
    "MerchantCreate",
    "MerchantOrders",
    "MerchantPublic",
    "MerchantUpdate",
    "PolygonArea",
    "RadiusArea",
    "Serviceability",
]

Position = Annotated[list[float], Field(min_length=2, max_length=2, description="[lng, lat]")]
Ring = Annotated[list[Position], Field(min_length=4, max_length=1000)]


def _check_vertices(rings: list[list[Position]]) -> None:
    vertices = sum(len(ring) for ring in rings)
    if vertices > ranges.POLYGON_VERTICES.high:
        raise ValueError(
            f"a delivery polygon has {vertices} vertices; it must have {ranges.POLYGON_VERTICES.describe()}"
        )


class GeoJsonPolygon(RequestModel):
    type: Literal["Polygon"]
    coordinates: Annotated[list[Ring], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _vertices(self) -> GeoJsonPolygon:
        _check_vertices(self.coordinates)
        return self


class GeoJsonMultiPolygon(RequestModel):
    type: Literal["MultiPolygon"]
    coordinates: Annotated[
        list[Annotated[list[Ring], Field(min_length=1, max_length=50)]], Field(min_length=1, max_length=50)
    ]

    @model_validator(mode="after")
    def _vertices(self) -> GeoJsonMultiPolygon:
        _check_vertices([ring for part in self.coordinates for ring in part])
        return self


class RadiusArea(RequestModel):
    """Every drop-off within ``radius_m`` metres (great circle) of the merchant."""

    radius_m: Annotated[
        float,
        Field(allow_inf_nan=False),
        range_field(ranges.DELIVERY_RADIUS_M, "metres"),
        in_range(ranges.DELIVERY_RADIUS_M, "radius_m"),
    ]


class PolygonArea(RequestModel):
    """Every drop-off inside a GeoJSON (Multi)Polygon; coordinates are ``[lng, lat]``."""

    polygon: GeoJsonPolygon | GeoJsonMultiPolygon


Area = RadiusArea | PolygonArea
_PREP_MIN = ranges.PREP_S.in_minutes()
_PROMISE_MIN = ranges.PROMISE_S.in_minutes()
PrepMinutes = Annotated[
    int,
    range_field(_PREP_MIN, "typical preparation time, minutes"),
    WholeNumber,
    in_range(_PREP_MIN, "prep_minutes"),
]
PromiseMinutes = Annotated[
    int,
    range_field(_PROMISE_MIN, "ASAP promise, minutes from placement to drop-off"),
    WholeNumber,
    in_range(_PROMISE_MIN, "promise_minutes"),
]


_OFFER = (
    "when no courier can keep an ASAP promise, a quote offers the earliest feasible scheduled "
    "window (true) or refuses with no-courier-capacity (false); null: the city's choice"
)


def area_to_domain(area: Area) -> DeliveryArea:
    if isinstance(area, RadiusArea):
        return DeliveryArea(radius_m=area.radius_m)
    polygon: dict[str, Any] = area.polygon.model_dump()
    return DeliveryArea(polygon=polygon)


class MerchantCreate(RequestModel):
    id: Id
    location: Point
    delivery_area: Area
    prep_minutes: PrepMinutes = 10
    promise_minutes: PromiseMinutes | None = Field(default=None, description="null: the city's default (30)")
    delivery_pin: bool = Field(
        default=False, description="orders handed over in person need the customer's 4-digit PIN"
    )
    offer_schedule_when_full: bool | None = Field(default=None, description=_OFFER)

    def to_domain(self) -> Merchant:
        return Merchant(
            id=self.id,
            location=self.location.to_location(),
            area=area_to_domain(self.delivery_area),
            prep_s=self.prep_minutes * 60,
            promise_s=None if self.promise_minutes is None else self.promise_minutes * 60,
            delivery_pin=self.delivery_pin,
            offer_schedule_when_full=self.offer_schedule_when_full,
        )


class MerchantUpdate(RequestModel):
    """Fields to change; absent fields keep their value (``promise_minutes: null`` and
    ``offer_schedule_when_full: null`` reset to the city's default)."""

    location: Point | None = None
    delivery_area: Area | None = None
    prep_minutes: PrepMinutes | None = None
    promise_minutes: PromiseMinutes | None = None
    delivery_pin: bool | None = None
    offer_schedule_when_full: bool | None = Field(default=None, description=_OFFER)

    def apply_to(self, merchant: Merchant) -> Merchant:
        fields = self.model_fields_set
        return Merchant(
            id=merchant.id,
            location=self.location.to_location() if self.location is not None else merchant.location,
            area=area_to_domain(self.delivery_area) if self.delivery_area is not None else merchant.area,
            prep_s=self.prep_minutes * 60 if self.prep_minutes is not None else merchant.prep_s,
            promise_s=(
                (None if self.promise_minutes is None else self.promise_minutes * 60)
                if "promise_minutes" in fields
                else merchant.promise_s
            ),
            delivery_pin=self.delivery_pin if self.delivery_pin is not None else merchant.delivery_pin,
            offer_schedule_when_full=(
                self.offer_schedule_when_full
                if "offer_schedule_when_full" in fields
                else merchant.offer_schedule_when_full
            ),
        )


class MerchantPublic(PublicModel):
    id: str
    location: Point
    delivery_area: dict[str, Any] = Field(description='{"radius_m": ...} or {"polygon": GeoJSON}')
    prep_minutes: float
    promise_minutes: float | None
    delivery_pin: bool
    offer_schedule_when_full: bool | None = Field(description=_OFFER)

    @classmethod
    def of(cls, m: Merchant) -> MerchantPublic:
        area: dict[str, Any] = (
            {"radius_m": m.area.radius_m} if m.area.radius_m is not None else {"polygon": m.area.polygon}
        )
        return cls(
            id=m.id,
            location=Point.of(m.location),
            delivery_area=area,
            prep_minutes=m.prep_s / 60,
            promise_minutes=None if m.promise_s is None else m.promise_s / 60,
            delivery_pin=m.delivery_pin,
            offer_schedule_when_full=m.offer_schedule_when_full,
        )


class Serviceability(PublicModel):
    """Whether an ASAP order to this point would be accepted now, and why not."""

    merchant_id: str
    serviceable: bool
    reason: str | None = Field(
        description=(
            "null, or the problem code: outside-delivery-area, window-infeasible, no-courier-capacity"
        )
    )
    detail: str | None
    distance_m: float | None = Field(default=None, description="merchant to drop-off, great circle")
    radius_m: float | None = None
    late_s: int | None = Field(default=None, description="how late the earliest drop-off would be")
    dropoff_eta_at: Timestamp | None = None
    deadline_at: Timestamp | None = None


class BoardOrder(PublicModel):
    """One order on a restaurant's board: when its courier arrives to collect it."""

    id: str
    external_id: str
    status: DeliveryStatus
    courier_id: str | None
    courier_arrival_at: Timestamp | None
    pickup_at: Timestamp | None
    ready_at: Timestamp
    deadline_at: Timestamp
    estimated: bool = Field(description="true while no courier is assigned")


class MerchantOrders(PublicModel):
    merchant_id: str
    now: Timestamp
    orders: list[BoardOrder]
