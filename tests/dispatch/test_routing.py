"""The single-courier sequencer: timing rules, validation, exactness against brute force,
the OR-Tools path, and the Grubhub TSPPD instances with known optima."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.routing import (
    Objective,
    PlannedStop,
    RoutePlan,
    RouteTask,
    RoutingProblem,
    brute_force,
    evaluate,
    solve,
)
from dispatch.routing.exact import min_travel_sequence

# Grubhub's instances with 2 to 12 pairs, copied into the repository (tests/data/tsppd/README.md)
GRUBHUB = Path(__file__).resolve().parents[1] / "data" / "tsppd" / "grubhub"

# A small town. Nodes: 0 the courier, 1 restaurant A, 2 customer X, 3 customer Y,
# 4 restaurant B. Symmetric, in seconds.
TOWN = np.array(
    [
        [0, 100, 300, 400, 200],
        [100, 0, 200, 300, 150],
        [300, 200, 0, 100, 250],
        [400, 300, 100, 0, 350],
        [200, 150, 250, 350, 0],
    ]
)
TRAVEL_ONLY = Objective(travel_weight=1, lateness_weight=0, completion_weight=0)


def _problem(*tasks: RouteTask, **kw: object) -> RoutingProblem:
    return RoutingProblem(TOWN, tasks, **kw)  # type: ignore[arg-type]


def _times(plan: RoutePlan) -> list[tuple[str, int, tuple[int, ...], int, int, int]]:
    return [(s.kind, s.node, s.tasks, s.arrive_at, s.service_at, s.depart_at) for s in plan.stops]


def _check_feasible(problem: RoutingProblem, plan: RoutePlan) -> None:
    """Precedence and capacity, checked without the router's own code."""
    on_board = {i for i, task in enumerate(problem.tasks) if task.pickup is None}
    delivered: set[int] = set()
    for stop in plan.stops:
        for task in stop.tasks:
            if stop.kind == "pickup":
                assert task not in on_board and task not in delivered
                assert stop.node == problem.tasks[task].pickup
                on_board.add(task)
            else:
                assert task in on_board
                assert stop.node == problem.tasks[task].dropoff
                on_board.remove(task)
                delivered.add(task)
        if problem.capacity is not None:
            assert sum(problem.tasks[t].size for t in on_board) <= problem.capacity
    assert delivered == set(range(len(problem.tasks)))


def _same_as_evaluate(problem: RoutingProblem, plan: RoutePlan) -> None:
    assert replace(evaluate(problem, plan.sequence), optimal=plan.optimal) == plan


# -- hand-worked timings ----------------------------------------------------------------------


def test_one_order_with_service_times() -> None:
    # hp = 60 // 2 = 30 before the pickup, 30 after; hd = 41 // 2 = 20 before, 21 after.
    problem = _problem(RouteTask(1, 2), start_at=1000, pickup_service_s=60, dropoff_service_s=41)
    plan = solve(problem)
    assert _times(plan) == [
        ("pickup", 1, (0,), 1100, 1130, 1160),
        ("dropoff", 2, (0,), 1360, 1380, 1401),
    ]
    # default objective: 1 per second from start_at to the drop-off
    assert (plan.cost, plan.travel_s, plan.lateness_s, plan.optimal) == (380, 300, 0, True)


def test_bundle_from_one_restaurant_is_one_stop_at_the_later_ready_time() -> None:
    problem = _problem(
        RouteTask(1, 2, ready_at=150),
        RouteTask(1, 3, ready_at=400),
        pickup_service_s=60,
        objective=TRAVEL_ONLY,
    )
    plan = evaluate(problem, [("pickup", 0), ("pickup", 1), ("dropoff", 0), ("dropoff", 1)])
    # one pickup: arrive 100, both handed over at 400 (not 150, not 400 + 30), service once
    assert _times(plan) == [
        ("pickup", 1, (0, 1), 100, 400, 430),
        ("dropoff", 2, (0,), 630, 630, 630),
        ("dropoff", 3, (1,), 730, 730, 730),
    ]
    assert plan.sequence == (("pickup", 0), ("pickup", 1), ("dropoff", 0), ("dropoff", 1))
    assert plan.travel_s == plan.cost == 400
    # the cheapest route is that bundle
    assert solve(problem).cost == 400


