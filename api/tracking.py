"""The public tracking page of an order: a token in its ``tracking_url``, and what it shows.

A token is the order id and an HMAC of it with the city's tracking secret (``base64url(id).
base64url(mac[:16])``): it cannot be guessed or changed into another order's, and it needs no
stored record. What the page shows is :class:`TrackingView`: the order's status, its ETA and
promise, where it is picked up and dropped off, and its courier's last position while one carries
it (never the courier's id, name or route beyond that, never another order).

The secret is ``DISPATCH_TRACKING_SECRET`` when set; otherwise one random secret per city, kept
in Redis (the first worker to start makes it) or, over in-memory state, in this process.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dispatch.engine import Dispatcher
from dispatch.errors import NotFound
from dispatch.models import Location, OrderStatus

if TYPE_CHECKING:
    from dispatch.redis_store import Client

__all__ = ["TrackingTokens", "TrackingView", "tracking_view"]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TrackingTokens:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the tracking secret must be at least 16 bytes")
        self._secret = secret

    @staticmethod
    def secret_in_redis(client: Client, city: str) -> bytes:
        """The city's secret in Redis, made by whichever worker asks first."""
        from dispatch.redis_store import city_prefix, redis_errors_as_unavailable

        @redis_errors_as_unavailable
        def shared() -> str:
            key = f"{city_prefix(city)}tracking_secret"
            client.set(key, secrets.token_hex(32), nx=True)
            return str(client.get(key))

        return shared().encode()

    def _mac(self, order_id: str) -> str:
        return _b64(hmac.new(self._secret, order_id.encode(), hashlib.sha256).digest()[:16])

    def token_for(self, order_id: str) -> str:
        return f"{_b64(order_id.encode())}.{self._mac(order_id)}"

    def order_of(self, token: str) -> str | None:
        """The order a token names, or None for a token this city did not make."""
        encoded, _, mac = token.partition(".")
        try:
            order_id = _unb64(encoded).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return order_id if hmac.compare_digest(mac, self._mac(order_id)) else None


@dataclass(frozen=True, slots=True)
class TrackingView:
    status: str
    #: when the food reaches the door: the ETA while on the way, the time it did once delivered
    dropoff_at: int | None
    pickup_at: int | None
    promised_by: int
    pickup: Location
    dropoff: Location
    #: the courier's last position and when it was seen, while a courier carries the order
    courier: Location | None
    courier_seen_at: int | None
    now: int


def tracking_view(dispatcher: Dispatcher, order_id: str, now: int) -> TrackingView | None:
    """What the tracking page of ``order_id`` shows, or None if there is no such order."""
    try:
        order = dispatcher.order(order_id)
        eta = dispatcher.eta(order_id, now)
        merchant = dispatcher.merchant(order.merchant_id)
    except NotFound:
        return None
    courier_at: Location | None = None
    seen_at: int | None = None
    if order.courier_id is not None and order.status in (OrderStatus.ASSIGNED, OrderStatus.PICKED_UP):
        try:
            courier = dispatcher.courier(order.courier_id)
            courier_at, seen_at = courier.location, courier.seen_at
        except NotFound:
            pass
    return TrackingView(
        status=str(order.status),
        dropoff_at=eta.dropoff_at,
        pickup_at=eta.pickup_at,
        promised_by=eta.deadline,
        pickup=merchant.location,
        dropoff=order.dropoff,
        courier=courier_at,
        courier_seen_at=seen_at,
        now=now,
    )
