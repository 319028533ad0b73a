"""Who carries what: candidates, bundles and the assignment, behind one policy protocol.

A policy looks at a :class:`Snapshot` of the city (open orders, couriers that are free or
soon free) and returns :class:`Decision`s: a bundle of orders for a courier. The engine
turns decisions into timed plans and writes them all at once.

Two policies:

* :class:`OptimizingPolicy`: bundles orders of one merchant when couriers are scarce,
  prices every (bundle, candidate courier) pair, where candidates come from the H3 index,
  and solves the assignment exactly with OR-Tools min-cost flow. When that leaves an order
  waiting, the assignment may choose among overlapping bundles instead (a set packing,
  OR-Tools CP-SAT, started from the flow's answer). It commits an order only
  when the chosen courier would not reach the merchant much before the food is ready.
* :class:`GreedyPolicy`: the baseline every benchmark compares against: first placed,
  first served, each order to the idle courier that reaches its merchant soonest.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from ortools.graph.python import min_cost_flow
from ortools.sat.python import cp_model

from dispatch.config import DispatchConfig
from dispatch.geo import CourierIndex, TravelModel
from dispatch.models import Courier, Location, Merchant, Order
from dispatch.positioning import DemandMemory, choose_repositions

__all__ = [
    "Bundle",
    "Collecting",
    "CourierSupply",
    "Decision",
    "DispatchPolicy",
    "GreedyPolicy",
    "OptimizingPolicy",
    "Snapshot",
    "make_bundles",
    "solve_assignment",
]

#: Cost of leaving one order unassigned in a tick; above any cost of an assignment, so the
#: assignment serves as many orders as it can, then minimises cost.
UNASSIGNED_COST = 10**9


@dataclass(frozen=True, slots=True)
class Collecting:
    """A courier at a merchant, waiting to collect ``orders``, with nothing else planned.

    More of the merchant's orders may still join that pickup (an assignment update).
    """

    merchant_id: str
    orders: tuple[Order, ...]
    #: planned hand-over of the food at the merchant
    pickup_at: int
    #: planned hand-over at each customer's door, in ``orders`` order
    dropoff_at: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CourierSupply:
    """A courier as the matcher sees it: where and when it can start new work."""

    courier: Courier
    free_at: int
    free_location: Location
    load: int = 0  # orders in its current plan
    #: no plan at all: waiting where it is
    idle: bool = False
    #: at a merchant waiting for food, with only that pickup's drop-offs planned after it
    collecting: Collecting | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: int
    orders: tuple[Order, ...]
    supply: tuple[CourierSupply, ...]
    merchants: Mapping[str, Merchant]
    #: orders placed earlier, as ``(placed_at, order id, merchant id)``, that this process
    #: may not have seen open: given on its first tick, after a pause and when it takes the
    #: lease (see :meth:`dispatch.engine.Dispatcher.tick`), so a new leader knows the demand
    placements: tuple[tuple[int, str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Orders for a courier; or, with no orders, a merchant to go and wait at.

    With ``join``, the orders are added to the pickup the courier is waiting for (its
    :class:`Collecting`), and its drop-offs are planned again; otherwise they come after
    its plan.
    """

    courier_id: str
    order_ids: tuple[str, ...]
    cost: int
    reposition_to: str | None = None
    join: bool = False


@dataclass(frozen=True, slots=True)
class Bundle:
    """Orders of one merchant to be carried together, drop-offs in ``order_ids`` order."""

    merchant_id: str
    orders: tuple[Order, ...]

    @property
    def ready_at(self) -> int:
        return max(o.ready_at for o in self.orders)

    @property
    def size(self) -> int:
        return len(self.orders)

    @property
    def key(self) -> tuple[str, ...]:
        """Its orders' ids, sorted: two bundles of the same orders have the same key."""
        return tuple(sorted(o.id for o in self.orders))


class DispatchPolicy(Protocol):
    """Decides, for one snapshot, which courier takes which orders (and may send an idle
    courier to wait at a merchant: a :class:`Decision` without orders, ``reposition_to`` set)."""

    name: str

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]: ...


# -- assignment ------------------------------------------------------------------------------


