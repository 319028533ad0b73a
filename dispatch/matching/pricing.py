"""What a bundle costs on each candidate courier (and on a courier already waiting at its
merchant): lateness, click-to-door, food waiting and the ride, in the policy's weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.matching.assignment import RESERVE_ROUNDS
from dispatch.matching.bundling import drop_offsets
from dispatch.matching.policy import Bundle, CourierSupply
from dispatch.models import Merchant
from dispatch.timing import handover_s, leave_s

__all__ = ["NO_ARCS", "Option", "Prices", "Tick", "join_arcs"]

#: A bundle's candidate couriers, cheapest first: (right-hand nodes, costs, timely), where
#: timely means the courier would not reach the food too early.
Option = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class Tick:
    """What pricing needs of the whole tick: the rules and the supply, by supply position."""

    config: DispatchConfig
    travel: TravelModel
    speed_values: Sequence[float]
    speed_group: np.ndarray
    shift_end: np.ndarray
    capacity: np.ndarray

    @property
    def typical_speed(self) -> float:
        """The median speed, for judging whether orders are on time together."""
        return self.speed_values[len(self.speed_values) // 2]


@dataclass(frozen=True, slots=True)
class Prices:
    """Prices bundles of one merchant for its candidate couriers (and waiting joiners)."""

    merchant: Merchant
    cand: np.ndarray
    to_merchant: np.ndarray
    arrive: np.ndarray
    joiners: Sequence[tuple[int, CourierSupply]]
    tick: Tick
    # the candidates' speed groups, shift ends and capacities, the same for every bundle
    group: np.ndarray = field(init=False)
    shift_end: np.ndarray = field(init=False)
    capacity: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "group", self.tick.speed_group[self.cand])
        object.__setattr__(self, "shift_end", self.tick.shift_end[self.cand])
        object.__setattr__(self, "capacity", self.tick.capacity[self.cand])

    def of(self, bundle: Bundle) -> Option | None:
        """The bundle's cheapest couriers, or None when nobody can carry it."""
        config, cand = self.tick.config, self.cand
        hp = handover_s(config.pickup_service_s)
        ready = bundle.ready_at
        # each candidate rides at its own speed
        seq, offsets = drop_offsets(
            bundle.orders, self.merchant, config, self.tick.travel, self.tick.speed_values
        )
        service = np.maximum(ready, self.arrive + hp)  # timing.pickup_at, for every candidate at once
        depart = service + leave_s(config.pickup_service_s)
        late = np.zeros(len(cand), dtype=np.int64)
        click_to_door = np.zeros(len(cand), dtype=np.int64)
        food_wait = np.zeros(len(cand), dtype=np.int64)
        for col, order in enumerate(seq):
            drop = depart + offsets[self.group, col]
            late += np.maximum(0, drop - order.window.end)
            click_to_door += drop - order.placed_at
            food_wait += service - order.ready_at
        cost = (
            config.lateness_weight * late
            + config.click_to_door_weight * click_to_door
            + config.food_wait_weight * food_wait
            + config.travel_weight * self.to_merchant
        )
        ok = (service <= self.shift_end) & (self.capacity >= bundle.size)
        idx = np.nonzero(ok)[0]
        join_nodes, join_cost = (
            join_arcs(bundle, self.merchant, self.joiners, config, self.tick.travel)
            if self.joiners
            else (NO_ARCS, NO_ARCS)
        )
        if idx.size == 0 and join_nodes.size == 0:
            return None
        reserve = min(idx.size, RESERVE_ROUNDS * config.candidates_per_bundle)
        if idx.size > reserve:
            idx = idx[np.argpartition(cost[idx], reserve - 1)[:reserve]]
        right, arc_cost = cand[idx], cost[idx]
        timely = self.arrive[idx] + hp >= ready - config.max_early_s
        if join_nodes.size:
            right = np.concatenate([right, join_nodes])
            arc_cost = np.concatenate([arc_cost, join_cost])
            # a courier already at the food is never too early
            timely = np.concatenate([timely, np.ones(join_nodes.size, dtype=bool)])
        by_cost = np.argsort(arc_cost, kind="stable")
        return right[by_cost], arc_cost[by_cost], timely[by_cost]


def join_arcs(
    bundle: Bundle,
    merchant: Merchant,
    joiners: Sequence[tuple[int, CourierSupply]],
    config: DispatchConfig,
    travel: TravelModel,
) -> tuple[np.ndarray, np.ndarray]:
    """Arcs from a bundle to the couriers waiting at its merchant: join their pickup.

    A courier qualifies when the bundle's food is ready at most ``join_max_wait_s`` after its
    own, and none of its orders would reach its door more than ``join_max_delay_s`` later
    than planned, and no promise is broken that was not already: the assignment leaves
    nothing unserved while it can, so without these bounds it would rather load a waiting
    courier with anything than leave an order for a later tick. The cost is the bundle's
    own (click-to-door and food waiting, no ride to the merchant) plus what the courier's
    orders lose.
    """
    nodes, costs = [], []
    for node, s in joiners:
        held = s.collecting
        assert held is not None
        together = (*held.orders, *bundle.orders)
        if len(together) > min(config.max_bundle_size, s.courier.capacity):
            continue
        service = max(held.pickup_at, bundle.ready_at)
        if service > s.courier.shift_end or service - held.pickup_at > config.join_max_wait_s:
            continue
        depart = service + leave_s(config.pickup_service_s)
        sequence, offsets = drop_offsets(together, merchant, config, travel, [s.courier.speed_mps])
        drop = {o.id: depart + int(off) for o, off in zip(sequence, offsets[0], strict=True)}
        planned = list(zip(held.orders, held.dropoff_at, strict=True))
        # the courier's own orders can only lose (an estimate better than their plan gains nothing)
        delay = [max(0, drop[o.id] - d) for o, d in planned]
        if max(delay) > config.join_max_delay_s:
            continue
        for (o, d), extra in zip(planned, delay, strict=True):
            drop[o.id] = d + extra
        # as for bundles: nobody's promise is broken by carrying them together
        late = sum(max(0, drop[o.id] - o.window.end) for o in together)
        if late > sum(max(0, d - o.window.end) for o, d in planned):
            continue
        click_to_door = sum(drop[o.id] - o.placed_at for o in bundle.orders) + sum(delay)
        food_wait = sum(service - o.ready_at for o in bundle.orders)
        food_wait += len(held.orders) * (service - held.pickup_at)
        nodes.append(node)
        costs.append(config.click_to_door_weight * click_to_door + config.food_wait_weight * food_wait)
    return np.array(nodes, dtype=np.int64), np.array(costs, dtype=np.int64)


NO_ARCS = np.zeros(0, dtype=np.int64)
