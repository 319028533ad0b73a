"""Routing problems and plans: tasks, objective, validation, and timing a fixed sequence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt

from dispatch.errors import InvalidInput
from dispatch.timing import dropoff_at, leave_s, pickup_at

__all__ = [
    "Objective",
    "PlannedStop",
    "RoutePlan",
    "RouteTask",
    "RoutingProblem",
    "Step",
    "StopKindName",
    "evaluate",
]

StopKindName: TypeAlias = Literal["pickup", "dropoff"]
Step: TypeAlias = tuple[StopKindName, int]


def _is_whole(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def whole_number(value: object, name: str, *, minimum: int = 0) -> int:
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
            object.__setattr__(self, "pickup", whole_number(self.pickup, "pickup"))
        for name in ("dropoff", "ready_at", "window_start", "size"):
            object.__setattr__(self, name, whole_number(getattr(self, name), name))
        if self.deadline is not None:
            object.__setattr__(self, "deadline", whole_number(self.deadline, "deadline"))


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
            object.__setattr__(self, name, whole_number(getattr(self, name), name))

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
    travel_rows: list[list[int]] = field(init=False, repr=False)

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
        object.__setattr__(self, "travel_rows", matrix.tolist())

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
            end = whole_number(self.end, "end")
            if end >= nodes:
                raise InvalidInput(f"end node {end} is outside the {nodes}-node matrix", field="end")
            object.__setattr__(self, "end", end)
        object.__setattr__(self, "start_at", whole_number(self.start_at, "start_at"))
        object.__setattr__(self, "pickup_service_s", whole_number(self.pickup_service_s, "pickup_service_s"))
        object.__setattr__(
            self, "dropoff_service_s", whole_number(self.dropoff_service_s, "dropoff_service_s")
        )
        if not isinstance(self.objective, Objective):
            raise InvalidInput(f"objective must be an Objective, got {self.objective!r}", field="objective")
        if self.capacity is not None:
            capacity = whole_number(self.capacity, "capacity")
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


def next_stop(
    problem: RoutingProblem, node: int, after_pickup: bool, depart_at: int, kind: str, task: int
) -> tuple[bool, int, int, int, int]:
    """Time one step after leaving ``node`` at ``depart_at``.

    Returns ``(merged, travel, arrive_at, service_at, depart_at)``; ``merged`` means that
    the step joins the previous pickup stop, whose arrival stays as it was.
    """
    item = problem.tasks[task]
    if kind == "pickup":
        after = leave_s(problem.pickup_service_s)
        target = item.pickup
        assert target is not None
        if after_pickup and target == node:
            service = max(depart_at - after, item.ready_at)
            return True, 0, -1, service, service + after
        travel = problem.travel_rows[node][target]
        arrive = depart_at + travel
        service = pickup_at(arrive, item.ready_at, problem.pickup_service_s)
        return False, travel, arrive, service, service + after
    travel = problem.travel_rows[node][item.dropoff]
    arrive = depart_at + travel
    service = dropoff_at(arrive, item.window_start, problem.dropoff_service_s)
    return False, travel, arrive, service, service + leave_s(problem.dropoff_service_s)


def final_leg(problem: RoutingProblem, node: int) -> int:
    """Travel from the last stop's ``node`` to the route's end (0 for an open path)."""
    return 0 if problem.end is None else problem.travel_rows[node][problem.end]


def node_of(problem: RoutingProblem, kind: str, task: int) -> int:
    node = problem.tasks[task].pickup if kind == "pickup" else problem.tasks[task].dropoff
    assert node is not None
    return node


def dropoff_cost(problem: RoutingProblem, task: int, service_at: int) -> tuple[int, int]:
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


def timed_plan(problem: RoutingProblem, steps: Sequence[Step], *, optimal: bool) -> RoutePlan:
    """Time a valid sequence of steps."""
    stops: list[PlannedStop] = []
    node, after_pickup, depart = 0, False, problem.start_at
    travel_s = lateness_s = cost = 0
    for kind, task in steps:
        merged, travel, arrive, service, depart = next_stop(problem, node, after_pickup, depart, kind, task)
        if merged:
            last = stops[-1]
            stops[-1] = replace(last, tasks=(*last.tasks, task), service_at=service, depart_at=depart)
        else:
            node = node_of(problem, kind, task)
            stops.append(PlannedStop(kind, node, (task,), arrive, service, depart))
        after_pickup = kind == "pickup"
        travel_s += travel
        if kind == "dropoff":
            late, stop_cost = dropoff_cost(problem, task, service)
            lateness_s += late
            cost += stop_cost
    travel_s += final_leg(problem, node)
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
    return timed_plan(problem, _check_sequence(problem, sequence), optimal=False)
