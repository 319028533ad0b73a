"""Exact sequencing: exhaustive search, and dynamic programming over task states (a dense
table for travel only, Pareto labels for any objective). The bounded search for larger
travel-only problems is :mod:`dispatch.routing.bounded`."""

from __future__ import annotations

import heapq
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from dispatch.routing.heuristic import insertion_sequence, sequence_cost
from dispatch.routing.problem import (
    RoutePlan,
    RouteTask,  # noqa: F401  (the doctests use it)
    RoutingProblem,
    Step,
    StopKindName,
    dropoff_cost,
    final_leg,
    next_stop,
    node_of,
    timed_plan,
)
from dispatch.timing import handover_s, leave_s

__all__ = [
    "DENSE_MAX_TASKS",
    "MAX_LABEL_TASKS",
    "brute_force",
    "label_sequence",
    "min_travel_sequence",
    "step_end_leg",
    "step_travel",
]

# The general (time-dependent) exact method keeps Python labels per task state, so it stops
# early; callers lower this further with ``exact_max_tasks``.
MAX_LABEL_TASKS = 8
# Travel only: a dense table of all 3**n task states is the fastest up to this many tasks ...
DENSE_MAX_TASKS = 9


# -- exhaustive search -----------------------------------------------------------------------


def brute_force(problem: RoutingProblem) -> RoutePlan:
    """Find an optimal plan by trying every feasible sequence.

    Exponential: ``(2n)! / 2**n`` sequences for ``n`` tasks with pickups (2,520 for 4,
    113,400 for 5). Meant to check :func:`solve` in tests.

    >>> from dispatch.routing import solve
    >>> travel_s = np.array([[0, 10, 20], [10, 0, 15], [20, 15, 0]])
    >>> problem = RoutingProblem(travel_s, (RouteTask(1, 2), RouteTask(None, 2)))
    >>> brute_force(problem).cost == solve(problem).cost == 50
    True
    """
    tasks = problem.tasks
    picked = [task.pickup is None for task in tasks]
    dropped = [False] * len(tasks)
    steps: list[Step] = []
    best: list[tuple[int, list[Step]]] = []
    travel_weight = problem.objective.travel_weight

    def extend(node: int, after_pickup: bool, depart: int, cost: int, load: int) -> None:
        if len(steps) == 2 * len(tasks) - sum(task.pickup is None for task in tasks):
            cost += travel_weight * final_leg(problem, node)
            if not best or cost < best[0][0]:
                best[:] = [(cost, list(steps))]
            return
        for task, item in enumerate(tasks):
            if dropped[task]:
                continue
            kind: StopKindName = "dropoff" if picked[task] else "pickup"
            size = item.size if kind == "pickup" else -item.size
            if problem.capacity is not None and load + size > problem.capacity:
                continue
            _, travel, _, service, leave = next_stop(problem, node, after_pickup, depart, kind, task)
            step_cost = travel_weight * travel
            if kind == "dropoff":
                step_cost += dropoff_cost(problem, task, service)[1]
            (picked if kind == "pickup" else dropped)[task] = True
            steps.append((kind, task))
            extend(node_of(problem, kind, task), kind == "pickup", leave, cost + step_cost, load + size)
            steps.pop()
            (picked if kind == "pickup" else dropped)[task] = False

    if not tasks:
        return timed_plan(problem, (), optimal=True)
    extend(0, False, problem.start_at, 0, problem.onboard_load)
    return timed_plan(problem, best[0][1], optimal=True)


# -- exact: dynamic programming over task states ---------------------------------------------
#
# A state gives each task a base-3 digit: 0 not picked up, 1 on board, 2 delivered. Every
# step raises one digit, so a state's successors have larger numbers than it has.


def step_travel(problem: RoutingProblem) -> npt.NDArray[np.int64]:
    """Travel between steps: columns ``0..n-1`` are the pickups, ``n..2n-1`` the drop-offs
    and ``2n`` the start; consecutive pickups at one node cost nothing (one stop)."""
    tasks = problem.tasks
    n = len(tasks)
    nodes = [task.pickup if task.pickup is not None else 0 for task in tasks]
    nodes += [task.dropoff for task in tasks] + [0]
    travel = problem.travel_s[np.ix_(nodes, nodes)].copy()
    pickup_nodes = np.array(nodes[:n])
    travel[:n, :n][pickup_nodes[:, None] == pickup_nodes[None, :]] = 0
    return travel


def step_end_leg(problem: RoutingProblem) -> npt.NDArray[np.int64]:
    """Travel from each step's node (columns as in :func:`step_travel`) to the route's end."""
    tasks = problem.tasks
    nodes = [task.pickup if task.pickup is not None else 0 for task in tasks]
    nodes += [task.dropoff for task in tasks] + [0]
    if problem.end is None:
        return np.zeros(len(nodes), dtype=np.int64)
    return problem.travel_s[nodes, problem.end].astype(np.int64)


