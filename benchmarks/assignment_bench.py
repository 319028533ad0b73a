"""Which OR-Tools solver for the tick's assignment? Measured on tick-shaped instances.

Every bundle has K candidate couriers (sparse arcs) and may stay unassigned at a high cost,
as in ``dispatch.matching``. Solves the same instances with min-cost flow (what the engine
uses), linear sum assignment (with one dummy courier per bundle for "unassigned") and
CP-SAT, checks that they agree on the optimum, and prints median seconds as JSON.

    python benchmarks/assignment_bench.py --sizes 2000 10000 --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import numpy as np
from ortools.graph.python import linear_sum_assignment
from ortools.sat.python import cp_model

from dispatch.matching import UNASSIGNED_COST, solve_assignment


def instance(
    n_bundles: int, seed: int, k: int = 12
) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_couriers = n_bundles * 2
    left = np.repeat(np.arange(n_bundles), k)
    # couriers near a bundle: a local window of ids, as the H3 candidates are local
    centre = rng.integers(0, n_couriers, n_bundles)
    right = (np.repeat(centre, k) + rng.integers(-3 * k, 3 * k, n_bundles * k)) % n_couriers
    pairs = np.unique(np.stack([left, right], axis=1), axis=0)
    left, right = pairs[:, 0], pairs[:, 1]
    cost = rng.integers(1_000, 200_000, len(left))
    skip = np.full(n_bundles, UNASSIGNED_COST, dtype=np.int64)
    return n_couriers, left, right, cost, skip


def total(chosen: np.ndarray, left: np.ndarray, right: np.ndarray, cost: np.ndarray, skip: np.ndarray) -> int:
    arc = {(int(a), int(b)): int(c) for a, b, c in zip(left, right, cost, strict=True)}
    return sum(arc[(i, int(j))] if j >= 0 else int(skip[i]) for i, j in enumerate(chosen))


def by_min_cost_flow(n: int, m: int, left: Any, right: Any, cost: Any, skip: Any) -> np.ndarray:
    return solve_assignment(n, m, left, right, cost, skip)


def by_linear_sum(n: int, m: int, left: Any, right: Any, cost: Any, skip: Any) -> np.ndarray:
    """Linear sum assignment needs a perfect matching: the textbook square extension.

    Left = bundles + one dummy per courier; right = couriers + one dummy per bundle. A
    bundle may take its own dummy (unassigned, at the skip cost); a courier's dummy takes
    the courier itself (idle) or, for each arc (bundle, courier), the bundle's dummy.
    """
    solver = linear_sum_assignment.SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(left, right, cost)
    solver.add_arcs_with_cost(np.arange(n), m + np.arange(n), skip)
    solver.add_arcs_with_cost(n + np.arange(m), np.arange(m), np.zeros(m, dtype=np.int64))
    solver.add_arcs_with_cost(n + right, m + left, np.zeros(len(left), dtype=np.int64))
    status = solver.solve()
    assert status == solver.OPTIMAL, status
    chosen = np.array([solver.right_mate(i) for i in range(n)], dtype=np.int64)
    chosen[chosen >= m] = -1
    return chosen


def by_cp_sat(n: int, m: int, left: Any, right: Any, cost: Any, skip: Any) -> np.ndarray:
    model = cp_model.CpModel()
    x = [model.new_bool_var(f"x{a}") for a in range(len(left))]
    by_left: list[list[int]] = [[] for _ in range(n)]
    by_right: dict[int, list[int]] = {}
    for a, (i, j) in enumerate(zip(left.tolist(), right.tolist(), strict=True)):
        by_left[i].append(a)
        by_right.setdefault(j, []).append(a)
    for arcs in by_left:
        model.add_at_most_one(x[a] for a in arcs)
    for arcs in by_right.values():
        model.add_at_most_one(x[a] for a in arcs)
    # minimise arc costs + skip costs of bundles left out = const - sum(skip - cost) over chosen arcs
    model.maximize(sum(int(skip[left[a]] - cost[a]) * x[a] for a in range(len(left))))
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = 2
    solver.parameters.max_time_in_seconds = 120
    status = solver.solve(model)
    assert status == cp_model.OPTIMAL, solver.status_name(status)
    chosen = np.full(n, -1, dtype=np.int64)
    for a in range(len(left)):
        if solver.value(x[a]):
            chosen[left[a]] = right[a]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[2000, 10000])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-cp-sat-above", type=int, default=5000, help="skip CP-SAT on larger instances")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        m, left, right, cost, skip = instance(n, seed=n)
        row: dict[str, Any] = {"bundles": n, "couriers": m, "arcs": len(left)}
        optimum = None
        for name, solve in (
            ("min_cost_flow", by_min_cost_flow),
            ("linear_sum_assignment", by_linear_sum),
            ("cp_sat", by_cp_sat),
        ):
            if name == "cp_sat" and n > args.no_cp_sat_above:
                row[name] = "skipped"
                continue
            times = []
            for _ in range(args.reps if name != "cp_sat" else 1):
                t0 = time.perf_counter()
                chosen = solve(n, m, left, right, cost, skip)
                times.append(time.perf_counter() - t0)
            value = total(chosen, left, right, cost, skip)
            optimum = value if optimum is None else optimum
            row[name] = {
                "median_s": round(statistics.median(times), 4),
                "objective": value,
                "same_optimum": value == optimum,
            }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(json.dumps({"runs": rows}, indent=2))


if __name__ == "__main__":
    main()
