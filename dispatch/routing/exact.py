"""Exact sequencing: exhaustive search, dynamic programming over task states, bounded search."""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from dispatch.routing.heuristic import _insertion_sequence, _sequence_cost
from dispatch.routing.problem import (
    RoutePlan,
    RouteTask,  # noqa: F401  (the doctests use it)
    RoutingProblem,
    Step,
    StopKindName,
    _dropoff_cost,
    _final_leg,
    _next_stop,
    _node,
    _plan,
)

__all__ = ["brute_force"]

# The general (time-dependent) exact method keeps Python labels per task state, so it stops
# early; callers lower this further with ``exact_max_tasks``.
_MAX_LABEL_TASKS = 8
# Travel only: a dense table of all 3**n task states is the fastest up to this many tasks ...
_DENSE_MAX_TASKS = 9
# ... then a search over the states that a lower bound cannot rule out, always run to the
# end (a proof) up to this many tasks ...
_PROVEN_MAX_TASKS = 12
# ... and within a work budget up to this many (beyond it, OR-Tools routing).
_BOUNDED_MAX_TASKS = 24
# Table cells (state x last stop) examined per second of ``time_limit_s``: a deterministic
# stand-in for the clock, about two thirds of what one core of a small cloud machine does, so
# that the search leaves time for OR-Tools when it cannot finish.
_CELLS_PER_SECOND = 60_000_000
# Share of ``time_limit_s`` that OR-Tools gets at least to improve a route not proven optimal.
_MIN_SEARCH_SHARE = 0.2
# The widest layer kept by the bounded search (memory: about 300 bytes a row at 15 tasks).
_MAX_LAYER_ROWS = 250_000
# Rows per layer of the beam search that gives the bounded search its first upper bound
# (wider from 14 tasks: a tighter first bound saves more than it costs there).
_BEAM_ROWS = 100
_WIDE_BEAM_ROWS = 300
_UNREACHED = 2**60

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
            cost += travel_weight * _final_leg(problem, node)
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
            _, travel, _, service, leave = _next_stop(problem, node, after_pickup, depart, kind, task)
            step_cost = travel_weight * travel
            if kind == "dropoff":
                step_cost += _dropoff_cost(problem, task, service)[1]
            (picked if kind == "pickup" else dropped)[task] = True
            steps.append((kind, task))
            extend(_node(problem, kind, task), kind == "pickup", leave, cost + step_cost, load + size)
            steps.pop()
            (picked if kind == "pickup" else dropped)[task] = False

    if not tasks:
        return _plan(problem, (), optimal=True)
    extend(0, False, problem.start_at, 0, problem.onboard_load)
    return _plan(problem, best[0][1], optimal=True)


# -- exact: dynamic programming over task states ---------------------------------------------
#
# A state gives each task a base-3 digit: 0 not picked up, 1 on board, 2 delivered. Every
# step raises one digit, so a state's successors have larger numbers than it has.


def _step_travel(problem: RoutingProblem) -> npt.NDArray[np.int64]:
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


def _step_end_leg(problem: RoutingProblem) -> npt.NDArray[np.int64]:
    """Travel from each step's node (columns as in :func:`_step_travel`) to the route's end."""
    tasks = problem.tasks
    nodes = [task.pickup if task.pickup is not None else 0 for task in tasks]
    nodes += [task.dropoff for task in tasks] + [0]
    if problem.end is None:
        return np.zeros(len(nodes), dtype=np.int64)
    return problem.travel_s[nodes, problem.end].astype(np.int64)


def _min_travel_sequence(problem: RoutingProblem) -> list[Step]:
    """An order of stops of least total travel (the classic TSP with pickup and delivery).

    Cost does not depend on time here, so each (state, last step) keeps one value. The table
    has a column per step (``2n`` of them; a pickup of an on-board task never happens) and
    one for the start, and is filled one layer (number of steps done) at a time, with a
    vectorised min-plus product per next step.
    """
    tasks = problem.tasks
    n = len(tasks)
    start_column = 2 * n
    travel = _step_travel(problem)
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
    column = int(np.argmin(cost[state, :start_column] + _step_end_leg(problem)[:start_column]))
    steps: list[Step] = []
    while column != start_column:
        task = column % n
        steps.append(("pickup" if column < n else "dropoff", task))
        state -= int(powers[task])
        column = int(np.argmin(cost[state] + travel[:, column]))
    steps.reverse()
    return steps


# -- exact: bounded search over task states (travel only) -------------------------------------
#
# Beyond the dense table's reach, the same layers are built sparsely: a row is a task state
# reached so far, with one value per last step, and a (state, last step) entry whose travel
# plus a lower bound on the travel still to come cannot beat the best route known is never
# extended. A beam search (the same layers, cut to their best rows) gives that first route.


