"""Where idle couriers should wait: demand seen so far, and moves toward it.

A courier that delivered its last order waits at the customer's door, often far from the
restaurants. :class:`DemandMemory` remembers where orders came from (only orders the
dispatcher has seen, so nothing of the future), and :func:`choose_repositions` sends an idle
courier to a merchant when waiting there brings it closer to where the next orders are
expected to be picked up:

* a merchant ``m``'s expected ride to the next pickup is ``E(m) = sum_k w_k t(m, k) / W``
  over the merchants ``k`` with recent orders ``w_k`` (``W`` their sum); likewise ``E(L)``
  for the courier's own position ``L``;
* the courier moves to the ``m`` (within ``max_reposition_travel_s``) with the least
  ``E(m) + reposition_travel_share * t(L, m)``, when that beats ``E(L)`` by at least
  ``min_reposition_gain_s``. The share charges for orders that come while it is on its way:
  it cannot be diverted before it gets there;
* no merchant draws more waiting couriers than its share of the demand, nor more than the
  orders it had in the window.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.models import Location, Merchant, Order, Placement

__all__ = ["DemandMemory", "Reposition", "choose_repositions"]

#: The demand map considers at most this many merchants (the busiest), so a city of
#: thousands of merchants costs one small matrix per tick.
_MAX_DEMAND_MERCHANTS = 200


@dataclass(frozen=True, slots=True)
class Reposition:
    courier_id: str
    merchant_id: str
    travel_s: int


class DemandMemory:
    """Orders seen per merchant within the last ``window_s`` (each order counted once)."""

    def __init__(self, window_s: int) -> None:
        self.window_s = window_s
        self._seen: set[str] = set()
        self._log: deque[Placement] = deque()
        self._count: dict[str, int] = {}

    def observe(self, orders: Iterable[Order], now: int) -> None:
        self.recall((Placement(o.placed_at, o.id, o.merchant_id) for o in orders), now)

    def recall(self, placements: Iterable[Placement], now: int) -> None:
        """Count orders placed (by id): those seen before are not counted again, those placed
        before the window not at all."""
        fresh = {
            p.order_id: p
            for p in placements
            if p.order_id not in self._seen and p.placed_at >= now - self.window_s
        }
        new = sorted(fresh.values())
        if new and self._log and new[0].placed_at < self._log[-1].placed_at:
            # placed before orders counted already (recalled from the log): keep the time order
            self._log = deque(sorted([*self._log, *new]))
        else:
            self._log.extend(new)
        for _, oid, mid in new:
            self._seen.add(oid)
            self._count[mid] = self._count.get(mid, 0) + 1
        while self._log and self._log[0].placed_at < now - self.window_s:
            _, oid, mid = self._log.popleft()
            self._seen.discard(oid)
            self._count[mid] -= 1
            if not self._count[mid]:
                del self._count[mid]

    def weights(self) -> dict[str, int]:
        return dict(self._count)


def choose_repositions(
    idle: Sequence[tuple[str, Location, float, str | None]],
    waiting_at: Mapping[str, int],
    demand: Mapping[str, int],
    merchants: Mapping[str, Merchant],
    travel: TravelModel,
    config: DispatchConfig,
) -> list[Reposition]:
    """Moves for idle couriers ``(id, location, speed, merchant it waits at or None)``.

    ``waiting_at`` counts the couriers waiting at, or on their way to, each merchant,
    the idle ones included.
    """
    known = sorted((m for m in demand if m in merchants), key=lambda m: (-demand[m], m))
    known = known[:_MAX_DEMAND_MERCHANTS]
    if not idle or not known:
        return []
    column = {m: i for i, m in enumerate(known)}
    weights = np.array([demand[m] for m in known], dtype=np.float64)
    share = weights / weights.sum()
    locations = [merchants[m].location for m in known]
    speeds = sorted({speed for _, _, speed, _ in idle})
    typical_speed = speeds[len(speeds) // 2]
    expected_from = travel.matrix_s(locations, locations, typical_speed) @ share  # E(m)
    waiting = np.array([waiting_at.get(m, 0) for m in known], dtype=np.int64)
    # a merchant's share of the waiting couriers, and never more than the orders it had
    cap = np.minimum(np.maximum(1, np.ceil(share * max(len(idle), int(waiting.sum())))), weights)
    cap = cap.astype(np.int64)

    # t(L, m) for every idle courier, one matrix per speed
    to = np.zeros((len(idle), len(known)), dtype=np.int64)
    for speed in speeds:
        rows = [i for i, (_, _, v, _) in enumerate(idle) if v == speed]
        to[rows] = travel.matrix_s([idle[i][1] for i in rows], locations, speed)
    here = to @ share  # E(L)
    gain = here[:, None] - (expected_from[None, :] + config.reposition_travel_share * to)
    gain[(to > config.max_reposition_travel_s) | (to == 0)] = -math.inf
    best = gain.max(axis=1)
    proposals = [
        (-float(best[i]), courier_id, to[i], gain[i], column.get(at) if at else None)
        for i, (courier_id, _, _, at) in enumerate(idle)
        if best[i] >= config.min_reposition_gain_s
    ]
    # the couriers that gain most choose first; a merchant with its share of waiting
    # couriers takes no more
    moves = []
    for _, courier_id, ride_s, gains, leaving in sorted(proposals, key=lambda p: (p[0], p[1])):
        for m in np.argsort(-gains, kind="stable"):
            if gains[m] < config.min_reposition_gain_s:
                break
            if waiting[m] < cap[m]:
                waiting[m] += 1
                if leaving is not None:
                    waiting[leaving] -= 1
                moves.append(Reposition(courier_id, known[m], int(ride_s[m])))
                break
    return moves
