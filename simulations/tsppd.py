"""Traveling salesman paths with pickup and delivery (TSPPD) in the Grubhub ``tsppdlib`` format.

One courier starts at ``+0``, visits every pickup ``+i`` before its drop-off ``-i`` and
finishes at ``-0``; a tour costs the sum of its arcs. In the Grubhub instances every arc into
``-0`` is free (an open path); in the synthetic ones ``-0`` is a place to return to. Reading
the format lives here and
nowhere else. Solving goes through :func:`dispatch.routing.solve`, the code dispatch calls:
:func:`instance_to_problem` turns an instance into a travel-only
:class:`~dispatch.routing.RoutingProblem` and :func:`solve_instance` reports the result.
:func:`with_windows` makes a dispatch-like variant with ready times, deadlines, capacity and
orders already on board.

Examples
--------
>>> instance = instance_from_json(
...     {
...         "name": "tiny",
...         "nodes": ["+0", "-0", "+1", "-1"],
...         "precedence": {"+0": "-0", "+1": "-1"},
...         "edges": [[0, 0, 4, 9], [0, 0, 0, 0], [4, 0, 0, 3], [9, 0, 3, 0]],
...     }
... )
>>> result = solve_instance(instance)
>>> result["tour"], result["cost"], result["optimal"]
(['+0', '+1', '-1', '-0'], 7, True)
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from dispatch.errors import InvalidInput
from dispatch.routing import Objective, RoutePlan, RouteTask, RoutingProblem, solve

__all__ = [
    "END",
    "START",
    "TRAVEL_ONLY",
    "TsppdInstance",
    "instance_from_json",
    "instance_to_problem",
    "plan_to_tour",
    "read_instance",
    "read_optimal",
    "solve_file",
    "solve_instance",
    "tour_cost",
    "with_windows",
]

START = "+0"
END = "-0"
TRAVEL_ONLY = Objective(travel_weight=1, lateness_weight=0, completion_weight=0)
_KEYS = ("name", "nodes", "precedence", "edges")


@dataclass(frozen=True, eq=False)
class TsppdInstance:
    """One TSPPD instance; compare by identity.

    Parameters
    ----------
    name
        The instance's name.
    nodes
        Node labels; ``edges`` is indexed in this order.
    pairs
        ``(pickup, drop-off)`` labels of the orders, in the file's order (``+0``/``-0`` apart).
    edges
        ``edges[a][b]``: whole cost ``>= 0`` of the arc from ``nodes[a]`` to ``nodes[b]``;
        kept as a read-only ``int64`` array.
    """

    name: str
    nodes: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    edges: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        nodes = tuple(self.nodes)
        object.__setattr__(self, "nodes", nodes)
        if len(set(nodes)) != len(nodes):
            repeated = sorted({label for label in nodes if nodes.count(label) > 1})
            raise InvalidInput(f"{self.name}: node labels {repeated} appear more than once", field="nodes")
        for label in (START, END):
            if label not in nodes:
                raise InvalidInput(f"{self.name}: no node {label!r} among the nodes", field="nodes")
        pairs = tuple((str(pickup), str(dropoff)) for pickup, dropoff in self.pairs)
        object.__setattr__(self, "pairs", pairs)
        seen = {START, END}
        for pickup, dropoff in pairs:
            for label in (pickup, dropoff):
                if label not in nodes:
                    raise InvalidInput(
                        f"{self.name}: precedence {pickup!r} -> {dropoff!r} names an unknown node {label!r}",
                        field="precedence",
                    )
                if label in seen:
                    raise InvalidInput(
                        f"{self.name}: node {label!r} is in more than one precedence pair", field="precedence"
                    )
                seen.add(label)
        missing = [label for label in nodes if label not in seen]
        if missing:
            raise InvalidInput(f"{self.name}: nodes {missing} are in no precedence pair", field="precedence")

        edges = np.asarray(self.edges)
        size = len(nodes)
        if edges.shape != (size, size):
            raise InvalidInput(
                f"{self.name}: edges must be a {size} x {size} matrix (one row and column per node), "
                f"got shape {edges.shape}",
                field="edges",
            )
        if not np.issubdtype(edges.dtype, np.integer) or np.issubdtype(edges.dtype, np.bool_):
            raise InvalidInput(f"{self.name}: edges must be whole numbers, got {edges.dtype}", field="edges")
        if (edges < 0).any():
            row, col = (int(x) for x in np.argwhere(edges < 0)[0])
            raise InvalidInput(
                f"{self.name}: edge {nodes[row]} -> {nodes[col]} costs {edges[row, col]}, costs must be >= 0",
                field="edges",
            )
        edges = edges.astype(np.int64, copy=True)
        edges.flags.writeable = False
        object.__setattr__(self, "edges", edges)

    @property
    def size(self) -> int:
        """Number of pickup-and-delivery pairs."""
        return len(self.pairs)

    @property
    def open(self) -> bool:
        """Whether every arc into ``-0`` is free: the tour ends at its last drop-off."""
        end = self.nodes.index(END)
        return bool((np.delete(self.edges[:, end], end) == 0).all())


def instance_from_json(data: object, *, source: str = "instance") -> TsppdInstance:
    """Build an instance from the parsed JSON of a ``tsppdlib`` file.

    Raises
    ------
    InvalidInput
        When a key is missing or a value has the wrong shape: edges not square, a precedence
        pair with an unknown node, a node in no pair, ``+0`` not paired with ``-0``.
    """
    if not isinstance(data, Mapping):
        raise InvalidInput(f"{source}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in _KEYS if key not in data]
    if missing:
        raise InvalidInput(f"{source}: missing keys {missing}", field=missing[0])
    name = data["name"]
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"{source}: name must be a non-empty string, got {name!r}", field="name")
    nodes = data["nodes"]
    if not isinstance(nodes, list) or not all(isinstance(label, str) for label in nodes):
        raise InvalidInput(f"{name}: nodes must be a list of labels", field="nodes")
    precedence = data["precedence"]
    if not isinstance(precedence, Mapping) or not all(isinstance(v, str) for v in precedence.values()):
        raise InvalidInput(
            f"{name}: precedence must map pickup labels to drop-off labels", field="precedence"
        )
    if precedence.get(START) != END:
        raise InvalidInput(
            f"{name}: precedence must pair {START!r} with {END!r}, got {precedence.get(START)!r}",
            field="precedence",
        )
    edges = data["edges"]
    if not isinstance(edges, list) or not all(isinstance(row, list) for row in edges):
        raise InvalidInput(f"{name}: edges must be a list of rows", field="edges")
    lengths = {len(row) for row in edges}
    if len(lengths) > 1 or (edges and len(edges) != len(edges[0])):
        raise InvalidInput(
            f"{name}: edges must be square, got {len(edges)} rows of lengths {sorted(lengths)}", field="edges"
        )
    if not all(_is_whole(cost) for row in edges for cost in row):
        raise InvalidInput(f"{name}: edges must hold whole numbers", field="edges")
    pairs = tuple((pickup, dropoff) for pickup, dropoff in precedence.items() if pickup != START)
    matrix = np.array(edges, dtype=np.int64).reshape(len(edges), len(edges))
    return TsppdInstance(name, tuple(nodes), pairs, matrix)


def _is_whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_instance(path: str | Path) -> TsppdInstance:
    """Read a ``tsppdlib`` JSON instance.

    Raises
    ------
    InvalidInput
        When the file is not JSON or not a valid instance (see :func:`instance_from_json`).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot be read ({exc.strerror})") from exc
    return instance_from_json(data, source=str(path))