def solve_assignment(
    n_left: int,
    n_right: int,
    left: np.ndarray,
    right: np.ndarray,
    cost: np.ndarray,
    unassigned_cost: np.ndarray,
) -> np.ndarray:
    """Optimal assignment of left nodes (bundles) to right nodes (couriers) on sparse arcs.

    Each left node takes at most one right node and vice versa; a left node left out costs
    ``unassigned_cost[i]``. Solved exactly as a min-cost flow (OR-Tools).

    Parameters
    ----------
    left, right, cost
        Arcs: ``left[a]`` may take ``right[a]`` at integer ``cost[a]``.

    Returns
    -------
    numpy.ndarray
        For each left node, the index of its right node, or -1.

    Examples
    --------
    >>> import numpy as np
    >>> solve_assignment(2, 2, np.array([0, 0, 1]), np.array([0, 1, 0]), np.array([1, 5, 2]),
    ...                  np.array([100, 100])).tolist()
    [1, 0]
    """
    result = np.full(n_left, -1, dtype=np.int64)
    if n_left == 0:
        return result
    flow = min_cost_flow.SimpleMinCostFlow()
    # nodes: left 0..n_left-1, right n_left.., sink last
    sink = n_left + n_right
    tails = np.concatenate(
        [
            left.astype(np.int64),
            n_left + np.arange(n_right, dtype=np.int64),
            np.arange(n_left, dtype=np.int64),
        ]
    )
    heads = np.concatenate(
        [
            n_left + right.astype(np.int64),
            np.full(n_right, sink, dtype=np.int64),
            np.full(n_left, sink, dtype=np.int64),
        ]
    )
    costs = np.concatenate(
        [cost.astype(np.int64), np.zeros(n_right, np.int64), unassigned_cost.astype(np.int64)]
    )
    capacities = np.ones(len(tails), dtype=np.int64)
    flow.add_arcs_with_capacity_and_unit_cost(tails, heads, capacities, costs)
    supplies = np.concatenate([np.ones(n_left, np.int64), np.zeros(n_right, np.int64), [-n_left]])
    flow.set_nodes_supplies(np.arange(sink + 1, dtype=np.int64), supplies)
    status = flow.solve()
    if status != flow.OPTIMAL:  # cannot happen: the unassigned arcs make every instance feasible
        raise RuntimeError(f"min-cost flow failed with status {status}")
    n_arcs = len(left)
    flows = flow.flows(np.arange(n_arcs, dtype=np.int64))
    chosen = np.nonzero(flows > 0)[0]
    result[left[chosen]] = right[chosen]
    return result


# -- bundling --------------------------------------------------------------------------------


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

    ordered = _by_ready(orders, now)
    if target_size <= 1:
        return [Bundle(merchant.id, (o,)) for o in ordered]
    bundles: list[Bundle] = []
    current: list[Order] = []
    for order in ordered:
        if (
            current
            and len(current) < target_size
            and ready(order) - ready(current[0]) <= config.bundle_ready_gap_s
            and _on_time_together([*current, order], merchant, config, travel, speed_mps)
        ):
            current.append(order)
            continue
        if current:
            bundles.append(Bundle(merchant.id, tuple(current)))
        current = [order]
    if current:
        bundles.append(Bundle(merchant.id, tuple(current)))
    return bundles


def _by_ready(orders: Sequence[Order], now: int) -> list[Order]:
    """Orders by ready time (food ready already counts as ready ``now``), then placement."""
    return sorted(orders, key=lambda o: (max(o.ready_at, now), o.placed_at, o.id))


def _drop_offsets(
    orders: Sequence[Order],
    merchant: Merchant,
    config: DispatchConfig,
    travel: TravelModel,
    speeds_mps: Sequence[float],
) -> tuple[list[Order], np.ndarray]:
    """Drop-off sequence (nearest first) and, per speed, each hand-over's delay after leaving.

    Returns the sequence and an array of shape ``(len(speeds_mps), len(orders))``.
    """
    half = config.dropoff_service_s // 2
    rest = config.dropoff_service_s - half
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


def _on_time_together(
    orders: Sequence[Order], merchant: Merchant, config: DispatchConfig, travel: TravelModel, speed_mps: float
) -> bool:
    ready = max(o.ready_at for o in orders)
    depart = ready + config.pickup_service_s - config.pickup_service_s // 2
    sequence, offsets = _drop_offsets(orders, merchant, config, travel, [speed_mps])
    return all(depart + int(off) <= o.window.end for o, off in zip(sequence, offsets[0], strict=True))


# -- policies --------------------------------------------------------------------------------


