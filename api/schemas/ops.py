"""Schemas of dispatch control, events, stats and health."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from api.schemas.common import PublicModel, Timestamp
from dispatch.models import Event

__all__ = [
    "AssignmentPublic",
    "EventPage",
    "EventPublic",
    "Health",
    "RepositionPublic",
    "Stats",
    "TickPublic",
]


class AssignmentPublic(PublicModel):
    courier_id: str
    order_ids: list[str]


class RepositionPublic(PublicModel):
    courier_id: str
    merchant_id: str = Field(description="where the idle courier is sent to wait for work")
    arrive_at: Timestamp


class TickPublic(PublicModel):
    now: Timestamp
    assignments: list[AssignmentPublic]
    repositions: list[RepositionPublic]
    open_orders: int = Field(description="placed orders still waiting for a courier")
    available_couriers: int
    duration_ms: float


class EventPublic(PublicModel):
    id: str = Field(description="unique in the city; use it to de-duplicate")
    seq: int = Field(description="position in the log; resume with after=seq or Last-Event-ID")
    at: Timestamp
    kind: str = Field(description="order.placed, order.assigned, order.picked_up, order.delivered, ...")
    order_id: str | None
    courier_id: str | None
    merchant_id: str | None
    data: dict[str, Any]

    @classmethod
    def of(cls, event: Event) -> EventPublic:
        return cls(
            id=event.id,
            seq=event.seq,
            at=event.at,
            kind=event.kind,
            order_id=event.order_id,
            courier_id=event.courier_id,
            merchant_id=event.merchant_id,
            data=event.data,
        )


class EventPage(PublicModel):
    events: list[EventPublic]
    next_after: int = Field(description="pass as after= to read on")


class Stats(PublicModel):
    """City-wide aggregates, for analysts."""

    now: Timestamp
    merchants: int
    orders_by_status: dict[str, int] = Field(description="open statuses: placed, assigned, picked_up")
    couriers_on_shift: dict[str, int] = Field(description="idle, busy")
    events: int
    ticks: int
    last_tick_at: Timestamp | None


class Health(PublicModel):
    status: str = Field(description="ok, or degraded while dispatch ticks fail (see failing_ticks)")
    failing_ticks: int = Field(default=0, description="dispatch ticks failed in a row")
    city: str
    background_tick: bool
    last_tick_at: Timestamp | None
    dispatcher: str = Field(
        default="embedded",
        description="embedded (in-memory state), leader (this process ticks the city) or standby",
    )
