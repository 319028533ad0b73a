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
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

from dispatch.errors import InvalidInput
from dispatch.matching import OptimizingPolicy
from dispatch.models import Order
from dispatch.positioning import DemandMemory
from simulations import mdrp
from simulations.mdrp_bench import family_of
from simulations.world import ReplayReport


class _FutureDemand(DemandMemory):
    """The orders each merchant will receive in the next ``horizon_s`` after the tick's time
    (which :meth:`observe` is told every tick); what the dispatcher saw is not used."""

    def __init__(self, window_s: int, placements: Sequence[tuple[int, str]], horizon_s: int) -> None:
        super().__init__(window_s)
        ordered = sorted(placements)
        self._times = [t for t, _ in ordered]
        self._merchants = [m for _, m in ordered]
        self._horizon_s = horizon_s
        self.now = 0

    def observe(self, orders: Iterable[Order], now: int) -> None:
        self.now = now

    def recall(self, placements: Iterable[tuple[int, str, str]], now: int) -> None:
        pass

    def weights(self) -> dict[str, int]:
        lo = bisect.bisect_right(self._times, self.now)
        hi = bisect.bisect_right(self._times, self.now + self._horizon_s)
        counts: dict[str, int] = {}
        for merchant_id in self._merchants[lo:hi]:
            counts[merchant_id] = counts.get(merchant_id, 0) + 1
        return counts


def foresight_policy(placements: Sequence[tuple[int, str]], horizon_s: int) -> OptimizingPolicy:
    """The optimizing policy, its prepositioning told the next ``horizon_s`` of
    ``(placed_at, merchant id)``."""
    return OptimizingPolicy(demand_memory=lambda window_s: _FutureDemand(window_s, placements, horizon_s))


class Row(NamedTuple):
    instance: str
    seen: float  # mean click-to-door with the demand seen
    foresight: float  # ... with foresight
    feasible: bool  # both solutions


def replays(directory: str, horizon_s: int) -> tuple[mdrp.MdrpInstance, ReplayReport, ReplayReport]:
    """The instance, replayed as the engine does and with ``horizon_s`` of foresight."""
    instance = mdrp.read_instance(directory)
    placements = [(o.placement_min * 60, o.restaurant) for o in instance.orders]
    return (
        instance,
        mdrp.replay(instance, OptimizingPolicy()),
        mdrp.replay(instance, foresight_policy(placements, horizon_s)),
    )


def score(instance: mdrp.MdrpInstance, report: ReplayReport) -> tuple[float, bool]:
    """Mean click-to-door of the written solution, and whether the checker accepts it."""
    with tempfile.TemporaryDirectory() as out:
        mdrp.write_solution(out, report)
        solution = mdrp.read_solution(out)
    feasible = not mdrp.check_solution(instance, solution)
    return float(mdrp.compute_kpis(instance, solution)["click_to_door_mean"]), feasible


def row_of(instance: mdrp.MdrpInstance, seen: ReplayReport, told: ReplayReport) -> Row:
    (seen_ctd, seen_ok), (told_ctd, told_ok) = score(instance, seen), score(instance, told)
    return Row(instance.name, seen_ctd, told_ctd, seen_ok and told_ok)


def _one(directory: str, horizon_s: int) -> Row:
    return row_of(*replays(directory, horizon_s))


def _means(rows: Sequence[Row]) -> dict[str, float]:
    seen = statistics.fmean(r.seen for r in rows)
    told = statistics.fmean(r.foresight for r in rows)
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
        try:
            rows = list(pool.map(_one, dirs, [args.minutes * 60] * len(dirs)))
        except InvalidInput as exc:  # an instance that cannot be read: say which, no traceback
            parser.error(str(exc))
    seeds: dict[str, list[Row]] = {}
    for row in rows:
        seeds.setdefault(family_of(row.instance).get("seed", "?"), []).append(row)
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "instances": len(rows),
                "all_feasible": all(r.feasible for r in rows),
                **_means(rows),
                "by_seed": {s: _means(v) for s, v in sorted(seeds.items())},
            }
        )
    )


if __name__ == "__main__":
    main()