def min_travel_sequence(problem: RoutingProblem) -> list[Step]:
    """An order of stops of least total travel (the classic TSP with pickup and delivery).

    Cost does not depend on time here, so each (state, last step) keeps one value. The table
    has a column per step (``2n`` of them; a pickup of an on-board task never happens) and
    one for the start, and is filled one layer (number of steps done) at a time, with a
    vectorised min-plus product per next step.
    """
    tasks = problem.tasks
    n = len(tasks)
    start_column = 2 * n
    travel = step_travel(problem)
    states = 3**n
    longest = int(travel.max(initial=0)) * (2 * n + 1)
    # int32 halves the table when no route can come near its range
    dtype = np.dtype(np.int32) if longest < 2**29 else np.dtype(np.int64)
    unreached = int(np.iinfo(dtype).max) // 4

    powers = 3 ** np.arange(n, dtype=np.int64)
    digits = np.empty((states, n), dtype=np.int8)
    for task in range(n):
        digits[:, task] = np.arange(states, dtype=np.int64) // powers[task] % 3
    onboard = np.array([task.pickup is None for task in tasks])
    sizes = np.array([task.size for task in tasks], dtype=np.int64)
    load = (digits == 1).astype(np.int64) @ sizes
    # States where an on-board task is "not picked up" cannot happen.
    possible = np.flatnonzero((digits[:, onboard] >= 1).all(axis=1))
    done = digits[possible].sum(axis=1)
    layers = [possible[done == k] for k in range(2 * n + 1)]

    cost = np.full((states, 2 * n + 1), unreached, dtype=dtype)
    first = int(powers[onboard].sum())
    cost[first, start_column] = 0
    for layer in layers[int(onboard.sum()) : 2 * n]:
        layer_digits = digits[layer]
        for task in range(n):
            for column, wanted in ((task, 0), (n + task, 1)):
                mask = layer_digits[:, task] == wanted
                if wanted == 0 and problem.capacity is not None:
                    mask &= load[layer] + sizes[task] <= problem.capacity
                sources = layer[mask]
                if sources.size == 0:
                    continue
                reached = (cost[sources] + travel[:, column]).min(axis=1)
                cost[sources + powers[task], column] = np.minimum(reached, unreached)

    # Walk back from the cheapest last step; each step fixes the state before it.
    state = states - 1
    column = int(np.argmin(cost[state, :start_column] + step_end_leg(problem)[:start_column]))
    steps: list[Step] = []
    while column != start_column:
        task = column % n
        steps.append(("pickup" if column < n else "dropoff", task))
        state -= int(powers[task])
        column = int(np.argmin(cost[state] + travel[:, column]))
    steps.reverse()
    return steps


# A label: (depart_at, cost, previous label, step). Labels of one (state, node, last step
# was a pickup) are compared by departure and cost only.
_Label: TypeAlias = tuple[int, int, "_Label | None", Step | None]


def _pareto(labels: list[_Label], slope: int) -> list[_Label]:
    """Drop every label that another one makes useless.

    Label ``a`` beats ``b`` when it leaves no later and costs no more, or when it leaves
    later but saves more than ``slope`` per second of delay: leaving a second later makes
    every drop-off still to come at most a second later, so the cost still to come grows by
    at most ``slope`` (the weights of the drop-offs still to come).
    """
    labels.sort(key=lambda label: (label[0], label[1]))
    kept: list[_Label] = []
    for label in labels:
        if not kept or label[1] < kept[-1][1]:
            kept.append(label)
    if len(kept) == 1 or not slope:
        return kept
    # ``kept`` leaves later and later, ever cheaper: sweep back from the latest.
    survivors: list[_Label] = []
    best = 0
    for label in reversed(kept):
        value = label[1] + slope * label[0]
        if not survivors or value < best:
            survivors.append(label)
            best = value
    survivors.reverse()
    return survivors


