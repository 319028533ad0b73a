"""A floor under any policy's mean click-to-door on MDRP instances, per instance and per seed.

No order can reach its door before: placement -> ready (the food), half the pickup service
(the hand-over is at max(ready, arrival + half)), the direct ride from the restaurant
(ceil(metres / metres-per-minute)), half the drop-off service. Couriers being elsewhere,
busy, or carrying other orders only add to it, so the mean of this per order is a lower bound
of the mean click-to-door of every solution that delivers every order.

    python benchmarks/mdrp_lower_bound.py ../shared/data/mdrp/instances/*
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from dispatch.errors import InvalidInput
from simulations.mdrp import read_instance
from simulations.mdrp_bench import family_of


def lower_bound_min(directory: str) -> float:
    instance = read_instance(directory)
    p = instance.params
    floors = []
    for order in instance.orders:
        ride = instance.travel_min(instance.restaurants[order.restaurant], (order.x, order.y))
        prep = order.ready_min - order.placement_min
        floors.append(prep + p.pickup_service_min / 2 + ride + p.dropoff_service_min / 2)
    return statistics.fmean(floors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("instances", nargs="+")
    args = parser.parse_args()
    try:
        per_instance = {Path(d).name: round(lower_bound_min(d), 3) for d in sorted(args.instances)}
    except InvalidInput as exc:  # an instance that cannot be read: say which, no traceback
        parser.error(str(exc))
    seeds: dict[str, list[float]] = {}
    for name, value in per_instance.items():
        seeds.setdefault(family_of(name).get("seed", "?"), []).append(value)
    print(
        json.dumps(
            {
                "mean": round(statistics.fmean(per_instance.values()), 3),
                "by_seed": {s: round(statistics.fmean(v), 3) for s, v in sorted(seeds.items())},
                "instances": per_instance,
            }
        )
    )


if __name__ == "__main__":
    main()
