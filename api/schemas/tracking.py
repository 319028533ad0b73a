"""The public tracking page's data: one order, as its customer may see it."""

from __future__ import annotations

from pydantic import Field, JsonValue

from api.schemas.common import PublicModel
from api.tracking import TrackingView

__all__ = ["TrackedPoint", "TrackingPublic"]


class TrackedPoint(PublicModel):
    lat: float
    lng: float


#: an example for the OpenAPI document (api/openapi_docs.py)
EXAMPLE: dict[str, JsonValue] = {
    "status": "picked_up",
    "dropoff_at": 1750001500,
    "pickup_at": 1750000900,
    "promised_by": 1750001800,
    "pickup": {"lat": 52.52, "lng": 13.405},
    "dropoff": {"lat": 52.53, "lng": 13.415},
    "courier": {"lat": 52.525, "lng": 13.41},
    "courier_seen_at": 1750001190,
    "courier_name": None,
    "now": 1750001200,
}


class TrackingPublic(PublicModel):
    """One order's progress; nothing of other orders, and of its courier only the last position."""

    status: str = Field(description="the order's status")
    dropoff_at: int | None = Field(description="ETA at the door (POSIX seconds); when it was, once delivered")
    pickup_at: int | None = Field(description="when the food is (or was) picked up")
    promised_by: int = Field(description="the end of the promised window")
    pickup: TrackedPoint
    dropoff: TrackedPoint
    courier: TrackedPoint | None = Field(
        description="the courier's last position, while one carries the order"
    )
    courier_seen_at: int | None
    courier_name: str | None = Field(
        default=None, description="the courier's first name at most, when the service knows one"
    )
    now: int

    @classmethod
    def of(cls, v: TrackingView) -> TrackingPublic:
        def point(loc: object) -> TrackedPoint:
            return TrackedPoint(lat=round(loc.lat, 6), lng=round(loc.lng, 6))  # type: ignore[attr-defined]

        return cls(
            status=v.status,
            dropoff_at=v.dropoff_at,
            pickup_at=v.pickup_at,
            promised_by=v.promised_by,
            pickup=point(v.pickup),
            dropoff=point(v.dropoff),
            courier=point(v.courier) if v.courier is not None else None,
            courier_seen_at=v.courier_seen_at,
            now=v.now,
        )
