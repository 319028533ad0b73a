"""Single-courier stop sequencing on integer travel-time matrices.

A :class:`RoutingProblem` holds one courier, a square matrix of travel seconds between
nodes (node 0 is where the courier is at ``start_at``) and the tasks (orders) to carry,
each with a pickup node (``None`` when the order is already on board) and a drop-off node.
:func:`solve` orders the stops; :func:`evaluate` times any given order of stops. Both
return a :class:`RoutePlan` whose times and cost always come from :func:`evaluate`'s rules:

* travelling from node ``a`` to node ``b`` takes ``travel_s[a][b]``; the route is an open
  path that ends at the last drop-off, or, with an ``end`` node, continues there (that
  last leg counts as travel, it is no stop);
* with ``hp = pickup_service_s // 2``, a pickup happens at
  ``max(ready_at, arrive_at + hp)`` and the courier leaves ``pickup_service_s - hp`` later;
  consecutive pickups at the same node are one stop, picked up together once the last of
  them is ready, with no extra service time;
* with ``hd = dropoff_service_s // 2``, a drop-off (one order per stop) happens at
  ``max(arrive_at + hd, window_start)`` and the courier leaves
  ``dropoff_service_s - hd`` later;
* the cost is ``travel_weight * travel + lateness_weight * lateness +
  completion_weight * sum(drop-off time - start_at)``, lateness being the seconds each
  drop-off happens after its deadline.

:func:`solve` is exact (dynamic programming) for a handful of tasks, and for up to 12 when
only travel counts, and uses OR-Tools routing beyond that. :func:`brute_force` enumerates
every sequence; it is exponential and meant for tests.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from dispatch.errors import InvalidInput

__all__ = [
    "Objective",
    "PlannedStop",
    "RoutePlan",
    "RouteTask",
    "RoutingProblem",
    "brute_force",
    "evaluate",
    "solve",
]

StopKindName: TypeAlias = Literal["pickup", "dropoff"]
Step: TypeAlias = tuple[StopKindName, int]

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


def _is_whole(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _whole(value: object, name: str, *, minimum: int = 0) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or int(value) < minimum:
        raise InvalidInput(f"{name} must be a whole number >= {minimum}, got {value!r}", field=name)
    return int(value)


@dataclass(frozen=True, slots=True)
class RouteTask:
    """One order to route.

    Parameters
    ----------
    pickup
        Node of its pickup, or ``None`` when it is already on board (drop-off only).
    dropoff
        Node of its drop-off.
    ready_at
        Earliest pickup time (absolute seconds).
    window_start
        Earliest drop-off time; a courier who arrives earlier waits.
    deadline
        Promised latest drop-off; each second after it costs ``lateness_weight``.
    size
        Capacity units it takes on board.

    Examples
    --------
    >>> RouteTask(pickup=1, dropoff=2, ready_at=60)
    RouteTask(pickup=1, dropoff=2, ready_at=60, window_start=0, deadline=None, size=1)
    >>> RouteTask(pickup=1, dropoff=-2)
    Traceback (most recent call last):
    ...
    dispatch.errors.InvalidInput: dropoff must be a whole number >= 0, got -2
    """

    pickup: int | None
    dropoff: int
    ready_at: int = 0
    window_start: int = 0
    deadline: int | None = None
    size: int = 1

    def __post_init__(self) -> None:
        if self.pickup is not None:
            object.__setattr__(self, "pickup", _whole(self.pickup, "pickup"))
        for name in ("dropoff", "ready_at", "window_start", "size"):
            object.__setattr__(self, name, _whole(getattr(self, name), name))
        if self.deadline is not None:
            object.__setattr__(self, "deadline", _whole(self.deadline, "deadline"))


@dataclass(frozen=True, slots=True)
class Objective:
    """Weights of the route cost; all are whole numbers >= 0.

    ``travel_weight`` is per second of driving, ``lateness_weight`` per second a drop-off
    is after its deadline, ``completion_weight`` per second from ``start_at`` to each
    drop-off (summed over drop-offs). The objective is *time-independent* when only travel
    counts; :func:`solve` is much faster then.

    >>> Objective(travel_weight=1, lateness_weight=0, completion_weight=0).time_independent
    True
    """

    travel_weight: int = 0
    lateness_weight: int = 10
    completion_weight: int = 1

    def __post_init__(self) -> None:
        for name in ("travel_weight", "lateness_weight", "completion_weight"):
            object.__setattr__(self, name, _whole(getattr(self, name), name))

    @property
    def time_independent(self) -> bool:
        return self.lateness_weight == 0 and self.completion_weight == 0


@dataclass(frozen=True, eq=False)
class RoutingProblem:
    """One courier, its tasks and a travel-time matrix.

    The matrix is copied into a read-only ``int64`` array; change a problem with
    :func:`dataclasses.replace`. Problems compare by identity.

    Parameters
    ----------
    travel_s
        ``(n, n)`` whole seconds ``>= 0``; node 0 is the start.
    tasks
        The orders to route; indices into this tuple name them in plans.
    start_at
        When the courier is at node 0, free to go.
    capacity
        Capacity units the courier carries, ``None`` for unlimited. Orders already on
        board count from the start.
    pickup_service_s, dropoff_service_s
        Time spent at a pickup (once per stop) and at a drop-off.
    objective
        The cost weights.
    end
        Node where the route must finish after its last drop-off (the final leg counts as
        travel), or ``None`` for an open path that ends at the last drop-off.

    Examples
    --------
    >>> problem = RoutingProblem(np.array([[0, 5], [5, 0]]), (RouteTask(None, 1),))
    >>> problem.travel_s.dtype
    dtype('int64')
    >>> RoutingProblem(np.array([[0, 5], [5, 0]]), (RouteTask(None, 2),))
    Traceback (most recent call last):
    ...
    dispatch.errors.InvalidInput: task 0: drop-off node 2 is outside the 2-node matrix
    """

    travel_s: npt.NDArray[np.int64]
    tasks: tuple[RouteTask, ...]
    start_at: int = 0
    capacity: int | None = None
    pickup_service_s: int = 0
    dropoff_service_s: int = 0
    objective: Objective = Objective()
    end: int | None = None
    # The matrix as nested lists: indexing them is several times faster than numpy's
    # scalar indexing in the per-stop loops.
    _travel: list[list[int]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        matrix = np.asarray(self.travel_s)
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
            raise InvalidInput(
                f"travel_s must be a non-empty square matrix, got shape {matrix.shape}", field="travel_s"
            )
        if not np.issubdtype(matrix.dtype, np.integer):
            raise InvalidInput(
                f"travel_s must hold whole seconds, got dtype {matrix.dtype}", field="travel_s"
            )
        if (matrix < 0).any():
            row, col = (int(x) for x in np.argwhere(matrix < 0)[0])
            raise InvalidInput(
                f"travel_s[{row}][{col}] is {matrix[row, col]}, travel times must be >= 0", field="travel_s"
            )
        matrix = matrix.astype(np.int64, copy=True)
        matrix.flags.writeable = False
        object.__setattr__(self, "travel_s", matrix)
        object.__setattr__(self, "_travel", matrix.tolist())

        tasks = tuple(self.tasks)
        object.__setattr__(self, "tasks", tasks)
        nodes = matrix.shape[0]
        for index, task in enumerate(tasks):
            if not isinstance(task, RouteTask):
                raise InvalidInput(f"task {index} is not a RouteTask: {task!r}", field="tasks")
            ends: tuple[tuple[str, int | None], ...] = (("pickup", task.pickup), ("drop-off", task.dropoff))
            for what, end in ends:
                if end is not None and end >= nodes:
                    raise InvalidInput(
                        f"task {index}: {what} node {end} is outside the {nodes}-node matrix", field="tasks"
                    )

        if self.end is not None:
            end = _whole(self.end, "end")
            if end >= nodes:
                raise InvalidInput(f"end node {end} is outside the {nodes}-node matrix", field="end")
            object.__setattr__(self, "end", end)
        object.__setattr__(self, "start_at", _whole(self.start_at, "start_at"))
        object.__setattr__(self, "pickup_service_s", _whole(self.pickup_service_s, "pickup_service_s"))
        object.__setattr__(self, "dropoff_service_s", _whole(self.dropoff_service_s, "dropoff_service_s"))
        if not isinstance(self.objective, Objective):
            raise InvalidInput(f"objective must be an Objective, got {self.objective!r}", field="objective")
        if self.capacity is not None:
            capacity = _whole(self.capacity, "capacity")
            object.__setattr__(self, "capacity", capacity)
            for index, task in enumerate(tasks):
                if task.size > capacity:
                    raise InvalidInput(
                        f"task {index} has size {task.size}, more than the capacity {capacity}",
                        field="capacity",
                    )
            if self.onboard_load > capacity:
                raise InvalidInput(
                    f"on-board load {self.onboard_load} exceeds the capacity {capacity}", field="capacity"
                )

    @property
    def onboard_load(self) -> int:
        """Capacity units already on board at ``start_at``."""
        return sum(task.size for task in self.tasks if task.pickup is None)


@dataclass(frozen=True, slots=True)
class PlannedStop:
    """One stop of a plan with its times (absolute seconds).

    A pickup stop serves every task picked up there at once; a drop-off stop serves one.
    ``service_at`` is when the food changes hands.
    """

    kind: StopKindName
    node: int
    tasks: tuple[int, ...]
    arrive_at: int
    service_at: int
    depart_at: int

    def __post_init__(self) -> None:
        if self.kind not in ("pickup", "dropoff"):
            raise InvalidInput(f"stop kind must be 'pickup' or 'dropoff', got {self.kind!r}", field="kind")
        if not self.tasks or (self.kind == "dropoff" and len(self.tasks) != 1):
            raise InvalidInput(f"a {self.kind} stop cannot serve tasks {self.tasks}", field="tasks")
        if not self.arrive_at <= self.service_at <= self.depart_at:
            raise InvalidInput(
                f"stop times must not decrease, got arrive {self.arrive_at}, service {self.service_at}, "
                f"depart {self.depart_at}",
                field="service_at",
            )


@dataclass(frozen=True, slots=True)
class RoutePlan:
    """A timed sequence of stops and what it costs.

    ``travel_s`` is the total driving time, ``lateness_s`` the summed seconds past
    deadlines; ``optimal`` says that the cost was proven minimal.
    """

    stops: tuple[PlannedStop, ...]
    cost: int
    travel_s: int
    lateness_s: int
    optimal: bool

    @property
    def sequence(self) -> tuple[Step, ...]:
        """The plan as ``(kind, task)`` steps, the input :func:`evaluate` takes."""
        return tuple((stop.kind, task) for stop in self.stops for task in stop.tasks)


# -- timing ----------------------------------------------------------------------------------


def _next_stop(
    problem: RoutingProblem, node: int, after_pickup: bool, depart_at: int, kind: str, task: int
) -> tuple[bool, int, int, int, int]:
    """Time one step after leaving ``node`` at ``depart_at``.

    Returns ``(merged, travel, arrive_at, service_at, depart_at)``; ``merged`` means that
    the step joins the previous pickup stop, whose arrival stays as it was.
    """
    item = problem.tasks[task]
    if kind == "pickup":
        after = problem.pickup_service_s - problem.pickup_service_s // 2
        target = item.pickup
        assert target is not None
        if after_pickup and target == node:
            service = max(depart_at - after, item.ready_at)
            return True, 0, -1, service, service + after
        travel = problem._travel[node][target]
        arrive = depart_at + travel
        service = max(item.ready_at, arrive + problem.pickup_service_s // 2)
        return False, travel, arrive, service, service + after
    before = problem.dropoff_service_s // 2
    travel = problem._travel[node][item.dropoff]
    arrive = depart_at + travel
    service = max(arrive + before, item.window_start)
    return False, travel, arrive, service, service + problem.dropoff_service_s - before


def _final_leg(problem: RoutingProblem, node: int) -> int:
    """Travel from the last stop's ``node`` to the route's end (0 for an open path)."""
    return 0 if problem.end is None else problem._travel[node][problem.end]


def _node(problem: RoutingProblem, kind: str, task: int) -> int:
    node = problem.tasks[task].pickup if kind == "pickup" else problem.tasks[task].dropoff
    assert node is not None
    return node


def _dropoff_cost(problem: RoutingProblem, task: int, service_at: int) -> tuple[int, int]:
    """``(lateness_s, cost)`` of a drop-off of ``task`` at ``service_at``."""
    deadline = problem.tasks[task].deadline
    late = 0 if deadline is None else max(0, service_at - deadline)
    objective = problem.objective
    return late, objective.lateness_weight * late + objective.completion_weight * (
        service_at - problem.start_at
    )


def _check_sequence(problem: RoutingProblem, sequence: Sequence[tuple[str, int]]) -> list[Step]:
    tasks = problem.tasks
    picked = [task.pickup is None for task in tasks]
    dropped = [False] * len(tasks)
    load = problem.onboard_load
    steps: list[Step] = []
    for position, step in enumerate(sequence):
        if not isinstance(step, tuple) or len(step) != 2:
            raise InvalidInput(f"step {position} must be a (kind, task) pair, got {step!r}", field="sequence")
        kind, task = step
        if kind not in ("pickup", "dropoff"):
            raise InvalidInput(f"step {position}: kind must be 'pickup' or 'dropoff', got {kind!r}")
        if not _is_whole(task) or not 0 <= task < len(tasks):
            raise InvalidInput(
                f"step {position}: no task {task!r} among {len(tasks)} tasks", field="sequence"
            )
        task = int(task)
        if kind == "pickup":
            if tasks[task].pickup is None:
                raise InvalidInput(f"task {task} is already on board and has no pickup", field="sequence")
            if picked[task]:
                raise InvalidInput(f"task {task} is picked up twice", field="sequence")
            picked[task] = True
            load += tasks[task].size
            if problem.capacity is not None and load > problem.capacity:
                raise InvalidInput(
                    f"picking up task {task} makes the load {load}, over the capacity {problem.capacity}",
                    field="sequence",
                )
            steps.append(("pickup", task))
        else:
            if dropped[task]:
                raise InvalidInput(f"task {task} is dropped off twice", field="sequence")
            if not picked[task]:
                raise InvalidInput(f"task {task} is dropped off before it is picked up", field="sequence")
            dropped[task] = True
            load -= tasks[task].size
            steps.append(("dropoff", task))
    missing = [task for task, done in enumerate(dropped) if not done]
    if missing:
        raise InvalidInput(f"tasks {missing} are never dropped off", field="sequence")
    return steps


def _plan(problem: RoutingProblem, steps: Sequence[Step], *, optimal: bool) -> RoutePlan:
    """Time a valid sequence of steps."""
    stops: list[PlannedStop] = []
    node, after_pickup, depart = 0, False, problem.start_at
    travel_s = lateness_s = cost = 0
    for kind, task in steps:
        merged, travel, arrive, service, depart = _next_stop(problem, node, after_pickup, depart, kind, task)
        if merged:
            last = stops[-1]
            stops[-1] = replace(last, tasks=(*last.tasks, task), service_at=service, depart_at=depart)
        else:
            node = _node(problem, kind, task)
            stops.append(PlannedStop(kind, node, (task,), arrive, service, depart))
        after_pickup = kind == "pickup"
        travel_s += travel
        if kind == "dropoff":
            late, stop_cost = _dropoff_cost(problem, task, service)
            lateness_s += late
            cost += stop_cost
    travel_s += _final_leg(problem, node)
    cost += problem.objective.travel_weight * travel_s
    return RoutePlan(tuple(stops), cost, travel_s, lateness_s, optimal)


def evaluate(problem: RoutingProblem, sequence: Sequence[tuple[str, int]]) -> RoutePlan:
    """Time a given order of stops and price it.

    Parameters
    ----------
    problem
        The routing problem.
    sequence
        ``("pickup" | "dropoff", task)`` steps: every task's drop-off once, after its
        pickup unless the task is on board.

    Returns
    -------
    RoutePlan
        The timed plan, with ``optimal=False``.

    Raises
    ------
    InvalidInput
        (a ``ValueError``) when a task is missing or repeated, a drop-off precedes its
        pickup, or the load exceeds the capacity.

    Examples
    --------
    Two orders ready at 30 s and 50 s at node 1, dropped off at nodes 2 and 3:

    >>> travel_s = np.array([[0, 10, 20, 20], [10, 0, 15, 25], [20, 15, 0, 5], [20, 25, 5, 0]])
    >>> problem = RoutingProblem(travel_s, (RouteTask(1, 2, ready_at=30), RouteTask(1, 3, ready_at=50)))
    >>> plan = evaluate(problem, [("pickup", 0), ("pickup", 1), ("dropoff", 0), ("dropoff", 1)])
    >>> [(stop.kind, stop.tasks, stop.service_at) for stop in plan.stops]
    [('pickup', (0, 1), 50), ('dropoff', (0,), 65), ('dropoff', (1,), 70)]
    >>> plan.cost, plan.travel_s
    (135, 30)
    >>> evaluate(problem, [("dropoff", 0), ("pickup", 0)])
    Traceback (most recent call last):
    ...
    dispatch.errors.InvalidInput: task 0 is dropped off before it is picked up
    """
    return _plan(problem, _check_sequence(problem, sequence), optimal=False)


# -- exhaustive search -----------------------------------------------------------------------


def brute_force(problem: RoutingProblem) -> RoutePlan:
    """Find an optimal plan by trying every feasible sequence.

    Exponential: ``(2n)! / 2**n`` sequences for ``n`` tasks with pickups (2,520 for 4,
    113,400 for 5). Meant to check :func:`solve` in tests.

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


