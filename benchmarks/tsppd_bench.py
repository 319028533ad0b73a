"""TSPPD benchmark: the project's router against VROOM and OR-Tools, side by side in one run.

Every ``*.json`` instance in DIR (default: the Grubhub set beside the checkout) goes through

* ``ours``: :func:`simulations.tsppd.solve_instance`, the routing code dispatch calls;
* ``vroom``: pyvroom, one vehicle starting at ``+0`` with an open end, the orders as
  shipments (exploration level 5, one thread);
* ``ortools``: OR-Tools routing with pickup-and-delivery, parallel cheapest insertion then
  guided local search for the full ``--time-limit``.

Each cost is recomputed from the returned tour by :func:`simulations.tsppd.tour_cost`, which also
checks precedence, and compared with ``optimal.txt``. Prints JSON (per instance and per size)
and writes the per-size table into the ``## Route optimisation (TSPPD)`` section of
``benchmarks/RESULTS.md``.

    .venv/bin/python benchmarks/tsppd_bench.py ../shared/data/tsppd/grubhub --time-limit 1.0 --jobs 1
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2

from simulations.tsppd import (
    END,
    START,
    TsppdInstance,
    read_instance,
    read_optimal,
    solve_instance,
    tour_cost,
)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "tsppd" / "grubhub"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
SECTION = "## Route optimisation (TSPPD)"
VROOM_EXPLORATION = 5

try:
    import vroom
except ImportError:  # reported in the output, the other methods still run
    vroom = None


def run_ours(instance: TsppdInstance, time_limit_s: float) -> dict[str, Any]:
    result = solve_instance(instance, time_limit_s=time_limit_s)
    return {"tour": result["tour"], "seconds": result["seconds"], "proven": result["optimal"]}


def run_vroom(instance: TsppdInstance, time_limit_s: float) -> dict[str, Any]:
    assert vroom is not None
    started = time.perf_counter()
    problem = vroom.Input()
    problem.set_durations_matrix(profile="car", matrix_input=np.asarray(instance.edges))
    problem.add_vehicle(vroom.Vehicle(0, start=instance.nodes.index(START)))  # no end: open route
    for k, (pickup, dropoff) in enumerate(instance.pairs):
        problem.add_shipment(
            vroom.ShipmentStep(2 * k, instance.nodes.index(pickup)),
            vroom.ShipmentStep(2 * k + 1, instance.nodes.index(dropoff)),
        )
    solution = problem.solve(exploration_level=VROOM_EXPLORATION, nb_threads=1)
    seconds = time.perf_counter() - started
    steps = solution.routes
    visited = steps[steps["type"].isin(["pickup", "delivery"])]["location_index"]
    tour = [START] + [instance.nodes[int(k)] for k in visited] + [END]
    return {"tour": tour, "seconds": seconds, "proven": False}


def run_ortools(instance: TsppdInstance, time_limit_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    size = len(instance.nodes)
    start, end = instance.nodes.index(START), instance.nodes.index(END)
    manager = pywrapcp.RoutingIndexManager(size, 1, [start], [end])
    routing = pywrapcp.RoutingModel(manager)
    transit = routing.RegisterTransitMatrix(instance.edges.tolist())
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    routing.AddConstantDimension(1, size, True, "position")
    position = routing.GetDimensionOrDie("position")
    solver = routing.solver()
    for pickup, dropoff in instance.pairs:
        p = manager.NodeToIndex(instance.nodes.index(pickup))
        d = manager.NodeToIndex(instance.nodes.index(dropoff))
        routing.AddPickupAndDelivery(p, d)
        solver.Add(routing.VehicleVar(p) == routing.VehicleVar(d))
        solver.Add(position.CumulVar(p) < position.CumulVar(d))
    parameters = pywrapcp.DefaultRoutingSearchParameters()
    parameters.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    parameters.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    parameters.time_limit.FromMilliseconds(round(time_limit_s * 1000))
    solution = routing.SolveWithParameters(parameters)
    seconds = time.perf_counter() - started
    tour = [START]
    index = solution.Value(routing.NextVar(routing.Start(0)))
    while not routing.IsEnd(index):
        tour.append(instance.nodes[manager.IndexToNode(index)])
        index = solution.Value(routing.NextVar(index))
    tour.append(END)
    return {"tour": tour, "seconds": seconds, "proven": False}


METHODS: dict[str, Callable[[TsppdInstance, float], dict[str, Any]]] = {
    "ours": run_ours,
    "vroom": run_vroom,
    "ortools": run_ortools,
}


def bench_one(path: Path, time_limit_s: float, methods: list[str]) -> dict[str, Any]:
    instance = read_instance(path)
    record: dict[str, Any] = {"name": instance.name, "pairs": instance.size}
    for method in methods:
        result = METHODS[method](instance, time_limit_s)
        record[method] = {
            "cost": tour_cost(instance, result["tour"]),  # also checks the tour
            "seconds": round(result["seconds"], 6),
            "proven": result["proven"],
        }
    return record


def summarise(
    records: list[dict[str, Any]], optima: dict[str, int], methods: list[str]
) -> list[dict[str, Any]]:
    rows = []
    for pairs in sorted({record["pairs"] for record in records}):
        group = [record for record in records if record["pairs"] == pairs]
        row: dict[str, Any] = {"pairs": pairs, "instances": len(group)}
        for method in methods:
            gaps = [100 * (r[method]["cost"] - optima[r["name"]]) / optima[r["name"]] for r in group]
            seconds = [r[method]["seconds"] for r in group]
            row[method] = {
                "mean_gap_pct": round(statistics.fmean(gaps), 4),
                "optimal_share": round(sum(gap == 0 for gap in gaps) / len(group), 3),
                "proven_share": round(sum(r[method]["proven"] for r in group) / len(group), 3),
                "median_s": round(statistics.median(seconds), 4),
                "max_s": round(max(seconds), 4),
            }
        rows.append(row)
    return rows


def _cell(stats: dict[str, Any], *, proven: bool) -> str:
    share = f"{stats['optimal_share']:.0%}"
    if proven:
        share += f" / {stats['proven_share']:.0%}"
    median_ms, max_ms = 1000 * stats["median_s"], 1000 * stats["max_s"]
    return f"{stats['mean_gap_pct']:.3f} | {share} | {median_ms:.1f} | {max_ms:.1f}"


def markdown(summary: list[dict[str, Any]], methods: list[str], meta: dict[str, Any]) -> str:
    names = {"ours": "ours", "vroom": "VROOM", "ortools": "OR-Tools"}
    head = ["pairs"]
    for method in methods:
        label = names[method]
        opt = f"{label} opt" + (" / proven" if method == "ours" else "")
        head += [f"{label} gap %", opt, f"{label} median ms", f"{label} max ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary:
        cells = [str(row["pairs"])] + [_cell(row[m], proven=m == "ours") for m in methods]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        SECTION,
        "",
        f"Command: `{meta['command']}`",
        "",
        f"{meta['instances']} instances from `{meta['directory']}`, one process (`--jobs {meta['jobs']}`), "
        f"OR-Tools and our search limited to {meta['time_limit_s']} s, VROOM at exploration level "
        f"{VROOM_EXPLORATION} with one thread; {meta['machine']}. Gap: mean over the 10 instances of "
        "(cost - proven optimum) / proven optimum; opt: share of instances solved to the optimum "
        "(ours: / share proven optimal by the solver itself); times are wall-clock per instance, "
        "so they carry the noise of a shared machine.",
        "",
        *lines,
        "",
    ]
    if meta.get("missing"):
        notes += [f"Not run: {meta['missing']}.", ""]
    return "\n".join(notes)


def write_section(text: str, path: Path = RESULTS) -> None:
    """Replace our section of RESULTS.md (or append it), leaving other sections alone."""
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if SECTION in old:
        before, rest = old.split(SECTION, 1)
        after = rest.find("\n## ")
        tail = rest[after + 1 :] if after >= 0 else ""
        new = before + text + ("\n" + tail if tail else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "directory", nargs="?", type=Path, default=DEFAULT_DIR, help="instances and optimal.txt"
    )
    parser.add_argument("--time-limit", type=float, default=1.0, help="seconds per instance (default 1.0)")
    parser.add_argument("--jobs", type=int, default=1, help="instances solved in parallel (default 1)")
    parser.add_argument("--methods", default="ours,vroom,ortools", help="comma-separated subset")
    parser.add_argument("--no-write", action="store_true", help="do not update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)

    methods = [m for m in args.methods.split(",") if m]
    missing = []
    if "vroom" in methods and vroom is None:
        methods.remove("vroom")
        missing.append("VROOM (pyvroom is not installed)")
    paths = sorted(args.directory.glob("*.json"))
    optima = read_optimal(args.directory / "optimal.txt")
    # warm up imports and caches outside the timings
    bench_one(paths[0], 0.05, methods)
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            records = list(pool.map(bench_one, paths, [args.time_limit] * len(paths), [methods] * len(paths)))
    else:
        records = [bench_one(path, args.time_limit, methods) for path in paths]
    summary = summarise(records, optima, methods)
    try:
        directory = str(args.directory.resolve().relative_to(ROOT.parent))
    except ValueError:
        directory = str(args.directory)
    meta = {
        "command": "python benchmarks/tsppd_bench.py " + " ".join(sys.argv[1:]),
        "directory": directory,
        "instances": len(records),
        "time_limit_s": args.time_limit,
        "jobs": args.jobs,
        "machine": f"{platform.machine()}, {platform.python_implementation()} {platform.python_version()}",
        "missing": ", ".join(missing),
    }
    if not args.no_write:
        write_section(markdown(summary, methods, meta))
    print(json.dumps({"meta": meta, "summary": summary, "instances": records}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
