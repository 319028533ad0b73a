"""The optimizing policy: bundling, pricing and the exact assignment, committing an order only
when waiting cannot make it better; idle couriers sent toward the demand."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.matching.assignment import UNASSIGNED_COST, assign_in_rounds
from dispatch.matching.bundling import make_bundles
from dispatch.matching.candidates import Candidates, eligible
from dispatch.matching.packing import Group, choose_bundles
from dispatch.matching.policy import Bundle, CourierSupply, Decision, Snapshot
from dispatch.matching.pricing import Option, Prices, Tick
from dispatch.models import Order
from dispatch.positioning import DemandMemory, choose_repositions

__all__ = ["OptimizingPolicy"]


class OptimizingPolicy:
    """Bundling + exact min-cost-flow assignment with deliberate commitment timing, and
    prepositioning of idle couriers toward the demand seen so far.

    It remembers the orders of earlier snapshots (:class:`~dispatch.positioning.DemandMemory`),
    so one instance serves one city. ``demand_memory`` makes that memory from the demand
    window (seconds); a measurement may give it another (``benchmarks/mdrp_foresight.py``).
    """

    name = "optimizing"

    def __init__(self, demand_memory: Callable[[int], DemandMemory] = DemandMemory) -> None:
        self._new_demand = demand_memory
        self._demand: DemandMemory | None = None

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]:
        if self._demand is None or self._demand.window_s != config.demand_window_s:
            self._demand = self._new_demand(config.demand_window_s)
        self._demand.recall(snapshot.placements, snapshot.now)
        self._demand.observe(snapshot.orders, snapshot.now)
        decisions, reserved = self._assign(snapshot, travel, config)
        if config.max_reposition_travel_s > 0:
            decisions += self._reposition(snapshot, travel, config, reserved)
        return sorted(decisions, key=lambda d: d.courier_id)

    def _reposition(
        self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig, reserved: set[str]
    ) -> list[Decision]:
        """Idle couriers that no order wants, even later, move toward the demand."""
        assert self._demand is not None
        now = snapshot.now
        demand = self._demand.weights()
        at_merchant = {
            (snapshot.merchants[m].location.lat, snapshot.merchants[m].location.lng): m
            for m in demand
            if m in snapshot.merchants
        }
        waiting_at: dict[str, int] = {}
        idle = []
        for s in snapshot.supply:
            at = at_merchant.get((s.free_location.lat, s.free_location.lng))
            if s.load == 0 and at is not None:
                waiting_at[at] = waiting_at.get(at, 0) + 1
            if (
                s.idle
                and s.free_at <= now
                and s.courier.id not in reserved
                # the shift lasts beyond the planning horizon: worth placing for later work
                and s.courier.shift_end - now > config.free_horizon_s
            ):
                idle.append((s.courier.id, s.free_location, s.courier.speed_mps, at))
        moves = choose_repositions(idle, waiting_at, demand, snapshot.merchants, travel, config)
        return [Decision(m.courier_id, (), m.travel_s, reposition_to=m.merchant_id) for m in moves]

    def _assign(
        self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig
    ) -> tuple[list[Decision], set[str]]:
        """Orders to couriers; also every courier the assignment wants, now or later."""
        now = snapshot.now
        supply = eligible(snapshot, config)
        # Orders whose food will not be ready before any courier could be committed to them
        # wait; they are not even priced.
        orders = [
            o for o in snapshot.orders if o.ready_at <= now + config.max_pickup_travel_s + config.max_early_s
        ]
        if not supply or not orders:
            return [], set()

        free_at = np.array([max(now, s.free_at) for s in supply], dtype=np.int64)
        candidates = Candidates(supply, free_at, config, travel)
        shift_end = np.array([s.courier.shift_end for s in supply], dtype=np.int64)
        capacity = np.array([s.courier.capacity for s in supply], dtype=np.int64)
        speed_values = sorted({s.courier.speed_mps for s in supply})
        group_of = {v: g for g, v in enumerate(speed_values)}
        speed_group = np.array([group_of[s.courier.speed_mps] for s in supply], dtype=np.int64)

        by_merchant: dict[str, list[Order]] = {}
        for order in orders:
            by_merchant.setdefault(order.merchant_id, []).append(order)
        # Couriers waiting at a merchant can take more of its orders into that pickup: each is
        # one more right-hand node of the assignment, numbered after the supply.
        joiners: dict[str, list[tuple[int, CourierSupply]]] = {}
        joining: dict[int, CourierSupply] = {}
        if config.pickup_updates:
            for s in snapshot.supply:
                if s.collecting is not None and s.collecting.merchant_id in by_merchant:
                    node = len(supply) + len(joining)
                    joining[node] = s
                    joiners.setdefault(s.collecting.merchant_id, []).append((node, s))
        target = max(1, min(config.max_bundle_size, math.ceil(len(orders) / len(supply))))

        candidates.prepare(snapshot.merchants[m].location for m in sorted(by_merchant))
        tick = Tick(config, travel, speed_values, speed_group, shift_end, capacity)
        k = config.candidates_per_bundle
        # the partition of each merchant's orders the ratio rule forms, with its prices
        bundles: list[Bundle] = []
        options: list[Option] = []  # per bundle
        groups: list[Group] = []
        for merchant_id in sorted(by_merchant):
            merchant = snapshot.merchants[merchant_id]
            mine = by_merchant[merchant_id]
            cand, to_merchant = candidates.near(merchant.location, now, need=2 * k * len(mine))
            if cand.size == 0:
                continue
            prices = Prices(
                merchant, cand, to_merchant, free_at[cand] + to_merchant, joiners.get(merchant_id, ()), tick
            )
            first = len(bundles)
            pending = make_bundles(mine, merchant, target, config, travel, tick.typical_speed, now)
            pending.reverse()
            while pending:
                bundle = pending.pop()
                option = prices.of(bundle)
                if option is None:
                    if bundle.size > 1:  # nobody can carry it together: offer its orders alone
                        pending.extend(Bundle(merchant_id, (o,)) for o in reversed(bundle.orders))
                    continue
                bundles.append(bundle)
                options.append(option)
            groups.append(Group(mine, prices, first, len(bundles)))
        if not bundles:
            return [], set()
        # Leaving an order out costs more the longer it has waited. Arc costs count
        # click-to-door from placement, so without this term a tick short of couriers would
        # serve the newest orders first and let the oldest wait.
        priority = {o.id: 2 * config.click_to_door_weight * (now - o.placed_at) for o in orders}
        unassigned = np.array(
            [UNASSIGNED_COST * b.size + sum(priority[o.id] for o in b.orders) for b in bundles],
            dtype=np.int64,
        )
        matched = assign_in_rounds(options, len(supply) + len(joining), unassigned, k)
        commit_by = now + config.commit_horizon_s
        if (
            0 < len(orders) <= config.bundle_choice_max_orders
            and config.max_bundle_size > 1
            and any(
                i not in matched
                or (matched[i].courier < len(supply) and supply[matched[i].courier].free_at > commit_by)
                for i in range(len(bundles))
            )
        ):
            # Someone waits: an order left out, or matched to a courier still busy. Choosing
            # other bundles may carry it now; the partition's matching is the starting point.
            bundles, matched = choose_bundles(groups, bundles, options, matched, priority, config, now)
        decisions = []
        joined = {joining[j].courier.id for j, _, _ in matched.values() if j in joining}
        for i, (j, price, in_time) in matched.items():
            order_ids = tuple(o.id for o in bundles[i].orders)
            if j in joining:  # the courier is at the food: nothing to wait for
                decisions.append(Decision(joining[j].courier.id, order_ids, price, join=True))
            # Commit only what cannot get better by waiting: the courier is free now and
            # would not reach the food too early. The rest is decided again next tick,
            # with this courier kept out of worse matches meanwhile.
            elif supply[j].free_at <= commit_by and in_time and supply[j].courier.id not in joined:
                decisions.append(Decision(supply[j].courier.id, order_ids, price))
        reserved = {supply[j].courier.id for j, _, _ in matched.values() if j < len(supply)}
        return decisions, reserved | joined