_Int64s: TypeAlias = npt.NDArray[np.int64]


def _closure(costs: _Int64s) -> _Int64s:
    """Cheapest path costs between every pair of columns (Floyd-Warshall)."""
    closed = costs.copy()
    for via in range(closed.shape[0]):
        np.minimum(closed, closed[:, via, None] + closed[None, via, :], out=closed)
    return closed


class _ProjectionBound:
    """A lower bound on the travel still to come from a (state, last step) entry.

    The bound reduces arc costs by potentials ``a`` (into a step) and ``b`` (out of a step)
    given to the steps of tasks outside a chosen set ``T``: any path from the last step through
    the steps still to do costs their potentials plus its reduced arcs. The reduced arcs of a
    path cost at least its shortcut through the steps of ``T`` alone, priced by cheapest
    reduced paths; the cheapest such shortcut for each state of the tasks in ``T`` and each
    last step comes from a backward table over ``3**len(T)`` states.

    Columns as in :func:`_step_travel`, plus ``2n + 1``, a free end after the last drop-off.
    """

    def __init__(
        self, travel: _Int64s, end_leg: _Int64s, onboard: npt.NDArray[np.bool_], chosen: Sequence[int]
    ) -> None:
        n = len(onboard)
        start, end, width = 2 * n, 2 * n + 1, 2 * n + 2
        arcs = np.ones((width, width), dtype=bool)
        np.fill_diagonal(arcs, False)
        arcs[:, start] = arcs[end, :] = False
        arcs[:n, end] = arcs[start, end] = False  # the route ends with a drop-off
        task = np.arange(n)
        arcs[n + task, task] = False  # no pickup after its own drop-off
        arcs[start, n + task[~onboard]] = False
        arcs[task[onboard], :] = arcs[:, task[onboard]] = False  # never-visited pickups
        costs = np.zeros((width, width), dtype=np.int64)
        costs[: 2 * n + 1, : 2 * n + 1] = travel
        costs[: 2 * n + 1, end] = end_leg
        costs[~arcs] = _UNREACHED

        # potentials only for the steps outside T (and never for the end, nor for pickups
        # that never happen)
        free = np.ones(width, dtype=bool)
        free[list(chosen)] = free[[n + t for t in chosen]] = False
        free[end] = False
        free[task[onboard]] = False
        into = np.where(free & (np.arange(width) != start), costs.min(axis=0), 0)
        out_of = np.where(free, (costs - into[None, :]).min(axis=1), 0)
        reduced = np.where(arcs, costs - into[None, :] - out_of[:, None], _UNREACHED)
        shortest = np.minimum(_closure(reduced), _UNREACHED)

        potential = into + out_of
        #: Potentials of the steps still to do, by task and digit.
        self.table = np.zeros((n, 3), dtype=np.int64)
        self.table[:, 0] = potential[:n] + potential[n : 2 * n]
        self.table[:, 1] = potential[n : 2 * n]
        self.table[onboard, 0] = 0
        #: Out-potential of the last step.
        self.last = out_of[: 2 * n + 1].copy()
        #: Digit weights of the chosen tasks in the code of their sub-state (0 for others).
        self.weights = np.zeros(n, dtype=np.int64)
        size = len(chosen)
        self.weights[list(chosen)] = 3 ** np.arange(size, dtype=np.int64)

        # tail[sub-state, last step]: the cheapest shortcut through the chosen tasks' steps
        # still to do, then to the end.
        states = 3**size
        digits = np.arange(states)[:, None] // 3 ** np.arange(size)[None, :] % 3
        tail = np.full((states, 2 * n + 1), _UNREACHED, dtype=np.int64)
        tail[states - 1] = shortest[: 2 * n + 1, end]
        done = digits.sum(axis=1)
        for layer in range(2 * size - 1, -1, -1):
            rows = np.flatnonzero(done == layer)
            best = np.full((rows.size, 2 * n + 1), _UNREACHED, dtype=np.int64)
            for k, t in enumerate(chosen):
                for column, digit in ((t, 0), (n + t, 1)):
                    which = np.flatnonzero(digits[rows, k] == digit)
                    if which.size:
                        then = tail[rows[which] + 3**k, column]
                        step = shortest[: 2 * n + 1, column][None, :] + then[:, None]
                        best[which] = np.minimum(best[which], step)
            tail[rows] = best
        self.tail = np.minimum(tail, _UNREACHED)