def read_optimal(path: str | Path) -> dict[str, int]:
    """Read ``optimal.txt``: one ``name cost`` per line.

    Raises
    ------
    InvalidInput
        On a line that is not a name and a whole cost.
    """
    optima: dict[str, int] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise InvalidInput(f"{path}:{number}: expected 'name cost', got {line!r}")
        optima[parts[0]] = int(parts[1])
    return optima


# -- to and from routing ---------------------------------------------------------------------


def _problem_nodes(instance: TsppdInstance) -> list[int]:
    """Instance node indices in problem order: ``+0`` first (the courier), ``-0`` last, or
    left out when the tour is open."""
    start = instance.nodes.index(START)
    kept = [start] + [k for k, label in enumerate(instance.nodes) if label not in (START, END)]
    return kept if instance.open else [*kept, instance.nodes.index(END)]


def instance_to_problem(
    instance: TsppdInstance,
    *,
    objective: Objective = TRAVEL_ONLY,
    ready_at: Sequence[int] | None = None,
    deadlines: Sequence[int | None] | None = None,
    capacity: int | None = None,
    on_board: Iterable[int] = (),
) -> RoutingProblem:
    """The instance as a routing problem: task ``k`` is ``instance.pairs[k]``.

    ``+0`` becomes node 0. ``-0`` is dropped when every arc into it is free (the route ends at
    its last drop-off), else it becomes the problem's ``end``. By default the
    objective is travel only; the keyword arguments give each task a ready time and a
    deadline, the courier a capacity (each order takes 1), and mark tasks already on board.
    """
    kept = _problem_nodes(instance)
    position = {instance.nodes[k]: at for at, k in enumerate(kept)}
    on_board = set(on_board)
    tasks = []
    for index, (pickup, dropoff) in enumerate(instance.pairs):
        tasks.append(
            RouteTask(
                pickup=None if index in on_board else position[pickup],
                dropoff=position[dropoff],
                ready_at=0 if ready_at is None else ready_at[index],
                deadline=None if deadlines is None else deadlines[index],
            )
        )
    matrix = instance.edges[np.ix_(kept, kept)]
    end = None if instance.open else len(kept) - 1
    return RoutingProblem(matrix, tuple(tasks), capacity=capacity, objective=objective, end=end)