# -- heuristics ------------------------------------------------------------------------------


def _sequence_cost(problem: RoutingProblem, steps: Sequence[Step], bound: int | None = None) -> int | None:
    """Cost of a precedence-feasible (possibly partial) sequence; ``None`` if the load goes
    over the capacity or the cost over ``bound``."""
    node, after_pickup, depart = 0, False, problem.start_at
    load = problem.onboard_load
    cost = 0
    for kind, task in steps:
        _, travel, _, service, depart = _next_stop(problem, node, after_pickup, depart, kind, task)
        cost += problem.objective.travel_weight * travel
        if kind == "pickup":
            load += problem.tasks[task].size
            if problem.capacity is not None and load > problem.capacity:
                return None
        else:
            load -= problem.tasks[task].size
            cost += _dropoff_cost(problem, task, service)[1]
        if bound is not None and cost > bound:
            return None
        node, after_pickup = _node(problem, kind, task), kind == "pickup"
    cost += problem.objective.travel_weight * _final_leg(problem, node)
    return None if bound is not None and cost > bound else cost


def _insertion_sequence(problem: RoutingProblem) -> list[Step]:
    """Cheapest insertion: on-board drop-offs first, then each order by ready time, each at the
    positions of least added cost. Always feasible: appending a pickup and its drop-off to
    a complete sequence is."""
    tasks = problem.tasks
    order = sorted(
        range(len(tasks)), key=lambda task: (tasks[task].pickup is not None, tasks[task].ready_at, task)
    )
    steps: list[Step] = []
    for task in order:
        best: tuple[int, list[Step]] | None = None
        drop: Step = ("dropoff", task)
        if tasks[task].pickup is None:
            candidates = [[*steps[:at], drop, *steps[at:]] for at in range(len(steps) + 1)]
        else:
            pick: Step = ("pickup", task)
            candidates = [
                [*steps[:at], pick, *steps[at:to], drop, *steps[to:]]
                for at in range(len(steps) + 1)
                for to in range(at, len(steps) + 1)
            ]
        for candidate in candidates:
            cost = _sequence_cost(problem, candidate, None if best is None else best[0] - 1)
            if cost is not None and (best is None or cost < best[0]):
                best = (cost, candidate)
        assert best is not None
        steps = best[1]
    return steps


