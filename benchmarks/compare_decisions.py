"""Compare dispatch decisions before and after a change that must not change them.

Three kinds of outcome are compared, each against a baseline recorded from the code before:

* the MDRP replays: every decision column of ``benchmarks/mdrp/results.csv`` (orders
  delivered, click-to-door, p90, ready-to-pickup, utilization, cost, bundle sizes, ...; not the
  wall-clock columns ``decision_s_*`` and ``replay_s``), per instance and policy;
* one tick of ``benchmarks/tick_bench.py``'s seeded city: the objective numbers and the number
  of assignments per policy, and a digest of every assignment (courier, orders, stop times);
* the demo (``dispatch demo``, both policies): its printed output and the dispatcher's event log.

Prints ``identical`` (exit 0) or the differences (exit 1).

    python benchmarks/compare_decisions.py record           # baseline of tick + demo, from this code
    python benchmarks/compare_decisions.py                  # fast: 8 smallest MDRP instances
    python benchmarks/compare_decisions.py --full           # all 120 (12-25 min on 2 cores)
    python benchmarks/compare_decisions.py --mdrp-results out/bench/results.csv   # a finished run
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BASELINE_CSV = HERE / "mdrp" / "results.csv"
BASELINE_JSON = HERE / "decisions_baseline.json"
INSTANCES = ROOT.parent / "shared" / "data" / "mdrp" / "instances"
#: columns that measure the machine, not the decisions
WALL_CLOCK = {"decision_s_p99", "decision_s_mean", "decision_s_max", "replay_s"}
TICK_SIZES = ((2000, 4000), (600, 200))  # couriers to spare; scarce (bundles, packing)
TICK_SEED = 1
DEMO_POLICIES = ("optimizing", "greedy")


def _rows(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    with path.open(newline="") as f:
        return {(r["instance"], r["policy"]): r for r in csv.DictReader(f)}


def smallest(n: int) -> list[Path]:
    """The ``n`` MDRP instances with the fewest orders (ties by name)."""
    dirs = [d for d in INSTANCES.iterdir() if (d / "orders.txt").is_file()]
    return sorted(dirs, key=lambda d: (len((d / "orders.txt").read_text().splitlines()), d.name))[:n]


def compare_mdrp(results: Path, baseline: Path = BASELINE_CSV) -> list[str]:
    """Differences between the decision columns of ``results`` and the baseline's same rows."""
    base, new = _rows(baseline), _rows(results)
    diffs = []
    if not new:
        return [f"mdrp: {results} has no rows"]
    for key, row in sorted(new.items()):
        if key not in base:
            diffs.append(f"mdrp {key}: not in the baseline")
            continue
        for column, before in base[key].items():
            if column in WALL_CLOCK:
                continue
            after = row.get(column)
            if after != before:
                diffs.append(f"mdrp {key[0]} {key[1]} {column}: {before} -> {after}")
    return diffs


def run_mdrp(dirs: list[Path], jobs: int) -> Path:
    out = Path(tempfile.mkdtemp(prefix="compare-mdrp-"))
    cmd = [str(ROOT / ".venv" / "bin" / "dispatch"), "mdrp", "bench", *map(str, dirs)]
    subprocess.run([*cmd, "--jobs", str(jobs), "--out", str(out)], check=False, capture_output=True)
    return out / "results.csv"


def tick_outcomes() -> dict[str, Any]:
    """One tick of tick_bench's city per size and policy: objective, counts, assignment digest."""
    sys.path.insert(0, str(HERE))
    import copy

    import tick_bench

    from dispatch import GreedyPolicy, OptimizingPolicy

    out: dict[str, Any] = {}
    for n, m in TICK_SIZES:
        base = tick_bench.build(n, m, TICK_SEED)
        runs: dict[str, Any] = {}
        for policy in (OptimizingPolicy(), GreedyPolicy()):
            d = copy.deepcopy(base)
            d.policy = policy
            result = d.tick(3600)
            digest = hashlib.sha256()
            for a in sorted(result.assignments, key=lambda a: a.courier_id):
                stops = [
                    (s.kind.value, s.merchant_id, s.order_ids, s.arrive_at, s.service_at)
                    for s in a.route.stops
                ]
                digest.update(repr((a.courier_id, a.order_ids, stops)).encode())
            runs[policy.name] = {
                "assignments": len(result.assignments),
                "_orders": tick_bench.per_order(d, result, 3600),
                "_d": d,
                "digest": digest.hexdigest(),
            }
        common = set(runs["optimizing"]["_orders"]) & set(runs["greedy"]["_orders"])
        for entry in runs.values():
            entry["orders_assigned"] = len(entry["_orders"])
            entry.update(tick_bench.score(entry.pop("_d"), entry.pop("_orders"), common))
        runs["orders_assigned_by_both"] = len(common)
        out[f"{n}x{m}"] = runs
    return out