def _projection_bounds(
    travel: _Int64s, end_leg: _Int64s, onboard: npt.NDArray[np.bool_]
) -> list[_ProjectionBound]:
    """Bounds on the first and the last tasks (and from 14 tasks, the middle ones too).

    A table of ``3**9`` sub-states costs about 25 ms to fill, of ``3**8`` a third of that;
    the third set pays for itself from 14 tasks on (measured on the Grubhub instances).
    """
    n = len(onboard)
    size = min(n, 8 if n <= _PROVEN_MAX_TASKS else 9)
    chosen = [list(range(size))]
    if size < n:
        chosen.append(list(range(n - size, n)))
    if n >= 14:
        middle = (n - size) // 2
        chosen.append(list(range(middle, middle + size)))
    return [_ProjectionBound(travel, end_leg, onboard, tasks) for tasks in chosen]


@dataclass
class _Layer:
    """The rows of one layer (states with the same number of steps done), sorted by code."""

    codes: _Int64s
    travel: _Int64s  # (rows, 2n + 1): least travel to each state ending at each step
    digits: npt.NDArray[np.int8]
    load: _Int64s
    potentials: list[_Int64s]  # per bound: the potentials of the steps still to do
    sub_codes: list[_Int64s]  # per bound: the code of the chosen tasks' sub-state


def _bounded_search(
    problem: RoutingProblem,
    travel: _Int64s,
    end_leg: _Int64s,
    bounds: list[_ProjectionBound],
    upper: int,
    *,
    max_rows: int | None,
    budget_cells: float | None,
) -> tuple[tuple[int, list[Step]] | None, bool]:
    """The cheapest sequence of travel below ``upper``, layer by layer.

    Returns ``(found, cut)``: ``found`` is ``(travel, steps)``, the final leg to the end
    included, or ``None`` when nothing costs less than ``upper``; ``cut`` tells whether some
    layer lost rows to ``max_rows`` or to the budget (a layer gets at most about half of the
    cells left), so that ``found`` is not proven.
    """
    tasks = problem.tasks
    n = len(tasks)
    columns = 2 * n + 1
    onboard = np.array([task.pickup is None for task in tasks])
    sizes = np.array([task.size for task in tasks], dtype=np.int64)
    powers = 3 ** np.arange(n, dtype=np.int64)
    into = np.ascontiguousarray(travel.T)
    first_digits = onboard.astype(np.int8)[None, :]
    start = np.full((1, columns), _UNREACHED, dtype=np.int64)
    start[0, 2 * n] = 0
    layer = _Layer(
        codes=np.array([int(powers[onboard].sum())], dtype=np.int64),
        travel=start,
        digits=first_digits,
        load=np.array([int(sizes[onboard].sum())], dtype=np.int64),
        potentials=[bound.table[np.arange(n), first_digits[0]].sum(keepdims=True) for bound in bounds],
        sub_codes=[(first_digits[0] * bound.weights).sum(keepdims=True) for bound in bounds],
    )
    history: list[tuple[_Int64s, npt.NDArray[np.int8]]] = []
    cut = False
    used = 0.0
    for _ in range(int(onboard.sum()), 2 * n):
        pieces: list[tuple[int, int, _Int64s, _Int64s, npt.NDArray[np.intp], _Int64s]] = []
        for task in range(n):
            for column, digit in ((task, 0), (n + task, 1)):
                allowed = layer.digits[:, task] == digit
                if digit == 0 and problem.capacity is not None:
                    allowed &= layer.load + sizes[task] <= problem.capacity
                rows = np.flatnonzero(allowed)
                if rows.size == 0:
                    continue
                used += rows.size * columns
                arrive = layer.travel[rows] + into[column]
                previous = arrive.argmin(axis=1)
                value = arrive[np.arange(rows.size), previous]
                least = np.zeros(rows.size, dtype=np.int64)
                for bound, potentials, sub_codes in zip(
                    bounds, layer.potentials, layer.sub_codes, strict=True
                ):
                    estimate = potentials[rows] + bound.last[column]
                    estimate += bound.table[task, digit + 1] - bound.table[task, digit]
                    estimate += bound.tail[sub_codes[rows] + bound.weights[task], column]
                    np.maximum(least, estimate, out=least)
                keep = value + least < upper
                if keep.any():
                    pieces.append(
                        (task, column, rows[keep], value[keep], previous[keep], (value + least)[keep])
                    )
        if not pieces:
            return None, cut
        task_of = np.concatenate([np.full(rows.size, task) for task, _, rows, *_ in pieces])
        column_of = np.concatenate([np.full(rows.size, column) for _, column, rows, *_ in pieces])
        source = np.concatenate([rows for _, _, rows, *_ in pieces])
        value = np.concatenate([piece[3] for piece in pieces])
        previous = np.concatenate([piece[4] for piece in pieces])
        estimate = np.concatenate([piece[5] for piece in pieces])
        codes, first, inverse = np.unique(
            layer.codes[source] + powers[task_of], return_index=True, return_inverse=True
        )
        cap = max_rows
        if budget_cells is not None:
            affordable = int((budget_cells - used) / (2 * n * columns))
            cap = max(_BEAM_ROWS, min(_MAX_LAYER_ROWS if cap is None else cap, affordable))
        if cap is not None and codes.size > cap:
            # keep the rows whose best entry promises the least
            promise = np.full(codes.size, _UNREACHED, dtype=np.int64)
            np.minimum.at(promise, inverse, estimate)
            chosen = np.zeros(codes.size, dtype=bool)
            chosen[np.argpartition(promise, cap)[:cap]] = True
            kept = chosen[inverse]
            task_of, column_of, source = task_of[kept], column_of[kept], source[kept]
            value, previous = value[kept], previous[kept]
            codes, first, inverse = np.unique(
                layer.codes[source] + powers[task_of], return_index=True, return_inverse=True
            )
            cut = True
        table = np.full((codes.size, columns), _UNREACHED, dtype=np.int64)
        table[inverse, column_of] = value
        back = np.full((codes.size, columns), -1, dtype=np.int8)
        back[inverse, column_of] = previous
        history.append((codes, back))
        # the other fields of a row follow from any one entry that reached it
        origin, moved = source[first], task_of[first]
        digits = layer.digits[origin]
        digits[np.arange(codes.size), moved] += 1
        now = digits[np.arange(codes.size), moved]
        layer = _Layer(
            codes=codes,
            travel=table,
            digits=digits,
            load=layer.load[origin] + np.where(now == 1, sizes[moved], -sizes[moved]),
            potentials=[
                potentials[origin] + bound.table[moved, now] - bound.table[moved, now - 1]
                for bound, potentials in zip(bounds, layer.potentials, strict=True)
            ],
            sub_codes=[
                sub_codes[origin] + bound.weights[moved]
                for bound, sub_codes in zip(bounds, layer.sub_codes, strict=True)
            ],
        )

    # Walk back from the cheapest last step; each entry names the step before it.
    finish = layer.travel[0] + end_leg
    column = int(finish.argmin())
    cost = int(finish[column])
    if cost >= upper:  # the bound only approached the final leg to the end
        return None, cut
    code = int(layer.codes[0])
    steps: list[Step] = []
    for codes, back in reversed(history):
        row = int(np.searchsorted(codes, code))
        task = column % n
        steps.append(("pickup" if column < n else "dropoff", task))
        column = int(back[row, column])
        code -= int(powers[task])
    steps.reverse()
    return (cost, steps), cut