def _ortools_sequence(
    problem: RoutingProblem, initial: list[Step], time_limit_s: float, *, seeded: bool = False
) -> list[Step] | None:
    """An order of stops found by OR-Tools routing, or ``None`` if it finds none in time.

    Guided local search starts from ``initial`` when ``seeded``, else from OR-Tools'
    parallel cheapest insertion or, when that finds nothing, from ``initial``.

    Routing nodes: 0 the start, one per step, then the end (free for an open route). The
    time dimension's cumul at a step is its service instant, so its soft upper bounds price
    completion (bound ``start_at``) and lateness (bound ``deadline``) exactly.
    """
    tasks = problem.tasks
    objective = problem.objective
    steps: list[Step] = []
    for task, item in enumerate(tasks):
        if item.pickup is not None:
            steps.append(("pickup", task))
        steps.append(("dropoff", task))
    size = len(steps) + 2
    end = size - 1
    node = [0] + [_node(problem, kind, task) for kind, task in steps] + [0]
    is_pickup = [False] + [kind == "pickup" for kind, _ in steps] + [False]
    hp = problem.pickup_service_s // 2
    hd = problem.dropoff_service_s // 2
    before = [0] + [hp if pickup else hd for pickup in is_pickup[1:-1]] + [0]
    after = (
        [0]
        + [
            problem.pickup_service_s - hp if pickup else problem.dropoff_service_s - hd
            for pickup in is_pickup[1:-1]
        ]
        + [0]
    )

    time_matrix = [[0] * size for _ in range(size)]
    cost_matrix = [[0] * size for _ in range(size)]
    for a in range(size - 1):
        for b in range(1, size - 1):
            if a == b or (is_pickup[a] and is_pickup[b] and node[a] == node[b]):
                continue  # consecutive pickups at one node are one stop
            hop = problem._travel[node[a]][node[b]]
            time_matrix[a][b] = after[a] + hop + before[b]
            cost_matrix[a][b] = objective.travel_weight * hop
        leg = _final_leg(problem, node[a])
        time_matrix[a][end] = after[a] + leg
        cost_matrix[a][end] = objective.travel_weight * leg
    opens = [problem.start_at] + [item.ready_at for item in tasks] + [item.window_start for item in tasks]
    horizon = max(opens) + sum(max(row) for row in time_matrix) + 1

    manager = pywrapcp.RoutingIndexManager(size, 1, [0], [end])
    routing = pywrapcp.RoutingModel(manager)
    solver = routing.solver()
    routing.SetArcCostEvaluatorOfAllVehicles(routing.RegisterTransitMatrix(cost_matrix))
    time_transit = routing.RegisterTransitMatrix(time_matrix)
    routing.AddDimension(time_transit, horizon, horizon, False, "time")
    time = routing.GetDimensionOrDie("time")
    time.CumulVar(routing.Start(0)).SetRange(problem.start_at, problem.start_at)
    # One cumul takes one soft upper bound: with both completion and lateness priced,
    # lateness goes on a copy of the time dimension tied to it at the drop-offs.
    lateness = time
    if objective.completion_weight and objective.lateness_weight:
        routing.AddDimension(time_transit, horizon, horizon, False, "lateness")
        lateness = routing.GetDimensionOrDie("lateness")
    routing.AddConstantDimension(1, size, True, "position")
    position = routing.GetDimensionOrDie("position")

    index_of = {step: manager.NodeToIndex(k + 1) for k, step in enumerate(steps)}
    for (kind, task), index in index_of.items():
        item = tasks[task]
        if kind == "pickup":
            time.CumulVar(index).SetRange(item.ready_at, horizon)
            drop = index_of[("dropoff", task)]
            routing.AddPickupAndDelivery(index, drop)
            solver.Add(routing.VehicleVar(index) == routing.VehicleVar(drop))
            solver.Add(position.CumulVar(index) < position.CumulVar(drop))
            continue
        time.CumulVar(index).SetRange(item.window_start, horizon)
        if objective.completion_weight:
            time.SetCumulVarSoftUpperBound(index, problem.start_at, objective.completion_weight)
        if objective.lateness_weight and item.deadline is not None:
            if lateness is not time:
                solver.Add(lateness.CumulVar(index) == time.CumulVar(index))
            lateness.SetCumulVarSoftUpperBound(index, item.deadline, objective.lateness_weight)

    if problem.capacity is not None:
        demand = [0] * size
        for (kind, task), index in index_of.items():
            demand[manager.IndexToNode(index)] = tasks[task].size * (1 if kind == "pickup" else -1)
        routing.AddDimension(routing.RegisterUnaryTransitVector(demand), 0, problem.capacity, False, "load")
        load = routing.GetDimensionOrDie("load")
        load.CumulVar(routing.Start(0)).SetRange(problem.onboard_load, problem.onboard_load)

    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.time_limit.FromMilliseconds(max(1, round(time_limit_s * 1000)))
    solution = None if seeded else routing.SolveWithParameters(parameters)
    if solution is None:
        # The insertion heuristics give up when the load on board leaves no room for a
        # pickup until some on-board drop-off is placed: start from our own construction.
        route = [index_of[step] for step in initial]
        start = routing.ReadAssignmentFromRoutes([route], True)
        if start is not None:
            solution = routing.SolveFromAssignmentWithParameters(start, parameters)
    if solution is None:
        return None
    found: list[Step] = []
    index = solution.Value(routing.NextVar(routing.Start(0)))
    while not routing.IsEnd(index):
        found.append(steps[manager.IndexToNode(index) - 1])
        index = solution.Value(routing.NextVar(index))
    return found


