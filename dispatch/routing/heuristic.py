"""Heuristic sequencing: cheapest insertion and OR-Tools routing with guided local search."""

from __future__ import annotations

from collections.abc import Sequence

from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from dispatch.routing.problem import RoutingProblem, Step, dropoff_cost, final_leg, next_stop, node_of
from dispatch.timing import handover_s, leave_s

__all__: list[str] = []

# -- heuristics ------------------------------------------------------------------------------


def sequence_cost(problem: RoutingProblem, steps: Sequence[Step], bound: int | None = None) -> int | None:
    """Cost of a precedence-feasible (possibly partial) sequence; ``None`` if the load goes
    over the capacity or the cost over ``bound``."""
    node, after_pickup, depart = 0, False, problem.start_at
    load = problem.onboard_load
    cost = 0
    for kind, task in steps:
        _, travel, _, service, depart = next_stop(problem, node, after_pickup, depart, kind, task)
        cost += problem.objective.travel_weight * travel
        if kind == "pickup":
            load += problem.tasks[task].size
            if problem.capacity is not None and load > problem.capacity:
                return None
        else:
            load -= problem.tasks[task].size
            cost += dropoff_cost(problem, task, service)[1]
        if bound is not None and cost > bound:
            return None
        node, after_pickup = node_of(problem, kind, task), kind == "pickup"
    cost += problem.objective.travel_weight * final_leg(problem, node)
    return None if bound is not None and cost > bound else cost


def insertion_sequence(problem: RoutingProblem) -> list[Step]:
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
            cost = sequence_cost(problem, candidate, None if best is None else best[0] - 1)
            if cost is not None and (best is None or cost < best[0]):
                best = (cost, candidate)
        assert best is not None
        steps = best[1]
    return steps


def ortools_sequence(
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
    node = [0] + [node_of(problem, kind, task) for kind, task in steps] + [0]
    is_pickup = [False] + [kind == "pickup" for kind, _ in steps] + [False]
    hp, hd = handover_s(problem.pickup_service_s), handover_s(problem.dropoff_service_s)
    lp, ld = leave_s(problem.pickup_service_s), leave_s(problem.dropoff_service_s)
    before = [0] + [hp if pickup else hd for pickup in is_pickup[1:-1]] + [0]
    after = [0] + [lp if pickup else ld for pickup in is_pickup[1:-1]] + [0]

    time_matrix = [[0] * size for _ in range(size)]
    cost_matrix = [[0] * size for _ in range(size)]
    for a in range(size - 1):
        for b in range(1, size - 1):
            if a == b or (is_pickup[a] and is_pickup[b] and node[a] == node[b]):
                continue  # consecutive pickups at one node are one stop
            hop = problem.travel_rows[node[a]][node[b]]
            time_matrix[a][b] = after[a] + hop + before[b]
            cost_matrix[a][b] = objective.travel_weight * hop
        leg = final_leg(problem, node[a])
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
