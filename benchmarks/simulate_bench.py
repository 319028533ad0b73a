"""The metro-day scenario end to end, optimizing vs greedy: wall time, simulated orders per
second, peak memory, decision time and the KPIs of a day where the world does not follow
the plan.

Each run is its own process (so its peak RSS is its own). Besides the full day (25,000
orders, 2,000 shifts), a scaled-down day of the same city (demand and fleet x 0.1: 2,500
orders, 200 shifts) is run in the same script, so the cost per order can be compared as the
state grows. The small day runs on the other core while the full day runs, again and again
(at least three times), and their median is compared: a small day takes seconds, so the shared
machine's speed, which moves by a quarter from minute to minute, weighs on it most, and side by
side both see the same machine (``--one-at-a-time`` runs them one after the other). CPU seconds
count the run, not the imports.
Targets (2-core machine): the full day within 300 s per policy, time per order at
25,000 orders at most 1.5x that at 2,500, peak RSS at most 1.5 GB.

    python benchmarks/simulate_bench.py [--seed 1] [--policies optimizing greedy]
                                        [--small-only] [--small-runs 3] [--one-at-a-time]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from simulations.kpis import compute_kpis
from simulations.simulate import Variant, run_variant

SCENARIO = "metro-day"
TARGET_WALL_S = 300.0
TARGET_PER_ORDER_RATIO = 1.5
TARGET_RSS_MB = 1536.0


def child(policy: str, scale: float, seed: int) -> dict[str, Any]:
    """One run in this process; its numbers."""
    overrides: tuple[tuple[str, Any], ...] = ()
    if scale != 1.0:
        overrides = (("demand.orders", round(25_000 * scale)), ("fleet.scale", scale))
    started, cpu_started = time.perf_counter(), time.process_time()
    result = run_variant(SCENARIO, Variant(policy, policy, overrides), seed)
    wall = time.perf_counter() - started
    # the run's own CPU seconds (not the imports before it, which weigh more in a small run)
    cpu = time.process_time() - cpu_started
    kpis = compute_kpis(result.orders, result.couriers, result.tick_seconds)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "policy": policy,
        "scale": scale,
        "orders": len(result.orders),
        "couriers": len(result.couriers),
        "wall_s": round(wall, 1),
        # the machine is shared: CPU seconds say what the run itself cost
        "cpu_s": round(cpu, 1),
        "orders_per_s": round(len(result.orders) / wall, 1),
        "ms_per_order": round(1000 * wall / max(1, len(result.orders)), 3),
        "cpu_ms_per_order": round(1000 * cpu / max(1, len(result.orders)), 3),
        "ticks": len(result.tick_seconds),
        "tick_s_total": round(sum(result.tick_seconds), 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "decision_s_p99": kpis["decision_s_p99"],
        "kpis": kpis,
    }


def _command(policy: str, scale: float, seed: int) -> list[str]:
    return [sys.executable, __file__, "--child", policy, str(scale), "--seed", str(seed)]


def run(policy: str, scale: float, seed: int) -> dict[str, Any]:
    out = subprocess.run(_command(policy, scale, seed), check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout))


def side_by_side(policy: str, seed: int, small_runs: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The full day in one process and, on the other core meanwhile, the small day again and
    again (at least ``small_runs`` times): both see the same machine at the same time, so
    their ratio does not depend on how fast the shared machine happened to be for each."""
    with tempfile.TemporaryFile("w+") as out:
        full = subprocess.Popen(_command(policy, 1.0, seed), stdout=out, text=True)
        smalls: list[dict[str, Any]] = []
        while len(smalls) < small_runs or full.poll() is None:
            smalls.append(run(policy, 0.1, seed))
        if full.wait() != 0:
            raise SystemExit(f"the full day ({policy}) failed with exit code {full.returncode}")
        out.seek(0)
        return dict(json.loads(out.read())), smalls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policies", nargs="+", default=["optimizing", "greedy"])
    parser.add_argument("--small-only", action="store_true", help="only the scaled-down day")
    parser.add_argument(
        "--small-runs", type=int, default=3, help="runs of the scaled-down day (their median is compared)"
    )
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="the small days first, then the full day alone (default: the small days beside it)",
    )
    parser.add_argument("--child", nargs=2, metavar=("POLICY", "SCALE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]), args.seed)))
        return
    results: dict[str, Any] = {}
    for policy in args.policies:
        # the small day takes seconds, so the machine's noise weighs on it most: its median
        if args.small_only or args.one_at_a_time:
            smalls = [run(policy, 0.1, args.seed) for _ in range(args.small_runs)]
        else:
            full, smalls = side_by_side(policy, args.seed, args.small_runs)
        small = dict(smalls[0])
        for key in ("wall_s", "cpu_s", "ms_per_order", "cpu_ms_per_order", "tick_s_total"):
            small[key] = round(statistics.median(r[key] for r in smalls), 3)
        small["runs_wall_s"] = [r["wall_s"] for r in smalls]
        small["runs_cpu_s"] = [r["cpu_s"] for r in smalls]
        row: dict[str, Any] = {"small": small}
        if not args.small_only:
            if args.one_at_a_time:
                full = run(policy, 1.0, args.seed)
            ratio = full["ms_per_order"] / small["ms_per_order"]
            row["full"] = full
            row["per_order_ratio"] = round(ratio, 2)
            row["cpu_per_order_ratio"] = round(full["cpu_ms_per_order"] / small["cpu_ms_per_order"], 2)
            row["targets"] = {
                "wall_s_le_300": full["wall_s"] <= TARGET_WALL_S,
                "cpu_s_le_300": full["cpu_s"] <= TARGET_WALL_S,
                "per_order_ratio_le_1.5": ratio <= TARGET_PER_ORDER_RATIO,
                "peak_rss_le_1.5GB": full["peak_rss_mb"] <= TARGET_RSS_MB,
            }
        results[policy] = row
        print(json.dumps({policy: row}), file=sys.stderr)  # progress, one line per policy
    print(
        json.dumps(
            {
                "benchmark": "simulate_bench",
                "scenario": SCENARIO,
                "seed": args.seed,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