def _bounded_min_travel_sequence(problem: RoutingProblem, time_limit_s: float) -> tuple[list[Step], bool]:
    """A sequence of least travel and whether it is proven so.

    A beam search finds a route, then the bounded search looks for a cheaper one: without
    a work limit up to ``_PROVEN_MAX_TASKS`` tasks (always a proof), within a budget of
    ``time_limit_s`` worth of table cells beyond.
    """
    n = len(problem.tasks)
    travel = _step_travel(problem)
    end_leg = _step_end_leg(problem)
    onboard = np.array([task.pickup is None for task in problem.tasks])
    bounds = _projection_bounds(travel, end_leg, onboard)
    width = _BEAM_ROWS if n < 14 else _WIDE_BEAM_ROWS
    beam, _ = _bounded_search(problem, travel, end_leg, bounds, _UNREACHED, max_rows=width, budget_cells=None)
    assert beam is not None
    budget = None if n <= _PROVEN_MAX_TASKS else time_limit_s * _CELLS_PER_SECOND
    better, cut = _bounded_search(
        problem, travel, end_leg, bounds, beam[0], max_rows=None, budget_cells=budget
    )
    return (beam[1] if better is None else better[1]), not cut


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


def _label_sequence(problem: RoutingProblem) -> list[Step]:
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
    travel = problem._travel
    hp = problem.pickup_service_s // 2
    pickup_after = problem.pickup_service_s - hp
    hd = problem.dropoff_service_s // 2
    dropoff_after = problem.dropoff_service_s - hd
    capacity = problem.capacity
    upper = _sequence_cost(problem, _insertion_sequence(problem))
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
        (label[1] + travel_weight * _final_leg(problem, node), label)
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
