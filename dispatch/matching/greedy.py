"""The greedy baseline every benchmark compares against."""

from __future__ import annotations

import itertools

from dispatch.config import DispatchConfig
from dispatch.geo import CourierIndex, TravelModel
from dispatch.matching.policy import Decision, Snapshot
from dispatch.timing import pickup_at

__all__ = ["GreedyPolicy"]

#: An order tries this many of the nearest idle couriers (their shifts may end too soon).
_NEAREST = 4


class GreedyPolicy:
    """Baseline: first placed, first served; each order to the idle courier nearest in time.

    No bundling and no waiting: an order is committed as soon as an idle courier exists.
    """

    name = "greedy"

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]:
        now = snapshot.now
        idle = [s for s in snapshot.supply if s.free_at <= now and s.load == 0 and s.courier.shift_end > now]
        if not idle or not snapshot.orders:
            return []
        index = CourierIndex(config.h3_resolution)
        for pos, s in enumerate(idle):
            index.upsert(str(pos), s.free_location, s.courier.speed_mps)
        # every merchant with an order timed against the idle couriers at once
        index.prepare(
            dict.fromkeys(snapshot.merchants[o.merchant_id].location for o in snapshot.orders), travel
        )
        decisions = []
        # Each merchant's idle couriers within reach, by (travel_s, id), found once per tick:
        # couriers only leave the index during a tick, so an order's nearest are the first
        # of its merchant's list still idle (the same as index.nearest after the removals).
        reachable: dict[str, tuple[list[tuple[str, int]], list[int]]] = {}
        taken: set[str] = set()
        for order in sorted(snapshot.orders, key=lambda o: (o.placed_at, o.id)):
            if len(taken) == len(idle):
                break
            found = reachable.get(order.merchant_id)
            if found is None:
                merchant = snapshot.merchants[order.merchant_id]
                near = index.within(merchant.location, config.max_pickup_travel_s, travel)
                found = reachable[order.merchant_id] = (near, [0])
            near, start = found
            while start[0] < len(near) and near[start[0]][0] in taken:
                start[0] += 1
            nearest = []
            for pair in itertools.islice(near, start[0], None):
                if pair[0] not in taken:
                    nearest.append(pair)
                    if len(nearest) == _NEAREST:
                        break
            for cid, travel_s in nearest:
                s = idle[int(cid)]
                if pickup_at(now + travel_s, order.ready_at, config.pickup_service_s) <= s.courier.shift_end:
                    taken.add(cid)
                    decisions.append(Decision(s.courier.id, (order.id,), cost=travel_s))
                    break
        return sorted(decisions, key=lambda d: d.courier_id)