def _eligible(snapshot: Snapshot, config: DispatchConfig) -> list[CourierSupply]:
    """Couriers that can start new work within the horizon and still have shift left."""
    horizon = snapshot.now + config.free_horizon_s
    return [
        s
        for s in snapshot.supply
        if s.free_at <= horizon and s.courier.shift_end > max(s.free_at, snapshot.now)
    ]


class _Candidates:
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
        supply = _eligible(snapshot, config)
        # Orders whose food will not be ready before any courier could be committed to them
        # wait; they are not even priced.
        orders = [
            o for o in snapshot.orders if o.ready_at <= now + config.max_pickup_travel_s + config.max_early_s
        ]
        if not supply or not orders:
            return [], set()

        free_at = np.array([max(now, s.free_at) for s in supply], dtype=np.int64)
        candidates = _Candidates(supply, free_at, config, travel)
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

        tick = _Tick(config, travel, speed_values, speed_group, shift_end, capacity)
        k = config.candidates_per_bundle
        # the partition of each merchant's orders the ratio rule forms, with its prices
        bundles: list[Bundle] = []
        options: list[_Option] = []  # per bundle
        groups: list[_Group] = []
        for merchant_id in sorted(by_merchant):
            merchant = snapshot.merchants[merchant_id]
            mine = by_merchant[merchant_id]
            cand, to_merchant = candidates.near(merchant.location, now, need=2 * k * len(mine))
            if cand.size == 0:
                continue
            prices = _Prices(
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
            groups.append(_Group(mine, prices, first, len(bundles)))
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
        matched = _assign_in_rounds(options, len(supply) + len(joining), unassigned, k)
        commit_by = now + config.commit_horizon_s
        if (
            0 < len(orders) <= config.bundle_choice_max_orders
            and config.max_bundle_size > 1
            and any(
                i not in matched
                or (matched[i][0] < len(supply) and supply[matched[i][0]].free_at > commit_by)
                for i in range(len(bundles))
            )
        ):
            # Someone waits: an order left out, or matched to a courier still busy. Choosing
            # other bundles may carry it now; the partition's matching is the starting point.
            bundles, matched = _choose_bundles(groups, bundles, options, matched, priority, config, now)
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


#: A bundle's candidate couriers, cheapest first: (right-hand nodes, costs, timely), where
#: timely means the courier would not reach the food too early.
_Option = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True, slots=True)
class _Tick:
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
class _Prices:
    """Prices bundles of one merchant for its candidate couriers (and waiting joiners)."""

    merchant: Merchant
    cand: np.ndarray
    to_merchant: np.ndarray
    arrive: np.ndarray
    joiners: Sequence[tuple[int, CourierSupply]]
    tick: _Tick

    def of(self, bundle: Bundle) -> _Option | None:
        """The bundle's cheapest couriers, or None when nobody can carry it."""
        config, cand = self.tick.config, self.cand
        hp = config.pickup_service_s // 2
        ready = bundle.ready_at
        # each candidate rides at its own speed
        seq, offsets = _drop_offsets(
            bundle.orders, self.merchant, config, self.tick.travel, self.tick.speed_values
        )
        service = np.maximum(ready, self.arrive + hp)
        depart = service + config.pickup_service_s - hp
        late = np.zeros(len(cand), dtype=np.int64)
        click_to_door = np.zeros(len(cand), dtype=np.int64)
        food_wait = np.zeros(len(cand), dtype=np.int64)
        for col, order in enumerate(seq):
            drop = depart + offsets[self.tick.speed_group[cand], col]
            late += np.maximum(0, drop - order.window.end)
            click_to_door += drop - order.placed_at
            food_wait += service - order.ready_at
        cost = (
            config.lateness_weight * late
            + config.click_to_door_weight * click_to_door
            + config.food_wait_weight * food_wait
            + config.travel_weight * self.to_merchant
        )
        ok = (service <= self.tick.shift_end[cand]) & (self.tick.capacity[cand] >= bundle.size)
        idx = np.nonzero(ok)[0]
        join_nodes, join_cost = (
            _join_arcs(bundle, self.merchant, self.joiners, config, self.tick.travel)
            if self.joiners
            else (_NO_ARCS, _NO_ARCS)
        )
        if idx.size == 0 and join_nodes.size == 0:
            return None
        reserve = min(idx.size, _RESERVE_ROUNDS * config.candidates_per_bundle)
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


