"""The greedy baseline every benchmark compares against."""

from __future__ import annotations

from dispatch.config import DispatchConfig
from dispatch.geo import CourierIndex, TravelModel
from dispatch.matching.policy import Decision, Snapshot
from dispatch.timing import pickup_at

__all__ = ["GreedyPolicy"]


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
        decisions = []
        # Merchants with no idle courier within reach: couriers only leave the index during a
        # tick, so their later orders find nobody either and need not search again.
        unreachable: set[str] = set()
        for order in sorted(snapshot.orders, key=lambda o: (o.placed_at, o.id)):
            if not len(index):
                break
            if order.merchant_id in unreachable:
                continue
            merchant = snapshot.merchants[order.merchant_id]
            nearest = index.nearest(
                merchant.location, travel, max_budget_s=config.max_pickup_travel_s, limit=4
            )
            if not nearest:
                unreachable.add(order.merchant_id)
            for cid, travel_s in nearest:
                s = idle[int(cid)]
                if pickup_at(now + travel_s, order.ready_at, config.pickup_service_s) <= s.courier.shift_end:
                    index.remove(cid)
                    decisions.append(Decision(s.courier.id, (order.id,), cost=travel_s))
                    break
        return sorted(decisions, key=lambda d: d.courier_id)