def _demo(policy: str) -> tuple[int, str, Any]:
    """Run ``dispatch demo --policy policy``; its exit code, output and dispatcher."""
    from dispatch import cli
    from dispatch.engine import Dispatcher

    seen: list[Dispatcher] = []
    original_init = Dispatcher.__init__

    def spy(self: Dispatcher, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        seen.append(self)

    Dispatcher.__init__ = spy  # type: ignore[method-assign]
    printed = io.StringIO()
    try:
        with redirect_stdout(printed):
            code = cli.main(["demo", "--policy", policy])
    finally:
        Dispatcher.__init__ = original_init  # type: ignore[method-assign]
    (d,) = seen
    return code, printed.getvalue(), d


def demo_outcomes() -> dict[str, Any]:
    """The demo's printed output and event log, per policy (the CLI's default city)."""
    out: dict[str, Any] = {}
    for policy in DEMO_POLICIES:
        code, printed, d = _demo(policy)
        events = [
            (
                e.seq,
                e.at,
                str(e.kind),
                e.order_id,
                e.courier_id,
                e.merchant_id,
                json.dumps(e.data, sort_keys=True),
            )
            for e in d.store.events()
        ]
        out[policy] = {"exit": code, "stdout": printed.splitlines(), "events": events}
    return out


def _diff(path: str, before: Any, after: Any, diffs: list[str], limit: int = 40) -> None:
    if len(diffs) >= limit or before == after:
        return
    if isinstance(before, dict) and isinstance(after, dict):
        for k in sorted(set(before) | set(after)):
            _diff(f"{path}.{k}", before.get(k), after.get(k), diffs, limit)
    elif isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            diffs.append(f"{path}: {len(before)} entries -> {len(after)}")
        for i, (b, a) in enumerate(zip(before, after, strict=False)):
            if b != a:
                diffs.append(f"{path}[{i}]: {b!r} -> {a!r}")
                if len(diffs) >= limit:
                    return
    else:
        diffs.append(f"{path}: {before!r} -> {after!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=["compare", "record"], default="compare")
    parser.add_argument("--full", action="store_true", help="all MDRP instances, not the 8 smallest")
    parser.add_argument("--fast-n", type=int, default=8, help="instances of the fast mode (default 8)")
    parser.add_argument("--mdrp-results", type=Path, help="compare this finished bench's results.csv")
    parser.add_argument("--no-mdrp", action="store_true", help="only the tick and the demo")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()

    if args.mode == "record":
        recorded = {"tick": tick_outcomes(), "demo": demo_outcomes()}
        BASELINE_JSON.write_text(json.dumps(recorded, indent=1) + "\n")
        print(f"recorded {BASELINE_JSON.relative_to(ROOT)}")
        return 0

    diffs: list[str] = []
    if not args.no_mdrp:
        if args.mdrp_results:
            results = args.mdrp_results
        elif not INSTANCES.is_dir():
            print(f"no MDRP instances at {INSTANCES}: MDRP replays not compared", file=sys.stderr)
            results = None
        else:
            dirs = sorted(INSTANCES.iterdir()) if args.full else smallest(args.fast_n)
            results = run_mdrp(dirs, args.jobs)
        if results is not None:
            diffs += compare_mdrp(results)
            print(f"mdrp: {len(_rows(results))} replays compared ({results})", file=sys.stderr)
    baseline = json.loads(BASELINE_JSON.read_text())
    now = json.loads(json.dumps({"tick": tick_outcomes(), "demo": demo_outcomes()}))
    _diff("tick", baseline["tick"], now["tick"], diffs)
    _diff("demo", baseline["demo"], now["demo"], diffs)
    if diffs:
        print("\n".join(diffs))
        return 1
    print("identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