def test_pickups_at_one_node_apart_are_two_stops() -> None:
    problem = _problem(RouteTask(1, 2), RouteTask(1, 3), pickup_service_s=60)
    plan = evaluate(problem, [("pickup", 0), ("dropoff", 0), ("pickup", 1), ("dropoff", 1)])
    assert _times(plan) == [
        ("pickup", 1, (0,), 100, 130, 160),
        ("dropoff", 2, (0,), 360, 360, 360),
        ("pickup", 1, (1,), 560, 590, 620),
        ("dropoff", 3, (1,), 920, 920, 920),
    ]


def test_courier_waits_for_the_food() -> None:
    plan = solve(_problem(RouteTask(1, 2, ready_at=500)))
    assert _times(plan) == [("pickup", 1, (0,), 100, 500, 500), ("dropoff", 2, (0,), 700, 700, 700)]


def test_courier_waits_for_the_drop_off_window() -> None:
    # arrives at 300 + hd 20 = 320, hands over at the window start 1000, leaves 20 later
    plan = solve(_problem(RouteTask(1, 2, window_start=1000), dropoff_service_s=40))
    assert _times(plan) == [("pickup", 1, (0,), 100, 100, 100), ("dropoff", 2, (0,), 300, 1000, 1020)]


def test_lateness_is_priced_per_second_past_the_deadline() -> None:
    plan = solve(_problem(RouteTask(1, 2, deadline=250)))
    # drop-off at 300: 50 s late x 10, plus 300 s of completion time
    assert (plan.lateness_s, plan.cost) == (50, 800)


def test_order_on_board_is_dropped_without_pickup() -> None:
    problem = _problem(RouteTask(None, 3), RouteTask(1, 2), objective=TRAVEL_ONLY)
    plan = solve(problem)
    # 0 -> 1 -> 2 -> 3 = 400 beats 0 -> 3 -> 1 -> 2 = 900
    assert _times(plan) == [
        ("pickup", 1, (1,), 100, 100, 100),
        ("dropoff", 2, (1,), 300, 300, 300),
        ("dropoff", 3, (0,), 400, 400, 400),
    ]
    assert plan.cost == brute_force(problem).cost == 400


def test_capacity_forces_delivery_before_the_next_pickup() -> None:
    a, b = RouteTask(1, 2), RouteTask(4, 3)
    # unlimited: 0 -> 1 -> 4 -> 2 -> 3 = 100 + 150 + 250 + 100
    assert solve(_problem(a, b, objective=TRAVEL_ONLY)).sequence == (
        ("pickup", 0),
        ("pickup", 1),
        ("dropoff", 0),
        ("dropoff", 1),
    )
    # one bag: 0 -> 1 -> 2 -> 4 -> 3 = 100 + 200 + 250 + 350
    plan = solve(_problem(a, b, capacity=1, objective=TRAVEL_ONLY))
    assert plan.sequence == (("pickup", 0), ("dropoff", 0), ("pickup", 1), ("dropoff", 1))
    assert plan.cost == 900


def test_route_that_must_end_somewhere_pays_the_last_leg() -> None:
    # back to restaurant B (node 4) after delivering at X: 0 -> 1 -> 2 is 300, then 250 to B
    problem = _problem(RouteTask(1, 2), objective=TRAVEL_ONLY, end=4)
    plan = solve(problem)
    assert (plan.cost, plan.travel_s, plan.optimal) == (550, 550, True)
    assert [stop.node for stop in plan.stops] == [1, 2]  # the end is no stop
    # returning to the start changes the best order: 0 -> 1 -> 3 -> 2 -> 0 (1000) beats
    # 0 -> 1 -> 2 -> 3 -> 0 (800)? No: 100 + 300 + 100 + 300 = 800 < 100 + 200 + 100 + 400
    two = _problem(RouteTask(1, 2), RouteTask(1, 3), objective=TRAVEL_ONLY, end=0)
    assert solve(two).cost == brute_force(two).cost == 800
    assert solve(two, exact_max_tasks=0, time_limit_s=0.1).cost == 800
    # no tasks: still the ride to the end
    assert solve(_problem(objective=TRAVEL_ONLY, end=3)).cost == 400