def plan_to_tour(instance: TsppdInstance, plan: RoutePlan) -> list[str]:
    """The plan's stops as node labels, from ``+0`` to ``-0``."""
    tour = [START]
    for kind, task in plan.sequence:
        tour.append(instance.pairs[task][0 if kind == "pickup" else 1])
    tour.append(END)
    return tour


def tour_cost(instance: TsppdInstance, tour: Sequence[str]) -> int:
    """The cost of a tour, after checking that it is feasible.

    Raises
    ------
    InvalidInput
        When the tour does not start at ``+0``, end at ``-0`` and visit every other node once
        with each pickup before its drop-off.

    >>> instance = instance_from_json(
    ...     {
    ...         "name": "tiny",
    ...         "nodes": ["+0", "-0", "+1", "-1"],
    ...         "precedence": {"+0": "-0", "+1": "-1"},
    ...         "edges": [[0, 0, 4, 9], [0, 0, 0, 0], [4, 0, 0, 3], [9, 0, 3, 0]],
    ...     }
    ... )
    >>> tour_cost(instance, ["+0", "-1", "+1", "-0"])
    Traceback (most recent call last):
    ...
    dispatch.errors.InvalidInput: tiny: -1 is visited before its pickup +1
    """
    if len(tour) != len(instance.nodes) or tour[0] != START or tour[-1] != END:
        raise InvalidInput(
            f"{instance.name}: a tour runs from {START} to {END} through all {len(instance.nodes)} nodes"
        )
    if sorted(tour) != sorted(instance.nodes):
        raise InvalidInput(f"{instance.name}: the tour does not visit every node once")
    at = {label: position for position, label in enumerate(tour)}
    for pickup, dropoff in instance.pairs:
        if at[dropoff] < at[pickup]:
            raise InvalidInput(f"{instance.name}: {dropoff} is visited before its pickup {pickup}")
    index = [instance.nodes.index(label) for label in tour]
    return int(sum(int(instance.edges[a, b]) for a, b in itertools.pairwise(index)))