@dataclass(frozen=True, slots=True)
class _Group:
    """One merchant's orders of a tick, their prices, and its bundles ``first:end`` of the
    partition."""

    orders: Sequence[Order]
    prices: _Prices
    first: int
    end: int


def _choose_bundles(
    groups: Sequence[_Group],
    bundles: Sequence[Bundle],
    options: Sequence[_Option],
    matched: Mapping[int, tuple[int, int, bool]],
    priority: Mapping[str, int],
    config: DispatchConfig,
    now: int,
) -> tuple[list[Bundle], dict[int, tuple[int, int, bool]]]:
    """The partition's bundles with each merchant's :func:`_alternatives` after its own, and
    the set packing over them all, from the partition's ``matched``; the partition as it is
    when no merchant has an alternative anyone can carry."""
    chosen_from: list[Bundle] = []
    priced: list[_Option] = []
    hint: dict[int, tuple[int, int, bool]] = {}
    for group in groups:
        offered = {bundles[i].key for i in range(group.first, group.end)}
        for i in range(group.first, group.end):
            if i in matched:
                hint[len(chosen_from)] = matched[i]
            chosen_from.append(bundles[i])
            priced.append(options[i])
        if len(group.orders) < 2:
            continue
        for bundle in _alternatives(group.orders, group.prices.merchant, group.prices.tick, now):
            if bundle.key in offered:
                continue
            offered.add(bundle.key)
            option = group.prices.of(bundle)
            if option is not None:
                chosen_from.append(bundle)
                priced.append(option)
    if len(chosen_from) == len(bundles):
        return list(bundles), dict(matched)
    return chosen_from, _pack(chosen_from, priced, priority, hint, config)


