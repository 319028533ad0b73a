"""Schemas of webhook endpoints and their deliveries."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, JsonValue, StringConstraints

from api.schemas.common import PublicModel, RequestModel
from api.webhooks.store import Attempt, Endpoint

__all__ = [
    "DeliveryAttempt",
    "DeliveryLog",
    "WebhookCreate",
    "WebhookCreated",
    "WebhookList",
    "WebhookPublic",
]

EventType = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z_]{1,32}\.[a-z_]{1,32})$")]

#: examples for the OpenAPI document (api/openapi_docs.py)
CREATE_EXAMPLE: dict[str, JsonValue] = {
    "url": "https://app.example.com/hooks/dispatch",
    "event_types": ["order.assigned", "order.picked_up", "order.delivered"],
    "description": "order updates for the customer app",
}
ENDPOINT_EXAMPLE: dict[str, JsonValue] = {
    "id": "wh_3f9a1c0b7d2e4a61",
    "url": "https://app.example.com/hooks/dispatch",
    "event_types": ["order.assigned", "order.picked_up", "order.delivered"],
    "description": "order updates for the customer app",
    "created_at": 1750000000,
    "disabled": False,
    "disabled_at": None,
    "disabled_reason": None,
    "failing_since": None,
}


class WebhookCreate(RequestModel):
    url: str = Field(
        min_length=8,
        max_length=2000,
        description="http(s) URL that receives a POST per event; private and loopback hosts are refused",
    )
    event_types: list[EventType] = Field(
        default=["*"],
        min_length=1,
        max_length=50,
        description='event kinds to receive (e.g. "order.delivered"), or "*" for all',
    )
    description: str = Field(default="", max_length=200)


class WebhookPublic(PublicModel):
    id: str
    url: str
    event_types: list[str]
    description: str
    created_at: int = Field(description="POSIX seconds (UTC)")
    disabled: bool = Field(description="no more deliveries: it failed for too long (see disabled_reason)")
    disabled_at: int | None
    disabled_reason: str | None
    failing_since: int | None = Field(description="when its deliveries started failing (null: they succeed)")

    @classmethod
    def of(cls, e: Endpoint) -> WebhookPublic:
        return cls(
            id=e.id,
            url=e.url,
            event_types=list(e.event_types),
            description=e.description,
            created_at=e.created_at,
            disabled=e.disabled_at is not None,
            disabled_at=e.disabled_at,
            disabled_reason=e.disabled_reason,
            failing_since=e.failing_since,
        )


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="signs every delivery (Dispatch-Signature); shown this once only")


class WebhookList(PublicModel):
    webhooks: list[WebhookPublic]


ATTEMPT_EXAMPLE: dict[str, JsonValue] = {
    "event_id": "berlin-1042",
    "event_kind": "order.delivered",
    "attempt": 2,
    "at": 1750000123,
    "outcome": "retrying",
    "status_code": 503,
    "error": "answered 503",
    "duration_ms": 41,
    "next_attempt_at": 1750000312,
}


class DeliveryAttempt(PublicModel):
    event_id: str
    event_kind: str
    attempt: int = Field(description="1 for the first POST of this event to this endpoint")
    at: int = Field(description="POSIX seconds (UTC)")
    outcome: str = Field(description="delivered, retrying (see next_attempt_at) or gave-up")
    status_code: int | None = Field(description="the receiver's answer; null when it gave none")
    error: str | None
    duration_ms: int
    next_attempt_at: int | None

    @classmethod
    def of(cls, a: Attempt) -> DeliveryAttempt:
        return cls(
            event_id=a.event_id,
            event_kind=a.event_kind,
            attempt=a.attempt,
            at=a.at,
            outcome=a.outcome,
            status_code=a.status_code,
            error=a.error,
            duration_ms=a.duration_ms,
            next_attempt_at=a.next_attempt_at,
        )


class DeliveryLog(PublicModel):
    webhook_id: str
    deliveries: list[DeliveryAttempt] = Field(description="newest first; the last 1,000 attempts")