def test_no_tasks_is_an_empty_optimal_plan() -> None:
    assert solve(_problem()) == RoutePlan((), 0, 0, 0, True)


def test_plan_sequence_lists_every_task_of_merged_stops() -> None:
    stop = PlannedStop("pickup", 1, (2, 0), 10, 20, 30)
    assert RoutePlan((stop,), 0, 0, 0, False).sequence == (("pickup", 2), ("pickup", 0))


# -- validation -------------------------------------------------------------------------------

TWO = (RouteTask(1, 2, size=2), RouteTask(4, 3))


@pytest.mark.parametrize(
    ("sequence", "capacity", "message"),
    [
        # drop-off before its pickup
        ([("dropoff", 0), ("pickup", 0), ("pickup", 1), ("dropoff", 1)], None, "before it is picked up"),
        # picked up twice
        ([("pickup", 0), ("pickup", 0), ("dropoff", 0)], None, "picked up twice"),
        # dropped off twice
        ([("pickup", 0), ("dropoff", 0), ("dropoff", 0)], None, "dropped off twice"),
        # task 1 missing
        ([("pickup", 0), ("dropoff", 0)], None, r"tasks \[1\] are never dropped off"),
        # picked up but never delivered
        ([("pickup", 0), ("dropoff", 0), ("pickup", 1)], None, r"tasks \[1\] are never dropped off"),
        # size 2 + size 1 on a 2-unit courier
        ([("pickup", 0), ("pickup", 1), ("dropoff", 0), ("dropoff", 1)], 2, "load 3, over the capacity 2"),
        # no such task
        ([("pickup", 0), ("dropoff", 0), ("pickup", 5)], None, "no task 5 among 2 tasks"),
        # no such kind of stop
        ([("visit", 0)], None, "kind must be 'pickup' or 'dropoff'"),
        # not a pair
        (["pickup"], None, "must be a \\(kind, task\\) pair"),
    ],
)
def test_evaluate_refuses_infeasible_sequences(
    sequence: list[tuple[str, int]], capacity: int | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate(_problem(*TWO, capacity=capacity), sequence)


def test_evaluate_refuses_a_pickup_of_an_order_on_board() -> None:
    with pytest.raises(ValueError, match="already on board"):
        evaluate(_problem(RouteTask(None, 2)), [("pickup", 0), ("dropoff", 0)])


@pytest.mark.parametrize(
    ("travel_s", "tasks", "kw", "message"),
    [
        # not square
        (np.zeros((2, 3), dtype=int), (), {}, "square matrix, got shape \\(2, 3\\)"),
        # one-dimensional
        (np.zeros(3, dtype=int), (), {}, "square matrix"),
        # no nodes at all
        (np.zeros((0, 0), dtype=int), (), {}, "non-empty"),
        # minutes as floats
        (np.full((2, 2), 1.5), (), {}, "whole seconds, got dtype float64"),
        # a negative travel time
        (np.array([[0, 5], [-1, 0]]), (), {}, r"travel_s\[1\]\[0\] is -1"),
        # drop-off node outside the matrix
        (np.zeros((2, 2), dtype=int), (RouteTask(0, 2),), {}, "drop-off node 2 is outside the 2-node matrix"),
        # pickup node outside the matrix
        (np.zeros((2, 2), dtype=int), (RouteTask(7, 1),), {}, "pickup node 7 is outside"),
        # an order bigger than the courier's box
        (np.zeros((2, 2), dtype=int), (RouteTask(0, 1, size=3),), {"capacity": 2}, "size 3, more than"),
        # more on board than fits
        (
            np.zeros((2, 2), dtype=int),
            (RouteTask(None, 1, size=2), RouteTask(None, 1, size=2)),
            {"capacity": 3},
            "on-board load 4 exceeds the capacity 3",
        ),
        # negative start time
        (np.zeros((2, 2), dtype=int), (), {"start_at": -5}, "start_at must be a whole number >= 0"),
        # service time in fractional seconds
        (np.zeros((2, 2), dtype=int), (), {"pickup_service_s": 1.5}, "pickup_service_s must be a whole"),
        # not a task
        (np.zeros((2, 2), dtype=int), ((0, 1),), {}, "task 0 is not a RouteTask"),
        # an end node outside the matrix
        (np.zeros((2, 2), dtype=int), (), {"end": 2}, "end node 2 is outside the 2-node matrix"),
    ],
)
def test_problem_refuses_bad_input(
    travel_s: np.ndarray, tasks: tuple[RouteTask, ...], kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RoutingProblem(travel_s, tasks, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        # negative ready time
        ({"pickup": 1, "dropoff": 2, "ready_at": -1}, "ready_at must be a whole number >= 0"),
        # a boolean is not a node
        ({"pickup": True, "dropoff": 2}, "pickup must be a whole number"),
        # deadline in fractional seconds
        ({"pickup": 1, "dropoff": 2, "deadline": 10.5}, "deadline must be a whole number"),
        # negative size
        ({"pickup": 1, "dropoff": 2, "size": -1}, "size must be a whole number"),
    ],
)
def test_task_refuses_bad_values(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RouteTask(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        # no time to search
        ({"time_limit_s": 0}, "time_limit_s must be positive"),
        # negative exact size
        ({"exact_max_tasks": -1}, "exact_max_tasks must be a whole number >= 0"),
    ],
)
def test_solve_refuses_bad_settings(kw: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        solve(_problem(RouteTask(1, 2)), **kw)  # type: ignore[arg-type]


def test_problem_matrix_is_a_read_only_copy() -> None:
    travel_s = TOWN.copy()
    problem = RoutingProblem(travel_s, ())
    travel_s[0, 1] = 999
    assert problem.travel_s[0, 1] == 100
    with pytest.raises(ValueError, match="read-only"):
        problem.travel_s[0, 1] = 5


def test_objective_refuses_negative_weights() -> None:
    with pytest.raises(ValueError, match="lateness_weight must be a whole number >= 0"):
        Objective(lateness_weight=-1)


# -- exactness against brute force ------------------------------------------------------------


@st.composite
def problems(draw: st.DrawFn, min_tasks: int = 2, max_tasks: int = 5) -> RoutingProblem:
    # Few nodes make shared restaurants (merged pickups) and shared addresses common; the
    # diagonal is not always 0, which only matters for stops that are not merged.
    nodes = draw(st.integers(1, 6))
    matrix = np.array(draw(st.lists(st.integers(0, 60), min_size=nodes * nodes, max_size=nodes * nodes)))
    matrix = matrix.reshape(nodes, nodes)
    count = draw(st.integers(min_tasks, max_tasks))
    node = st.integers(0, nodes - 1)
    tasks = []
    for _ in range(count):
        ready = draw(st.integers(0, 200))
        tasks.append(
            RouteTask(
                pickup=None if draw(st.integers(0, 3)) == 0 else draw(node),
                dropoff=draw(node),
                ready_at=ready,
                window_start=draw(st.sampled_from([0, 0, 100, 250])),
                deadline=draw(st.none() | st.integers(0, 300)),
                size=draw(st.integers(1, 2)),
            )
        )
    onboard = sum(task.size for task in tasks if task.pickup is None)
    capacity = draw(st.none() | st.integers(max(2, onboard), max(2, onboard) + 2))
    objective = Objective(
        travel_weight=draw(st.integers(0, 3)),
        lateness_weight=draw(st.sampled_from([0, 0, 1, 10])),
        completion_weight=draw(st.sampled_from([0, 0, 1, 2])),
    )
    return RoutingProblem(
        matrix,
        tuple(tasks),
        start_at=draw(st.integers(0, 50)),
        capacity=capacity,
        pickup_service_s=draw(st.sampled_from([0, 0, 7, 30])),
        dropoff_service_s=draw(st.sampled_from([0, 0, 5, 20])),
        objective=objective,
        end=draw(st.none() | node),  # an open path or one that must finish somewhere
    )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_exact_solve_matches_brute_force(problem: RoutingProblem) -> None:
    plan = solve(problem)
    best = brute_force(problem)
    assert plan.optimal and best.optimal
    assert plan.cost == best.cost
    _check_feasible(problem, plan)
    _same_as_evaluate(problem, plan)
    _same_as_evaluate(problem, best)


@settings(max_examples=12, deadline=None)
@given(problems(max_tasks=4))
def test_ortools_path_is_feasible_and_never_beats_the_optimum(problem: RoutingProblem) -> None:
    plan = solve(problem, exact_max_tasks=0, time_limit_s=0.05)
    assert not plan.optimal
    assert plan.cost >= solve(problem).cost
    _check_feasible(problem, plan)
    _same_as_evaluate(problem, plan)


# -- the OR-Tools path on instances checked by hand -------------------------------------------


@pytest.mark.parametrize(
    ("problem", "optimum"),
    [
        # two restaurants, one bag: must alternate, 0 -> 1 -> 2 -> 4 -> 3
        (_problem(RouteTask(1, 2), RouteTask(4, 3), capacity=1, objective=TRAVEL_ONLY), 900),
        # bundle of two from restaurant A, then X and Y: 100 + 200 + 100
        (_problem(RouteTask(1, 2), RouteTask(1, 3), objective=TRAVEL_ONLY), 400),
        # default objective, 2nd order ready late: deliver X first (drop-offs at 300 and 800)
        (_problem(RouteTask(1, 2), RouteTask(1, 3, ready_at=400), objective=Objective()), 1100),
        # the box is full with an order for Y (size 2 of 3) and the next order takes 2: the
        # insertion heuristics of OR-Tools find no first route here, ours does
        (
            _problem(RouteTask(None, 3, size=2), RouteTask(4, 2, size=2), capacity=3, objective=TRAVEL_ONLY),
            400 + 350 + 250,
        ),
    ],
)
def test_ortools_path_finds_the_optimum_of_easy_instances(problem: RoutingProblem, optimum: int) -> None:
    plan = solve(problem, exact_max_tasks=0, time_limit_s=0.1)
    assert not plan.optimal
    assert plan.cost == solve(problem).cost == brute_force(problem).cost == optimum
    _same_as_evaluate(problem, plan)


# -- determinism ------------------------------------------------------------------------------


def _busy_problem() -> RoutingProblem:
    rng = np.random.default_rng(7)
    matrix = rng.integers(60, 900, size=(9, 9))
    np.fill_diagonal(matrix, 0)
    tasks = tuple(
        RouteTask(
            int(rng.integers(1, 4)),
            int(rng.integers(4, 9)),
            ready_at=int(rng.integers(0, 600)),
            deadline=1800,
        )
        for _ in range(6)
    )
    return RoutingProblem(matrix, tasks, capacity=4, pickup_service_s=120, dropoff_service_s=60)


@pytest.mark.parametrize(
    ("objective", "exact_max_tasks"),
    [
        # exact, general objective
        (Objective(), 6),
        # exact, travel only
        (TRAVEL_ONLY, 6),
        # OR-Tools
        (Objective(), 0),
    ],
)
def test_same_input_same_plan(objective: Objective, exact_max_tasks: int) -> None:
    # two problems built from the same seed, not one object solved twice
    plans = [
        solve(
            replace(_busy_problem(), objective=objective), exact_max_tasks=exact_max_tasks, time_limit_s=0.2
        )
        for _ in range(2)
    ]
    assert plans[0] == plans[1]
    assert plans[0].optimal == (exact_max_tasks > 0)


# -- Grubhub TSPPD instances (open path, travel only) -----------------------------------------


def _grubhub(name: str) -> RoutingProblem:
    data = json.loads((GRUBHUB / f"{name}.json").read_text())
    labels = data["nodes"]
    # "+0" is the start and "-0" a free end: the route is open, so "-0" goes.
    keep = [k for k, label in enumerate(labels) if label != "-0"]
    matrix = np.array(data["edges"])[np.ix_(keep, keep)]
    names = [labels[k] for k in keep]
    pairs = [label for label in data["precedence"] if label != "+0"]
    tasks = tuple(RouteTask(names.index(p), names.index(data["precedence"][p])) for p in pairs)
    return RoutingProblem(matrix, tasks, objective=TRAVEL_ONLY)


def _grubhub_optima() -> dict[str, int]:
    lines = (GRUBHUB / "optimal.txt").read_text().split("\n")
    return {name: int(cost) for name, cost in (line.split() for line in lines if line.strip())}


@pytest.mark.parametrize("pairs", [2, 3, 4, 5, 6, 8, 10, 12])
def test_grubhub_optimal_costs(pairs: int) -> None:
    optima = {
        name: cost for name, cost in _grubhub_optima().items() if name.startswith(f"grubhub-{pairs:02d}-")
    }
    assert len(optima) == 10
    for name, optimum in sorted(optima.items()):
        problem = _grubhub(name)
        assert len(problem.tasks) == pairs
        # the dispatcher's setting: travel-only routes are exact whatever their size
        plan = solve(problem, exact_max_tasks=6)
        assert (name, plan.cost, plan.optimal) == (name, optimum, True)
        _check_feasible(problem, plan)


# -- travel only: the bounded search beyond the dense table ----------------------------------


@st.composite
def travel_problems(draw: st.DrawFn, tasks: int = 10) -> RoutingProblem:
    # Few nodes: shared restaurants (merged pickups) and equal costs (ties) are common.
    nodes = draw(st.integers(4, 12))
    matrix = np.array(draw(st.lists(st.integers(0, 90), min_size=nodes * nodes, max_size=nodes * nodes)))
    node = st.integers(0, nodes - 1)
    items = tuple(
        RouteTask(
            pickup=None if draw(st.integers(0, 5)) == 0 else draw(node),
            dropoff=draw(node),
            size=draw(st.integers(1, 2)),
        )
        for _ in range(tasks)
    )
    onboard = sum(task.size for task in items if task.pickup is None)
    capacity = draw(st.none() | st.integers(max(2, onboard), max(2, onboard) + 3))
    return RoutingProblem(
        matrix.reshape(nodes, nodes),
        items,
        capacity=capacity,
        objective=TRAVEL_ONLY,
        end=draw(st.none() | node),
    )


def _sequence_travel(problem: RoutingProblem, sequence: list[tuple[str, int]]) -> int:
    return evaluate(problem, sequence).travel_s


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(travel_problems())
def test_bounded_search_matches_the_dense_table(problem: RoutingProblem) -> None:
    # 10 tasks: solve() takes the bounded search, the dense table still runs in ~0.1 s
    plan = solve(problem, exact_max_tasks=6)
    assert plan.optimal
    assert plan.cost == _sequence_travel(problem, min_travel_sequence(problem))
    _check_feasible(problem, plan)
    _same_as_evaluate(problem, plan)


def _uniform(tasks: int, seed: int) -> RoutingProblem:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0, 1000, size=(2 * tasks + 1, 2))
    matrix = np.rint(np.linalg.norm(points[:, None] - points[None, :], axis=2)).astype(np.int64)
    items = tuple(RouteTask(2 * k + 1, 2 * k + 2) for k in range(tasks))
    return RoutingProblem(matrix, items, objective=TRAVEL_ONLY)


def test_bounded_search_claims_optimality_only_when_it_finishes() -> None:
    problem = _uniform(16, seed=3)
    # a budget of a few thousand table cells: cut short, then improved by OR-Tools
    hurried = solve(problem, time_limit_s=0.001)
    assert not hurried.optimal
    _check_feasible(problem, hurried)
    # a second's budget finishes the search
    proven = solve(problem, time_limit_s=1.0)
    assert proven.optimal
    assert proven.cost <= hurried.cost
    _check_feasible(problem, proven)


def test_bounded_search_same_input_same_plan() -> None:
    plans = [solve(_uniform(13, seed=11), time_limit_s=1.0) for _ in range(2)]
    assert plans[0] == plans[1] and plans[0].optimal


def test_bounded_search_with_orders_on_board_and_a_small_box() -> None:
    base = _uniform(11, seed=5)
    tasks = tuple(
        RouteTask(None if k < 3 else task.pickup, task.dropoff) for k, task in enumerate(base.tasks)
    )
    problem = replace(base, tasks=tasks, capacity=4)
    plan = solve(problem)
    assert plan.optimal
    _check_feasible(problem, plan)
    assert plan.cost == _sequence_travel(problem, min_travel_sequence(problem))
