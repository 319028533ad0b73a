"""Quote schemas: ask before ordering; a quote is honoured for a few minutes."""

from __future__ import annotations

from pydantic import Field

from api.schemas.common import Id, Point, PublicModel, RequestModel, Timestamp, TimeWindow

__all__ = ["QuoteCreate", "QuotePublic"]


class QuoteCreate(RequestModel):
    merchant_id: Id
    dropoff: Point
    dropoff_window: TimeWindow | None = Field(
        default=None, description="a scheduled window (at most 30 min, not in the past); null = ASAP"
    )
    ready_at: Timestamp | None = Field(
        default=None, description="when the food is ready; null = now + prep time"
    )


class QuotePublic(PublicModel):
    id: str = Field(description="pass as quote_id to POST /v1/orders before expires_at")
    merchant_id: str
    dropoff: Point
    distance_m: float
    scheduled: bool
    ready_at: Timestamp
    pickup_eta_at: Timestamp
    dropoff_eta_at: Timestamp
    dropoff_window: TimeWindow = Field(description="the promise: ASAP orders [now, now + promise]")
    deadline_at: Timestamp
    created_at: Timestamp
    expires_at: Timestamp
    offered_instead: bool = Field(
        default=False,
        description=(
            "no courier could keep the ASAP promise: dropoff_window is the earliest feasible "
            "scheduled window, offered instead (the city's offer_schedule_when_full)"
        ),
    )
