"""The assignment of bundles to couriers: exact min-cost flow (OR-Tools), in rounds on each
bundle's cheapest couriers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from ortools.graph.python import min_cost_flow

__all__ = ["RESERVE_ROUNDS", "UNASSIGNED_COST", "Match", "assign_in_rounds", "solve_assignment"]


class Match(NamedTuple):
    """A bundle's courier in the assignment."""

    #: the right-hand node: a supply position, or (numbered after the supply) a courier
    #: waiting at the merchant whose pickup the bundle joins
    courier: int
    cost: int
    #: the courier would not reach the food too early
    timely: bool


#: Cost of leaving one order unassigned in a tick; above any cost of an assignment, so the
#: assignment serves as many orders as it can, then minimises cost.
UNASSIGNED_COST = 10**9

#: Each bundle keeps this many times ``candidates_per_bundle`` candidates for later rounds.
RESERVE_ROUNDS = 3


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


def assign_in_rounds(
    options: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    n_couriers: int,
    unassigned: np.ndarray,
    k: int,
) -> dict[int, Match]:
    """Exact assignment on each bundle's ``k`` cheapest couriers, then on what is left.

    Keeping ``k`` arcs per bundle makes the flow small, but neighbouring merchants can use up
    each other's short lists. Bundles left out get their next-cheapest couriers that are
    still free, and the residual problem is solved again, for a few rounds.

    Returns bundle -> its :class:`Match`.
    """
    matched: dict[int, Match] = {}
    used = np.zeros(n_couriers, dtype=bool)
    active = list(range(len(options)))
    for _ in range(RESERVE_ROUNDS):
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
        arc_of = {(a, c): n for n, (a, c) in enumerate(zip(left.tolist(), right.tolist(), strict=True))}
        timely_all = np.concatenate(flags)
        for local, j in enumerate(chosen.tolist()):
            if j >= 0:
                arc = arc_of[(local, j)]
                matched[active[local]] = Match(j, int(cost[arc]), bool(timely_all[arc]))
                used[j] = True
        left_out = [b for local, b in enumerate(active) if chosen[local] < 0]
        if not left_out or len(left_out) == len(active):
            break
        active = left_out
    return matched
