"""The TSPPD instance reader, the Grubhub optima reproduced through the routing module, and
the dispatch-like variant with ready times, deadlines, capacity and orders on board."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

from dispatch.errors import InvalidInput
from dispatch.routing import RoutePlan, RoutingProblem, brute_force, evaluate, solve
from simulations.tsppd import (
    TsppdInstance,
    instance_from_json,
    instance_to_problem,
    plan_to_tour,
    read_instance,
    read_optimal,
    solve_file,
    solve_instance,
    tour_cost,
    with_windows,
)

# Grubhub's instances with 2 to 12 pairs, copied into the repository (tests/data/tsppd/README.md)
GRUBHUB = Path(__file__).resolve().parents[1] / "data" / "tsppd" / "grubhub"

# Two orders. +0 -> +1 -> +2 -> -1 -> -2 costs 1 + 2 + 2 + 1 = 6, the optimum.
TINY: dict[str, Any] = {
    "name": "tiny-2",
    "nodes": ["+0", "-0", "+1", "-1", "+2", "-2"],
    "precedence": {"+0": "-0", "+1": "-1", "+2": "-2"},
    "edges": [
        [0, 0, 1, 5, 3, 6],
        [0, 0, 0, 0, 0, 0],
        [1, 0, 0, 4, 2, 5],
        [5, 0, 4, 0, 2, 1],
        [3, 0, 2, 2, 0, 3],
        [6, 0, 5, 1, 3, 0],
    ],
}


def _tiny(**changes: Any) -> dict[str, Any]:
    return {**json.loads(json.dumps(TINY)), **changes}


def _check_tour(instance: TsppdInstance, tour: list[str]) -> int:
    """Feasibility and cost of a tour, without the module's own checker."""
    assert tour[0] == "+0" and tour[-1] == "-0"
    assert sorted(tour) == sorted(instance.nodes)
    for pickup, dropoff in instance.pairs:
        assert tour.index(pickup) < tour.index(dropoff)
    index = [instance.nodes.index(label) for label in tour]
    return sum(int(instance.edges[a][b]) for a, b in itertools.pairwise(index))


# -- reading ---------------------------------------------------------------------------------


def test_tiny_instance_is_read_and_solved(tmp_path: Path) -> None:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    started = time.perf_counter()
    result = solve_file(path, time_limit_s=0.5)
    took = time.perf_counter() - started
    assert json.loads(json.dumps(result)) == result  # JSON-able as it is
    assert result["name"] == "tiny-2" and result["pairs"] == 2
    assert (result["cost"], result["optimal"]) == (6, True)
    assert result["tour"] == ["+0", "+1", "+2", "-1", "-2", "-0"]
    # the solve time in seconds (not ms), measured within the call
    assert 0 <= result["seconds"] <= took


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # no edges at all
        ({k: v for k, v in TINY.items() if k != "edges"}, r"missing keys \['edges'\]"),
        # 6 nodes but a 6 x 5 matrix
        (_tiny(edges=[row[:5] for row in TINY["edges"]]), "edges must be square, got 6 rows of lengths"),
        # ragged rows
        (_tiny(edges=[*TINY["edges"][:5], TINY["edges"][5][:3]]), "edges must be square"),
        # square, but not one row per node
        (_tiny(edges=[row[:5] for row in TINY["edges"][:5]]), r"6 x 6 matrix .* got shape \(5, 5\)"),
        # a drop-off that is not a node
        (_tiny(precedence={"+0": "-0", "+1": "-1", "+2": "-9"}), "names an unknown node '-9'"),
        # the start paired with something else than the end
        (_tiny(precedence={"+0": "-1", "+1": "-0", "+2": "-2"}), "must pair '\\+0' with '-0'"),
        # one node in two pairs
        (_tiny(precedence={"+0": "-0", "+1": "-1", "+2": "-1"}), "'-1' is in more than one precedence pair"),
        # a node in no pair
        (_tiny(precedence={"+0": "-0", "+1": "-1"}), r"nodes \['\+2', '-2'\] are in no precedence pair"),
        # a negative cost
        (_tiny(edges=[[0, 0, -1, 5, 3, 6], *TINY["edges"][1:]]), "edge \\+0 -> \\+1 costs -1"),
        # a fractional cost
        (_tiny(edges=[[0, 0, 1.5, 5, 3, 6], *TINY["edges"][1:]]), "edges must hold whole numbers"),
        # a label twice
        (_tiny(nodes=["+0", "-0", "+1", "-1", "+1", "-2"]), r"node labels \['\+1'\] appear more than once"),
        # no end node
        (_tiny(nodes=["+0", "-9", "+1", "-1", "+2", "-2"]), "no node '-0'"),
        # not an object
        ([1, 2, 3], "expected a JSON object, got list"),
    ],
)
def test_reader_refuses_broken_instances(tmp_path: Path, data: Any, message: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InvalidInput, match=message):
        read_instance(path)