# -- entry point -----------------------------------------------------------------------------


def solve(problem: RoutingProblem, *, time_limit_s: float = 1.0, exact_max_tasks: int = 6) -> RoutePlan:
    """Order the courier's stops to minimise the objective.

    The method follows the problem's difficulty:

    * travel only (:attr:`Objective.time_independent`): exact dynamic programming over task
      states, always proven optimal up to 12 tasks (a dense table up to 9, then a search
      pruned by lower bounds, typically 0.1 s at 12 tasks); from 13 to 24 tasks the same
      search runs within a work budget worth about ``time_limit_s`` and the plan is
      ``optimal`` only if it finished; if it did not, OR-Tools' guided local search starts
      from its best route for the time left (at least a fifth of ``time_limit_s``);
    * any other objective: exact labels (``optimal=True``) up to ``exact_max_tasks`` tasks,
      capped at 8;
    * beyond that, OR-Tools routing (guided local search for ``time_limit_s`` seconds) and a
      cheapest-insertion construction each propose a sequence and the cheaper one is
      returned (``optimal=False``).

    Times and cost always come from :func:`evaluate`; the plan depends only on the input
    (work budgets count table cells, not seconds), except where OR-Tools runs.

    Parameters
    ----------
    problem
        The routing problem.
    time_limit_s
        Search time for OR-Tools, and the scale of the bounded search's work budget.
    exact_max_tasks
        Largest number of tasks for which a time-dependent objective is solved exactly;
        0 always uses OR-Tools and the construction, whatever the objective.

    Examples
    --------
    Two orders from one restaurant (node 1), ready at 30 s and 50 s. Waiting to carry both
    (drop-offs at 65 s and 70 s) costs 135 s of summed drop-off times; delivering the first
    while the second is prepared costs 45 + 85 = 130:

    >>> travel_s = np.array([[0, 10, 20, 20], [10, 0, 15, 25], [20, 15, 0, 5], [20, 25, 5, 0]])
    >>> tasks = (RouteTask(1, 2, ready_at=30), RouteTask(1, 3, ready_at=50))
    >>> plan = solve(RoutingProblem(travel_s, tasks))
    >>> plan.sequence, plan.cost, plan.optimal
    ((('pickup', 0), ('dropoff', 0), ('pickup', 1), ('dropoff', 1)), 130, True)
    >>> [stop.service_at for stop in plan.stops]
    [30, 45, 60, 85]
    >>> solve(RoutingProblem(travel_s, ()))
    RoutePlan(stops=(), cost=0, travel_s=0, lateness_s=0, optimal=True)
    """
    if not time_limit_s > 0:
        raise InvalidInput(f"time_limit_s must be positive, got {time_limit_s!r}", field="time_limit_s")
    exact_max_tasks = _whole(exact_max_tasks, "exact_max_tasks")
    if not problem.tasks:
        return _plan(problem, (), optimal=True)
    n = len(problem.tasks)
    if exact_max_tasks and n == 1:
        # one order has exactly one feasible sequence: the common case of a dispatch tick
        only: tuple[Step, ...] = (
            (("dropoff", 0),) if problem.tasks[0].pickup is None else (("pickup", 0), ("dropoff", 0))
        )
        return _plan(problem, only, optimal=True)
    if exact_max_tasks and problem.objective.time_independent and n <= _BOUNDED_MAX_TASKS:
        if n <= _DENSE_MAX_TASKS:
            return _plan(problem, _min_travel_sequence(problem), optimal=True)
        started = time.perf_counter()
        steps, proven = _bounded_min_travel_sequence(problem, time_limit_s)
        if proven:
            return _plan(problem, steps, optimal=True)
        # Not proven: guided local search from the best route found, for the time left.
        left_s = max(time_limit_s - (time.perf_counter() - started), _MIN_SEARCH_SHARE * time_limit_s)
        found = _ortools_sequence(problem, steps, left_s, seeded=True)
        plans = [_plan(problem, steps, optimal=False)]
        if found is not None:
            plans.append(evaluate(problem, found))
        return min(plans, key=lambda plan: plan.cost)
    if n <= min(exact_max_tasks, _MAX_LABEL_TASKS) and not problem.objective.time_independent:
        return _plan(problem, _label_sequence(problem), optimal=True)

    constructed = _insertion_sequence(problem)
    plans = []
    found = _ortools_sequence(problem, constructed, time_limit_s)
    if found is not None:
        plans.append(evaluate(problem, found))
    plans.append(_plan(problem, constructed, optimal=False))
    return min(plans, key=lambda plan: plan.cost)
