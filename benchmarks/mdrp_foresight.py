"""What a perfect demand forecast would be worth to prepositioning on MDRP days (measurement only).

The optimizing policy moves idle couriers toward the demand it has seen: the orders of each
merchant in the last hour. This script replays every instance twice: once as the engine
does, and once with a policy that is told, at every tick, how many orders each merchant will
receive in the next ``--minutes``, which no online dispatcher can know. Everything else (the
assignment, commitment, bundling) is the engine's. The difference is what any forecast of
where orders appear could add through prepositioning as the engine does it; a forecast that
is only right on average adds less. Both replays of every instance are checked for
feasibility.

    python benchmarks/mdrp_foresight.py ../shared/data/mdrp/instances/* --minutes 10 --jobs 2

Prints one JSON object: the means over instances (each weighted equally) with the demand
seen and with foresight, their difference, and the same per seed.
"""

from __future__ import annotations

import argparse
import bisect
import json
import statistics
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.matching import Decision, OptimizingPolicy, Snapshot
from dispatch.positioning import DemandMemory
from simulations import mdrp
from simulations.mdrp_bench import family_of


class _FutureDemand(DemandMemory):
    """The orders each merchant will receive in the next ``horizon_s`` after ``now``."""

    def __init__(self, window_s: int, placements: Sequence[tuple[int, str]], horizon_s: int) -> None:
        super().__init__(window_s)
        self._times = [t for t, _ in placements]
        self._merchants = [m for _, m in placements]
        self._horizon_s = horizon_s
        self.now = 0

    def weights(self) -> dict[str, int]:
        lo = bisect.bisect_right(self._times, self.now)
        hi = bisect.bisect_right(self._times, self.now + self._horizon_s)
        counts: dict[str, int] = {}
        for merchant_id in self._merchants[lo:hi]:
            counts[merchant_id] = counts.get(merchant_id, 0) + 1
        return counts


class ForesightPolicy(OptimizingPolicy):
    """The optimizing policy, its prepositioning told the next ``horizon_s`` of orders."""

    name = "optimizing+foresight"

    def __init__(self, placements: Sequence[tuple[int, str]], horizon_s: int) -> None:
        super().__init__()
        self._placements = sorted(placements)
        self._horizon_s = horizon_s

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]:
        if not isinstance(self._demand, _FutureDemand) or self._demand.window_s != config.demand_window_s:
            self._demand = _FutureDemand(config.demand_window_s, self._placements, self._horizon_s)
        self._demand.now = snapshot.now
        return super().decide(snapshot, travel, config)


def _score(instance: mdrp.MdrpInstance, policy: OptimizingPolicy) -> tuple[float, bool]:
    report = mdrp.replay(instance, policy)
    with tempfile.TemporaryDirectory() as out:
        mdrp.write_solution(out, report)
        solution = mdrp.read_solution(out)
    feasible = not mdrp.check_solution(instance, solution)
    return float(mdrp.compute_kpis(instance, solution)["click_to_door_mean"]), feasible


def _one(directory: str, horizon_s: int) -> dict[str, object]:
    instance = mdrp.read_instance(directory)
    placements = [(o.placement_min * 60, o.restaurant) for o in instance.orders]
    seen, seen_ok = _score(instance, OptimizingPolicy())
    told, told_ok = _score(instance, ForesightPolicy(placements, horizon_s))
    return {"instance": instance.name, "seen": seen, "foresight": told, "feasible": seen_ok and told_ok}


def _means(rows: Sequence[dict[str, object]]) -> dict[str, float]:
    seen = statistics.fmean(float(str(r["seen"])) for r in rows)
    told = statistics.fmean(float(str(r["foresight"])) for r in rows)
    return {"ctd_seen": round(seen, 3), "ctd_foresight": round(told, 3), "gain": round(seen - told, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="+")
    parser.add_argument("--minutes", type=int, default=10, help="foresight horizon (default 10)")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if args.minutes <= 0 or args.jobs <= 0:
        parser.error("--minutes and --jobs must be positive")
    dirs = sorted(str(Path(d)) for d in args.instances)
    with ProcessPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(_one, dirs, [args.minutes * 60] * len(dirs)))
    seeds: dict[str, list[dict[str, object]]] = {}
    for row in rows:
        seeds.setdefault(family_of(str(row["instance"])).get("seed", "?"), []).append(row)
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "instances": len(rows),
                "all_feasible": all(bool(r["feasible"]) for r in rows),
                **_means(rows),
                "by_seed": {s: _means(v) for s, v in sorted(seeds.items())},
            }
        )
    )


if __name__ == "__main__":
    main()
