"""Single-courier stop sequencing on integer travel-time matrices.

A :class:`RoutingProblem` holds one courier, a square matrix of travel seconds between
nodes (node 0 is where the courier is at ``start_at``) and the tasks (orders) to carry,
each with a pickup node (``None`` when the order is already on board) and a drop-off node.
:func:`solve` orders the stops; :func:`evaluate` times any given order of stops. Both
return a :class:`RoutePlan` whose times and cost always come from :func:`evaluate`'s rules
(the stop rules of :mod:`dispatch.timing`):

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

import time

import numpy as np  # noqa: F401  (the doctests use it)

from dispatch.errors import InvalidInput
from dispatch.routing.bounded import BOUNDED_MAX_TASKS, MIN_SEARCH_SHARE, bounded_min_travel_sequence
from dispatch.routing.exact import (
    DENSE_MAX_TASKS,
    MAX_LABEL_TASKS,
    brute_force,
    label_sequence,
    min_travel_sequence,
)
from dispatch.routing.heuristic import insertion_sequence, ortools_sequence
from dispatch.routing.problem import (
    Objective,
    PlannedStop,
    RoutePlan,
    RouteTask,
    RoutingProblem,
    Step,
    evaluate,
    timed_plan,
    whole_number,
)

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
    exact_max_tasks = whole_number(exact_max_tasks, "exact_max_tasks")
    if not problem.tasks:
        return timed_plan(problem, (), optimal=True)
    n = len(problem.tasks)
    if exact_max_tasks and n == 1:
        # one order has exactly one feasible sequence: the common case of a dispatch tick
        only: tuple[Step, ...] = (
            (("dropoff", 0),) if problem.tasks[0].pickup is None else (("pickup", 0), ("dropoff", 0))
        )
        return timed_plan(problem, only, optimal=True)
    if exact_max_tasks and problem.objective.time_independent and n <= BOUNDED_MAX_TASKS:
        if n <= DENSE_MAX_TASKS:
            return timed_plan(problem, min_travel_sequence(problem), optimal=True)
        started = time.perf_counter()
        steps, proven = bounded_min_travel_sequence(problem, time_limit_s)
        if proven:
            return timed_plan(problem, steps, optimal=True)
        # Not proven: guided local search from the best route found, for the time left.
        left_s = max(time_limit_s - (time.perf_counter() - started), MIN_SEARCH_SHARE * time_limit_s)
        found = ortools_sequence(problem, steps, left_s, seeded=True)
        plans = [timed_plan(problem, steps, optimal=False)]
        if found is not None:
            plans.append(evaluate(problem, found))
        return min(plans, key=lambda plan: plan.cost)
    if n <= min(exact_max_tasks, MAX_LABEL_TASKS) and not problem.objective.time_independent:
        return timed_plan(problem, label_sequence(problem), optimal=True)

    constructed = insertion_sequence(problem)
    plans = []
    found = ortools_sequence(problem, constructed, time_limit_s)
    if found is not None:
        plans.append(evaluate(problem, found))
    plans.append(timed_plan(problem, constructed, optimal=False))
    return min(plans, key=lambda plan: plan.cost)
