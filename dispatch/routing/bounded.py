"""Exact sequencing beyond the dense table: a bounded search over task states (travel
only), proven optimal up to ``PROVEN_MAX_TASKS`` tasks and within a work budget beyond."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt

from dispatch.routing.exact import step_end_leg, step_travel
from dispatch.routing.problem import (
    RouteTask,  # noqa: F401  (the doctests use it)
    RoutingProblem,
    Step,
)

__all__ = ["BOUNDED_MAX_TASKS", "MIN_SEARCH_SHARE", "PROVEN_MAX_TASKS", "bounded_min_travel_sequence"]

# ... then a search over the states that a lower bound cannot rule out, always run to the
# end (a proof) up to this many tasks ...
PROVEN_MAX_TASKS = 12
# ... and within a work budget up to this many (beyond it, OR-Tools routing).
BOUNDED_MAX_TASKS = 24
# Table cells (state x last stop) examined per second of ``time_limit_s``: a deterministic
# stand-in for the clock, about two thirds of what one core of a small cloud machine does, so
# that the search leaves time for OR-Tools when it cannot finish.
_CELLS_PER_SECOND = 60_000_000
# Share of ``time_limit_s`` that OR-Tools gets at least to improve a route not proven optimal.
MIN_SEARCH_SHARE = 0.2
# The widest layer kept by the bounded search (memory: about 300 bytes a row at 15 tasks).
_MAX_LAYER_ROWS = 250_000
# Rows per layer of the beam search that gives the bounded search its first upper bound
# (wider from 14 tasks: a tighter first bound saves more than it costs there).
_BEAM_ROWS = 100
_WIDE_BEAM_ROWS = 300
_UNREACHED = 2**60


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

    Columns as in :func:`step_travel`, plus ``2n + 1``, a free end after the last drop-off.
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
    size = min(n, 8 if n <= PROVEN_MAX_TASKS else 9)
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


def bounded_min_travel_sequence(problem: RoutingProblem, time_limit_s: float) -> tuple[list[Step], bool]:
    """A sequence of least travel and whether it is proven so.

    A beam search finds a route, then the bounded search looks for a cheaper one: without
    a work limit up to ``PROVEN_MAX_TASKS`` tasks (always a proof), within a budget of
    ``time_limit_s`` worth of table cells beyond.
    """
    n = len(problem.tasks)
    travel = step_travel(problem)
    end_leg = step_end_leg(problem)
    onboard = np.array([task.pickup is None for task in problem.tasks])
    bounds = _projection_bounds(travel, end_leg, onboard)
    width = _BEAM_ROWS if n < 14 else _WIDE_BEAM_ROWS
    beam, _ = _bounded_search(problem, travel, end_leg, bounds, _UNREACHED, max_rows=width, budget_cells=None)
    assert beam is not None
    budget = None if n <= PROVEN_MAX_TASKS else time_limit_s * _CELLS_PER_SECOND
    better, cut = _bounded_search(
        problem, travel, end_leg, bounds, beam[0], max_rows=None, budget_cells=budget
    )
    return (beam[1] if better is None else better[1]), not cut