def solve_instance(instance: TsppdInstance, time_limit_s: float = 1.0) -> dict[str, Any]:
    """Solve an instance with :func:`dispatch.routing.solve` and report it as JSON-able data.

    Returns
    -------
    dict
        ``name``, ``pairs``, ``cost``, ``tour`` (labels from ``+0`` to ``-0``), ``seconds``
        (wall time of building and solving the problem) and ``optimal`` (whether the cost is
        proven minimal).
    """
    started = time.perf_counter()
    plan = solve(instance_to_problem(instance), time_limit_s=time_limit_s)
    seconds = time.perf_counter() - started
    tour = plan_to_tour(instance, plan)
    return {
        "name": instance.name,
        "pairs": instance.size,
        "cost": tour_cost(instance, tour),
        "tour": tour,
        "seconds": round(seconds, 6),
        "optimal": plan.optimal,
    }


def solve_file(path: str | Path, time_limit_s: float = 1.0) -> dict[str, Any]:
    """Read and solve one instance file: what ``dispatch tsppd solve FILE`` prints."""
    return solve_instance(read_instance(path), time_limit_s=time_limit_s)


# -- a dispatch-like variant -----------------------------------------------------------------


def with_windows(
    instance: TsppdInstance,
    *,
    seed: int = 0,
    max_ready_s: int | None = None,
    promise_s: int | None = None,
    lateness_weight: int = 10,
    capacity: int | None = None,
    on_board: Iterable[int] = (),
) -> RoutingProblem:
    """The instance with what dispatch adds: ready times, deadlines, capacity, orders on board.

    Edge costs are read as seconds. Order ``k`` is ready at a seeded random time in
    ``[0, max_ready_s]`` and promised by its ready time plus its direct ride plus
    ``promise_s``; each second late costs ``lateness_weight``, each second of travel 1.
    Orders in ``on_board`` (task indices) have no pickup. Defaults: both spans are the
    longest arc out of ``+0``.

    >>> instance = instance_from_json(
    ...     {
    ...         "name": "tiny",
    ...         "nodes": ["+0", "-0", "+1", "-1"],
    ...         "precedence": {"+0": "-0", "+1": "-1"},
    ...         "edges": [[0, 0, 4, 9], [0, 0, 0, 0], [4, 0, 0, 3], [9, 0, 3, 0]],
    ...     }
    ... )
    >>> problem = with_windows(instance, max_ready_s=10, promise_s=5)
    >>> task = problem.tasks[0]
    >>> task.deadline - task.ready_at
    8
    """
    reach = int(instance.edges[instance.nodes.index(START)].max(initial=0))
    max_ready_s = reach if max_ready_s is None else max_ready_s
    promise_s = reach if promise_s is None else promise_s
    if max_ready_s < 0 or promise_s < 0:
        raise InvalidInput("max_ready_s and promise_s must be >= 0", field="max_ready_s")
    rng = np.random.default_rng(seed)
    ready = [int(x) for x in rng.integers(0, max_ready_s + 1, size=instance.size)]
    index = {label: k for k, label in enumerate(instance.nodes)}
    direct = [int(instance.edges[index[pickup], index[dropoff]]) for pickup, dropoff in instance.pairs]
    deadlines: list[int | None] = [r + d + promise_s for r, d in zip(ready, direct, strict=True)]
    objective = Objective(travel_weight=1, lateness_weight=lateness_weight, completion_weight=0)
    return instance_to_problem(
        instance,
        objective=objective,
        ready_at=ready,
        deadlines=deadlines,
        capacity=capacity,
        on_board=on_board,
    )