def label_sequence(problem: RoutingProblem) -> list[Step]:
    """An optimal order of stops for any objective, by labels with Pareto dominance.

    Any cost still to come does not decrease when the courier leaves later, so a label that
    leaves no later and has cost no higher than another of the same (state, node, last step
    kind) makes it useless. A label is dropped too when its cost plus a lower bound on the
    cost still to come exceeds the cost of a cheapest-insertion route.

    The bound: every task not yet delivered needs an arc into its drop-off node, so its
    drop-off is no earlier than the departure plus the cheapest such arc plus ``hd`` (and
    its ready time, pickup service and window allow); and the ``j``-th drop-off still to
    come is at least ``j`` drop-off service times after the first.
    """
    tasks = problem.tasks
    n = len(tasks)
    powers = [3**task for task in range(n)]
    objective = problem.objective
    travel = problem.travel_rows
    hp, pickup_after = handover_s(problem.pickup_service_s), leave_s(problem.pickup_service_s)
    hd, dropoff_after = handover_s(problem.dropoff_service_s), leave_s(problem.dropoff_service_s)
    capacity = problem.capacity
    upper = sequence_cost(problem, insertion_sequence(problem))
    assert upper is not None
    cheapest_in = [min(row[item.dropoff] for row in travel) for item in tasks]

    def bound(depart: int, pending: list[tuple[int, int, int | None]]) -> int:
        """Least cost of the drop-offs ``pending`` as ``(cheapest arc, earliest, deadline)``."""
        times = []
        cost = 0
        for arc, earliest, deadline in pending:
            service = max(earliest, depart + arc + hd)
            times.append(service)
            cost += objective.travel_weight * arc
            if deadline is not None and service > deadline:
                cost += objective.lateness_weight * (service - deadline)
        if objective.completion_weight:
            times.sort()
            spaced = depart + hd - problem.start_at
            for service in times:
                cost += objective.completion_weight * max(service - problem.start_at, spaced)
                spaced += problem.dropoff_service_s
        return cost

    travel_weight = objective.travel_weight
    lateness_weight = objective.lateness_weight
    completion_weight = objective.completion_weight
    start_at = problem.start_at
    first = sum(powers[task] for task in range(n) if tasks[task].pickup is None)
    last = 3**n - 1
    start: _Label = (start_at, 0, None, None)
    buckets: dict[int, dict[tuple[int, bool], list[_Label]]] = {first: {(0, False): [start]}}
    queue = [first]
    while queue:
        state = heapq.heappop(queue)
        if state == last:
            break
        groups = buckets.pop(state)
        digits = [state // power % 3 for power in powers]
        load = sum(tasks[task].size for task in range(n) if digits[task] == 1)
        moves: list[tuple[int, bool, int, Step]] = []
        for task, item in enumerate(tasks):
            if digits[task] == 0 and (capacity is None or load + item.size <= capacity):
                assert item.pickup is not None
                moves.append((task, True, item.pickup, ("pickup", task)))
            elif digits[task] == 1:
                moves.append((task, False, item.dropoff, ("dropoff", task)))
        pending = [
            (
                cheapest_in[task],
                max(item.window_start, item.ready_at + pickup_after + cheapest_in[task] + hd)
                if digits[task] == 0
                else item.window_start,
                item.deadline,
            )
            for task, item in enumerate(tasks)
            if digits[task] < 2
        ]
        slope = sum(
            completion_weight + (lateness_weight if deadline is not None else 0) for _, _, deadline in pending
        )
        for (node, after_pickup), labels in groups.items():
            kept = _pareto(labels, slope)
            # The bound grows with the departure: one for the earliest label bounds them all.
            least = bound(kept[0][0], pending)
            kept = [label for label in kept if label[1] + least <= upper]
            for task, is_pickup, where, step in moves:
                item = tasks[task]
                extended: list[_Label] = []
                if is_pickup:
                    merge = after_pickup and where == node
                    hop = 0 if merge else travel[node][where]
                    hop_cost = travel_weight * hop
                    ready = item.ready_at
                    for label in kept:
                        if merge:
                            service = max(label[0] - pickup_after, ready)
                        else:
                            service = max(ready, label[0] + hop + hp)
                        extended.append((service + pickup_after, label[1] + hop_cost, label, step))
                else:
                    hop = travel[node][where]
                    hop_cost = travel_weight * hop
                    opens = item.window_start
                    deadline = item.deadline
                    for label in kept:
                        service = max(label[0] + hop + hd, opens)
                        cost = label[1] + hop_cost + completion_weight * (service - start_at)
                        if deadline is not None and service > deadline:
                            cost += lateness_weight * (service - deadline)
                        if cost <= upper:
                            extended.append((service + dropoff_after, cost, label, step))
                if not extended:
                    continue
                target = state + powers[task]
                if target not in buckets:
                    buckets[target] = {}
                    heapq.heappush(queue, target)
                buckets[target].setdefault((where, is_pickup), []).extend(extended)

    finals = [
        (label[1] + travel_weight * final_leg(problem, node), label)
        for (node, _), labels in buckets[last].items()
        for label in labels
    ]
    best: _Label | None = min(finals, key=lambda final: final[0])[1]
    steps: list[Step] = []
    while best is not None and best[3] is not None:
        steps.append(best[3])
        best = best[2]
    steps.reverse()
    return steps