def _join_arcs(
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
        depart = service + config.pickup_service_s - config.pickup_service_s // 2
        sequence, offsets = _drop_offsets(together, merchant, config, travel, [s.courier.speed_mps])
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


_NO_ARCS = np.zeros(0, dtype=np.int64)

#: Each bundle keeps this many times ``candidates_per_bundle`` candidates for later rounds.
_RESERVE_ROUNDS = 3


def _assign_in_rounds(
    options: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_couriers: int,
    unassigned: np.ndarray,
    k: int,
) -> dict[int, tuple[int, int, bool]]:
    """Exact assignment on each bundle's ``k`` cheapest couriers, then on what is left.

    Keeping ``k`` arcs per bundle makes the flow small, but neighbouring merchants can use up
    each other's short lists. Bundles left out get their next-cheapest couriers that are
    still free, and the residual problem is solved again, for a few rounds.

    Returns bundle -> (courier position, arc cost, timely).
    """
    matched: dict[int, tuple[int, int, bool]] = {}
    used = np.zeros(n_couriers, dtype=bool)
    active = list(range(len(options)))
    for _ in range(_RESERVE_ROUNDS):
        lefts, rights, costs, flags = [], [], [], []
        for local, b in enumerate(active):
            right, cost, timely = options[b]
            free = np.nonzero(~used[right])[0][:k]
            lefts.append(np.full(free.size, local, dtype=np.int64))
            rights.append(right[free])
            costs.append(cost[free])
            flags.append(timely[free])
        left, right, cost = np.concatenate(lefts), np.concatenate(rights), np.concatenate(costs)
        if left.size == 0:
            break
        chosen = solve_assignment(len(active), n_couriers, left, right, cost, unassigned[active])
        arc_of = {(int(a), int(c)): n for n, (a, c) in enumerate(zip(left, right, strict=True))}
        timely_all = np.concatenate(flags)
        for local, j in enumerate(chosen.tolist()):
            if j >= 0:
                arc = arc_of[(local, j)]
                matched[active[local]] = (j, int(cost[arc]), bool(timely_all[arc]))
                used[j] = True
        left_out = [b for local, b in enumerate(active) if chosen[local] < 0]
        if not left_out or len(left_out) == len(active):
            break
        active = left_out
    return matched


def _alternatives(orders: Sequence[Order], merchant: Merchant, tick: _Tick, now: int) -> list[Bundle]:
    """Bundles the assignment may choose instead of the partition: each order alone, every
    pair of the merchant's first orders (by ready time) that is ready within
    ``bundle_ready_gap_s`` and on time together, and the larger bundles :func:`make_bundles`
    forms."""
    config, travel, speed_mps = tick.config, tick.travel, tick.typical_speed
    pool = _by_ready(orders, now)[:_PAIR_POOL]
    found = [Bundle(merchant.id, (o,)) for o in orders]
    for i, first in enumerate(pool):
        for second in pool[i + 1 :]:
            gap = max(second.ready_at, now) - max(first.ready_at, now)
            if gap <= config.bundle_ready_gap_s and _on_time_together(
                (first, second), merchant, config, travel, speed_mps
            ):
                found.append(Bundle(merchant.id, (first, second)))
    if config.max_bundle_size > 2:
        larger = make_bundles(orders, merchant, config.max_bundle_size, config, travel, speed_mps, now)
        found += [b for b in larger if b.size > 2]
    return found


def _pack(
    bundles: Sequence[Bundle],
    options: Sequence[_Option],
    priority: Mapping[str, int],
    hint: Mapping[int, tuple[int, int, bool]],
    config: DispatchConfig,
) -> dict[int, tuple[int, int, bool]]:
    """The assignment over overlapping bundles: each order in at most one chosen bundle,
    each courier carrying at most one (a set packing, solved with CP-SAT from ``hint``).

    Each order carried is worth 64 times the dearest arc (plus its ``priority``, from its
    age), so carrying more orders comes first unless that would cost more than that in all
    (the flow's 10^9 per order makes CP-SAT far slower), then least cost. ``hint`` (a
    matching of some of the bundles) is the starting point and is kept unless something
    better is found within the solver's deterministic time limit.

    Each bundle keeps its ``candidates_per_bundle`` cheapest arcs and the hint's.

    Returns bundle -> (courier position, arc cost, timely), like :func:`_assign_in_rounds`.
    """
    k = config.candidates_per_bundle
    arcs: list[tuple[int, int, int, bool]] = []  # (bundle, courier, cost, timely)
    for i, (right, cost, timely) in enumerate(options):
        kept = set(range(min(k, right.size)))
        if i in hint:
            kept.add(int(np.nonzero(right == hint[i][0])[0][0]))
        arcs += [(i, int(right[a]), int(cost[a]), bool(timely[a])) for a in sorted(kept)]
    worth = _PACK_WORTH * (1 + max(c for _, _, c, _ in arcs))
    model = cp_model.CpModel()
    x = [model.new_bool_var("") for _ in arcs]
    by_courier: dict[int, list[cp_model.IntVar]] = {}
    by_order: dict[str, list[cp_model.IntVar]] = {}
    gain: list[int] = []
    for var, (i, j, c, _) in zip(x, arcs, strict=True):
        by_courier.setdefault(j, []).append(var)
        for o in bundles[i].orders:
            by_order.setdefault(o.id, []).append(var)
        gain.append(c - sum(worth + priority[o.id] for o in bundles[i].orders))
        model.add_hint(var, hint.get(i, (-1,))[0] == j)
    for group in (*by_courier.values(), *by_order.values()):
        if len(group) > 1:
            model.add_at_most_one(group)
    model.minimize(cp_model.LinearExpr.weighted_sum(x, gain))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 1
    solver.parameters.max_deterministic_time = config.bundle_choice_time_s
    status = solver.solve(model)
    start = sum(g for g, (i, j, _, _) in zip(gain, arcs, strict=True) if hint.get(i, (-1,))[0] == j)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) or solver.objective_value > start:
        return dict(hint)
    return {i: (j, c, t) for var, (i, j, c, t) in zip(x, arcs, strict=True) if solver.boolean_value(var)}


#: Pairs are formed among a merchant's first orders, by ready time.
_PAIR_POOL = 6
#: An order carried is worth this many times the dearest arc of the packing.
_PACK_WORTH = 64


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
        hp = config.pickup_service_s // 2
        for order in sorted(snapshot.orders, key=lambda o: (o.placed_at, o.id)):
            if not len(index):
                break
            merchant = snapshot.merchants[order.merchant_id]
            for cid, travel_s in index.nearest(
                merchant.location, travel, max_budget_s=config.max_pickup_travel_s, limit=4
            ):
                s = idle[int(cid)]
                if max(order.ready_at, now + travel_s + hp) <= s.courier.shift_end:
                    index.remove(cid)
                    decisions.append(Decision(s.courier.id, (order.id,), cost=travel_s))
                    break
        return sorted(decisions, key=lambda d: d.courier_id)
