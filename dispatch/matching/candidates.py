"""Which couriers may carry a merchant's orders: the supply a tick may use, and the H3
candidate search around each merchant."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from dispatch.config import DispatchConfig
from dispatch.geo import CourierIndex, TravelModel
from dispatch.matching.policy import CourierSupply, Snapshot
from dispatch.models import Location

__all__ = ["Candidates", "eligible"]


def eligible(snapshot: Snapshot, config: DispatchConfig) -> list[CourierSupply]:
    """Couriers that can start new work within the horizon and still have shift left."""
    horizon = snapshot.now + config.free_horizon_s
    return [
        s
        for s in snapshot.supply
        if s.free_at <= horizon and s.courier.shift_end > max(s.free_at, snapshot.now)
    ]


class Candidates:
    """Candidate couriers for pickups, from the H3 index of the snapshot's supply.

    For each merchant the travel budget grows (doubling) until ``need`` couriers would
    *arrive* within it, up to ``max_pickup_travel_s``. A courier outside the budget cannot
    arrive before ``now + budget``, so the ``need`` earliest arrivals are all among the
    candidates. The search starts at the budget that sufficed for the previous merchant:
    neighbouring merchants see similar densities.
    """

    def __init__(
        self,
        supply: Sequence[CourierSupply],
        free_at: np.ndarray,
        config: DispatchConfig,
        travel: TravelModel,
    ) -> None:
        self.index = CourierIndex(config.h3_resolution)
        self.position_of_slot = np.zeros(len(supply), dtype=np.int64)
        for pos, s in enumerate(supply):
            self.index.upsert(str(pos), s.free_location, s.courier.speed_mps)
            slot = self.index.slot_of(str(pos))
            assert slot is not None
            if slot >= len(self.position_of_slot):
                self.position_of_slot = np.resize(self.position_of_slot, slot + 1)
            self.position_of_slot[slot] = pos
        self.free_at = free_at
        self.config = config
        self.travel = travel
        self._start = max(60, config.max_pickup_travel_s // 10)

    def prepare(self, targets: Iterable[Location]) -> None:
        """Time the supply to all these targets at once (the tick's merchants): one numpy pass
        instead of one per merchant; :meth:`near` finds the same couriers either way."""
        self.index.prepare(targets, self.travel)

    def near(self, target: Location, now: int, need: int) -> tuple[np.ndarray, np.ndarray]:
        """Supply positions and their travel seconds to ``target``."""
        top = self.config.max_pickup_travel_s
        budget = min(self._start, top)
        while True:
            slots, to_target = self.index.within_slots(target, budget, self.travel)
            cand = self.position_of_slot[slots]
            arriving = int(np.count_nonzero(self.free_at[cand] + to_target <= now + budget))
            if arriving >= need or budget >= top:
                break
            budget = min(2 * budget, top)
        # plenty found: the next merchant may start lower
        self._start = budget if arriving < 4 * need else max(60, budget // 2)
        if cand.size == 0:
            # a remote merchant: the nearest couriers however far, rather than nobody
            found = self.index.nearest(
                target, self.travel, max_budget_s=self.config.orphan_pickup_travel_s, limit=need
            )
            cand = np.array([int(cid) for cid, _ in found], dtype=np.int64)
            to_target = np.array([t for _, t in found], dtype=np.int64)
        return cand, to_target