def test_closed_tour_returns_to_the_end() -> None:
    # -0 at the courier's start: every arc into it costs what the arc into +0 does
    edges = [row[:] for row in TINY["edges"]]
    for row in edges:
        row[1] = row[0]
    instance = instance_from_json(_tiny(name="tiny-closed", edges=edges))
    assert not instance.open
    result = solve_instance(instance)
    tours = [
        ["+0", *middle, "-0"]
        for middle in itertools.permutations(["+1", "-1", "+2", "-2"])
        if middle.index("+1") < middle.index("-1") and middle.index("+2") < middle.index("-2")
    ]
    assert result["optimal"]
    assert result["cost"] == min(_check_tour(instance, tour) for tour in tours) == 12
    assert _check_tour(instance, result["tour"]) == result["cost"]


def test_reader_refuses_what_is_not_json(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",')
    with pytest.raises(InvalidInput, match="not valid JSON"):
        read_instance(path)
    with pytest.raises(InvalidInput, match="cannot be read"):
        read_instance(tmp_path / "missing.json")


def test_read_optimal(tmp_path: Path) -> None:
    path = tmp_path / "optimal.txt"
    path.write_text("grubhub-02-0 3214\n\ngrubhub-02-1 2736\n")
    assert read_optimal(path) == {"grubhub-02-0": 3214, "grubhub-02-1": 2736}
    path.write_text("grubhub-02-0 32.5\n")
    with pytest.raises(InvalidInput, match=":1: expected 'name cost'"):
        read_optimal(path)


def test_tour_cost_refuses_infeasible_tours() -> None:
    instance = instance_from_json(TINY)
    assert tour_cost(instance, ["+0", "+1", "+2", "-1", "-2", "-0"]) == 6
    with pytest.raises(InvalidInput, match="-2 is visited before its pickup \\+2"):
        tour_cost(instance, ["+0", "+1", "-2", "+2", "-1", "-0"])
    with pytest.raises(InvalidInput, match="through all 6 nodes"):
        tour_cost(instance, ["+0", "+1", "-1", "-0"])
    with pytest.raises(InvalidInput, match="every node once"):
        tour_cost(instance, ["+0", "+1", "+1", "-1", "-2", "-0"])


def test_problem_drops_the_end_and_starts_at_the_courier() -> None:
    # "-0" listed first: node 0 of the problem must still be "+0"
    order = [1, 0, 2, 3, 4, 5]
    data = _tiny(
        nodes=[TINY["nodes"][k] for k in order], edges=[[TINY["edges"][a][b] for b in order] for a in order]
    )
    problem = instance_to_problem(instance_from_json(data))
    assert problem.travel_s.shape == (5, 5)
    assert problem.travel_s[0].tolist() == [0, 1, 5, 3, 6]
    assert [(task.pickup, task.dropoff) for task in problem.tasks] == [(1, 2), (3, 4)]


# -- the Grubhub instances -------------------------------------------------------------------


def _grubhub(pairs: int) -> list[tuple[Path, int]]:
    optima = read_optimal(GRUBHUB / "optimal.txt")
    paths = sorted(GRUBHUB.glob(f"grubhub-{pairs:02d}-*.json"))
    return [(path, optima[path.stem]) for path in paths]


@pytest.mark.parametrize("pairs", [2, 3, 4, 5, 6])
def test_grubhub_optimum_is_reproduced_and_proven(pairs: int) -> None:
    cases = _grubhub(pairs)
    assert len(cases) == 10
    for path, optimum in cases:
        instance = read_instance(path)
        result = solve_instance(instance, time_limit_s=1.0)
        assert (result["name"], result["cost"], result["optimal"]) == (path.stem, optimum, True)
        assert _check_tour(instance, result["tour"]) == optimum


# -- the dispatch-like variant ---------------------------------------------------------------


def _check_route(problem: RoutingProblem, plan: RoutePlan) -> None:
    """Precedence, capacity, ready times and lateness, without the router's own code."""
    on_board = {k for k, task in enumerate(problem.tasks) if task.pickup is None}
    delivered: set[int] = set()
    lateness = 0
    for stop in plan.stops:
        for k in stop.tasks:
            task = problem.tasks[k]
            if stop.kind == "pickup":
                assert k not in on_board and k not in delivered and stop.node == task.pickup
                assert stop.service_at >= task.ready_at  # the food is ready
                on_board.add(k)
            else:
                assert k in on_board and stop.node == task.dropoff
                on_board.remove(k)
                delivered.add(k)
                if task.deadline is not None:
                    lateness += max(0, stop.service_at - task.deadline)
        if problem.capacity is not None:
            assert sum(problem.tasks[k].size for k in on_board) <= problem.capacity
    assert delivered == set(range(len(problem.tasks)))
    assert plan.lateness_s == lateness
    assert evaluate(problem, plan.sequence).cost == plan.cost


@pytest.mark.parametrize(
    ("name", "seed", "kw"),
    [
        # two orders, ready times up to the farthest reach, promise of that reach
        ("grubhub-02-3", 1, {}),
        # three orders, tight promises: some lateness is unavoidable
        ("grubhub-03-5", 2, {"promise_s": 0}),
        # three orders, one bag
        ("grubhub-03-8", 3, {"capacity": 1}),
        # four orders, the first already on board, room for two
        ("grubhub-04-2", 4, {"capacity": 2, "on_board": [0]}),
    ],
)
def test_windows_exact_and_ortools_agree(name: str, seed: int, kw: dict[str, Any]) -> None:
    problem = with_windows(read_instance(GRUBHUB / f"{name}.json"), seed=seed, **kw)
    exact = solve(problem)
    fallback = solve(problem, exact_max_tasks=0, time_limit_s=0.2)
    assert exact.optimal and not fallback.optimal
    assert exact.cost == fallback.cost == brute_force(problem).cost
    for plan in (exact, fallback):
        _check_route(problem, plan)


@pytest.mark.parametrize("pairs", [5, 6, 7])
def test_windows_are_honoured_on_every_route(pairs: int) -> None:
    for path, _ in _grubhub(pairs)[:4]:
        instance = read_instance(path)
        # promises long enough for any order of stops: no lateness
        generous = with_windows(instance, seed=pairs, promise_s=int(instance.edges.sum()))
        plan = solve(generous, exact_max_tasks=8)
        assert plan.optimal and plan.lateness_s == 0
        _check_route(generous, plan)
        # promises of the direct ride only: lateness measured and minimised
        tight = with_windows(instance, seed=pairs, promise_s=0, capacity=3)
        plan = solve(tight, exact_max_tasks=8)
        assert plan.optimal and plan.lateness_s > 0
        _check_route(tight, plan)
        assert plan.cost == plan.travel_s + 10 * plan.lateness_s


def test_windows_beyond_the_exact_size_use_the_fallback() -> None:
    instance = read_instance(GRUBHUB / "grubhub-10-0.json")
    problem = with_windows(instance, seed=5, capacity=4, on_board=[2])
    plan = solve(problem, exact_max_tasks=6, time_limit_s=0.3)
    assert not plan.optimal
    _check_route(problem, plan)


def test_plan_to_tour_names_the_stops() -> None:
    instance = instance_from_json(TINY)
    plan = solve(instance_to_problem(instance))
    assert plan_to_tour(instance, plan) == ["+0", "+1", "+2", "-1", "-2", "-0"]
