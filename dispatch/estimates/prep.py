"""Preparation delay learned online: how long after the ready time the engine was given the
food is really ready, per merchant and hour of day, shrunk towards the city's figure.

Observations come only from what already happened (nothing from the future):

- a pickup where the courier waited for the food measures the ready time exactly (the food
  changed hands the moment it was ready);
- a pickup where the food was ready before the courier's hand-over is *censored*: the food was
  ready at some unknown earlier time, so the delay is at most ``picked_up_at - ready_at``. Such a
  bound says nothing when it is above the current estimate; below it, the estimate is too late
  and the bound is taken as the observation (it can pull the estimate down to the bound, never
  below);
- a merchant's "food ready" (``POST /v1/orders/{id}/ready``) is exact.

A merchant's estimate is the mean of its observations plus ``prep_prior_orders`` pseudo-
observations of the city's mean; an hour's, the same towards the merchant's.

>>> PrepDelay(0, 0.0).shrunk(prior_s=120.0, prior_n=5)
120.0
>>> PrepDelay(5, 1500.0).shrunk(prior_s=0.0, prior_n=5)
150.0
"""

from __future__ import annotations

import json
from typing import NamedTuple

from dispatch.lookups import Engine
from dispatch.models import Merchant, Order
from dispatch.timing import handover_s

__all__ = [
    "PrepDelay",
    "expected_ready_at",
    "learned_delay_s",
    "observe_pickup",
    "observe_ready",
    "remember_stated",
    "stated_ready_at",
]

_CITY = "prep:city"


class PrepDelay(NamedTuple):
    """Observations of one merchant (or hour, or the city): their count and sum of delays."""

    n: int
    total_s: float

    def shrunk(self, prior_s: float, prior_n: int) -> float:
        """The mean, with ``prior_n`` pseudo-observations of ``prior_s``."""
        return (self.total_s + prior_n * prior_s) / (self.n + prior_n) if self.n + prior_n else prior_s

    def plus(self, delay_s: float) -> PrepDelay:
        return PrepDelay(self.n + 1, self.total_s + delay_s)


def _hour(at: int) -> int:
    return (at // 3600) % 24


def _keys(merchant_id: str, at: int) -> tuple[str, str, str]:
    return _CITY, f"prep:m:{merchant_id}", f"prep:m:{merchant_id}:h{_hour(at)}"


def _read(ctx: Engine, keys: tuple[str, ...]) -> list[PrepDelay]:
    raw = ctx.store.learned(keys)
    out = []
    for k in keys:
        value = raw.get(k)
        out.append(PrepDelay(*json.loads(value)) if value is not None else PrepDelay(0, 0.0))
    return out


def _estimate(ctx: Engine, city: PrepDelay, merchant: PrepDelay, hour: PrepDelay) -> float:
    k = ctx.config.prep_prior_orders
    city_s = city.total_s / city.n if city.n else 0.0
    return hour.shrunk(merchant.shrunk(city_s, k), k)


def learned_delay_s(ctx: Engine, merchant_id: str, ready_at: int) -> int:
    """How late food stated ready at ``ready_at`` is expected to be at ``merchant_id`` (0 with
    learning off or nothing learned)."""
    if not ctx.config.learning:
        return 0
    return round(_estimate(ctx, *_read(ctx, _keys(merchant_id, ready_at))))


def expected_ready_at(ctx: Engine, merchant: Merchant, ready_at: int, now: int) -> int:
    """When food stated ready at ``ready_at`` is expected to be ready (never before ``now``)."""
    delay = learned_delay_s(ctx, merchant.id, ready_at)
    return ready_at if delay == 0 else max(now, ready_at + delay)


def remember_stated(ctx: Engine, order_id: str, stated_ready_at: int) -> None:
    """Keep the ready time an order was placed with, when the engine expects another one: its
    ``ready_at`` is the expected time, and learning measures against the stated one."""
    ctx.store.set_learned({f"stated:{order_id}": str(stated_ready_at)})


def stated_ready_at(ctx: Engine, order: Order) -> int:
    """The ready time ``order`` was placed with (its ``ready_at`` unless a delay was expected)."""
    raw = ctx.store.learned([f"stated:{order.id}"]).get(f"stated:{order.id}")
    return order.ready_at if raw is None else int(raw)


def _observe(ctx: Engine, order: Order, at: int, *, exact: bool) -> None:
    stated = stated_ready_at(ctx, order)
    delay_s = at - stated
    keys = _keys(order.merchant_id, stated)
    city, merchant, hour = _read(ctx, keys)
    if not exact:
        estimate = _estimate(ctx, city, merchant, hour)
        if delay_s >= estimate:
            return  # the food was ready no later than this: no news against the estimate
    ctx.store.set_learned(
        {k: json.dumps(list(v.plus(delay_s))) for k, v in zip(keys, (city, merchant, hour), strict=True)}
        | ({f"ready:{order.id}": "1"} if exact else {})
    )


def observe_pickup(ctx: Engine, order: Order, arrived_at: int | None, picked_up_at: int) -> None:
    """Learn from ``order`` (as it was before the pickup) picked up at ``picked_up_at`` by a
    courier that arrived at ``arrived_at``: exact if the courier waited for the food, censored
    otherwise, and nothing when the merchant already said when it was ready."""
    if not ctx.config.learning or ctx.store.learned([f"ready:{order.id}"]):
        return
    handover = None if arrived_at is None else arrived_at + handover_s(ctx.config.pickup_service_s)
    waited = handover is not None and picked_up_at > handover
    _observe(ctx, order, picked_up_at, exact=waited)


def observe_ready(ctx: Engine, order: Order, now: int) -> None:
    """Learn from a merchant saying ``order``'s food is ready at ``now`` (exact; once per order)."""
    if not ctx.config.learning or ctx.store.learned([f"ready:{order.id}"]):
        return
    _observe(ctx, order, now, exact=True)
