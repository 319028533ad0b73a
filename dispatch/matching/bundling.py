"""Which orders of one merchant ride together: the partition by ready time, and the
alternatives the set packing may choose from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.matching.policy import Bundle
from dispatch.models import Merchant, Order
from dispatch.timing import handover_s, leave_s

if TYPE_CHECKING:
    from dispatch.matching.pricing import Tick

__all__ = ["PAIR_POOL", "alternatives", "by_ready", "drop_offsets", "make_bundles", "on_time_together"]

#: Pairs are formed among a merchant's first orders, by ready time.
PAIR_POOL = 6


def make_bundles(
    orders: Sequence[Order],
    merchant: Merchant,
    target_size: int,
    config: DispatchConfig,
    travel: TravelModel,
    speed_mps: float,
    now: int = 0,
) -> list[Bundle]:
    """Partition one merchant's orders into bundles of at most ``target_size``.

    Orders are taken by ready time; an order joins the open bundle when its ready time is
    within ``bundle_ready_gap_s`` of the bundle's first order and, picking the bundle up the
    moment it is ready, every order of it is still delivered within its promise. Food that
    is ready already counts as ready ``now``: two orders waiting for a courier are ready
    together, however long ago each was cooked.
    """

    def ready(o: Order) -> int:
        return max(o.ready_at, now)

    ordered = by_ready(orders, now)
    if target_size <= 1:
        return [Bundle(merchant.id, (o,)) for o in ordered]
    bundles: list[Bundle] = []
    current: list[Order] = []
    for order in ordered:
        if (
            current
            and len(current) < target_size
            and ready(order) - ready(current[0]) <= config.bundle_ready_gap_s
            and on_time_together([*current, order], merchant, config, travel, speed_mps)
        ):
            current.append(order)
            continue
        if current:
            bundles.append(Bundle(merchant.id, tuple(current)))
        current = [order]
    if current:
        bundles.append(Bundle(merchant.id, tuple(current)))
    return bundles


def by_ready(orders: Sequence[Order], now: int) -> list[Order]:
    """Orders by ready time (food ready already counts as ready ``now``), then placement."""
    return sorted(orders, key=lambda o: (max(o.ready_at, now), o.placed_at, o.id))


def drop_offsets(
    orders: Sequence[Order],
    merchant: Merchant,
    config: DispatchConfig,
    travel: TravelModel,
    speeds_mps: Sequence[float],
) -> tuple[list[Order], np.ndarray]:
    """Drop-off sequence (nearest first) and, per speed, each hand-over's delay after leaving.

    Returns the sequence and an array of shape ``(len(speeds_mps), len(orders))``.
    """
    half, rest = handover_s(config.dropoff_service_s), leave_s(config.dropoff_service_s)
    remaining = list(orders)
    here = merchant.location
    sequence: list[Order] = []
    while remaining:
        nxt = min(remaining, key=lambda o: (travel.travel_s(here, o.dropoff, speeds_mps[0]), o.id))
        remaining.remove(nxt)
        sequence.append(nxt)
        here = nxt.dropoff
    offsets = np.zeros((len(speeds_mps), len(sequence)), dtype=np.int64)
    for row, speed in enumerate(speeds_mps):
        here, clock = merchant.location, 0
        for col, order in enumerate(sequence):
            clock += travel.travel_s(here, order.dropoff, speed) + half
            offsets[row, col] = clock
            clock += rest
            here = order.dropoff
    return sequence, offsets


def on_time_together(
    orders: Sequence[Order], merchant: Merchant, config: DispatchConfig, travel: TravelModel, speed_mps: float
) -> bool:
    ready = max(o.ready_at for o in orders)
    depart = ready + leave_s(config.pickup_service_s)
    sequence, offsets = drop_offsets(orders, merchant, config, travel, [speed_mps])
    return all(depart + int(off) <= o.window.end for o, off in zip(sequence, offsets[0], strict=True))


def alternatives(orders: Sequence[Order], merchant: Merchant, tick: Tick, now: int) -> list[Bundle]:
    """Bundles the assignment may choose instead of the partition: each order alone, every
    pair of the merchant's first orders (by ready time) that is ready within
    ``bundle_ready_gap_s`` and on time together, and the larger bundles :func:`make_bundles`
    forms."""
    config, travel, speed_mps = tick.config, tick.travel, tick.typical_speed
    pool = by_ready(orders, now)[:PAIR_POOL]
    found = [Bundle(merchant.id, (o,)) for o in orders]
    for i, first in enumerate(pool):
        for second in pool[i + 1 :]:
            gap = max(second.ready_at, now) - max(first.ready_at, now)
            if gap <= config.bundle_ready_gap_s and on_time_together(
                (first, second), merchant, config, travel, speed_mps
            ):
                found.append(Bundle(merchant.id, (first, second)))
    if config.max_bundle_size > 2:
        larger = make_bundles(orders, merchant, config.max_bundle_size, config, travel, speed_mps, now)
        found += [b for b in larger if b.size > 2]
    return found
