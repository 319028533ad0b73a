"""Time one dispatch tick on a seeded synthetic city, optimizing policy vs the greedy baseline.

Builds a snapshot with N open orders and M idle couriers, times ``Dispatcher.tick`` (median
of --reps runs, each on a fresh copy of the same state), evaluates both policies' decisions
under the optimizing policy's own cost, and prints one JSON document.

    python benchmarks/tick_bench.py --sizes 2000x4000 10000x20000 --reps 3
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import platform
import random
import resource
import statistics
import sys
import time
import tracemalloc
from typing import Any

from dispatch import (
    DeliveryArea,
    DispatchConfig,
    Dispatcher,
    GreedyPolicy,
    Location,
    Merchant,
    OptimizingPolicy,
    Refused,
)
from dispatch.models import StopKind
from dispatch.store import Store
from simulations.city import offset

CENTRE = Location(41.8781, -87.6298)


def build(n_orders: int, n_couriers: int, seed: int, store: Store | None = None) -> Dispatcher:
    """A city sized so density stays realistic: ~1 merchant per 10 open orders (in ``store``,
    in-memory by default)."""
    rng = random.Random(seed)
    config = DispatchConfig(city="bench")
    d = Dispatcher(store=store, config=config)
    side_m = 1000.0 * math.sqrt(max(n_couriers, 1) / 20.0)  # ~20 couriers per km^2
    n_merchants = max(5, n_orders // 10)
    merchants = []
    for i in range(n_merchants):
        loc = offset(CENTRE, rng.uniform(-side_m / 2, side_m / 2), rng.uniform(-side_m / 2, side_m / 2))
        m = Merchant(f"m{i}", loc, DeliveryArea(radius_m=3000.0), prep_s=rng.choice([300, 600, 900]))
        d.add_merchant(m, now=0)
        merchants.append(m)
    now = 3600
    for i in range(n_couriers):
        loc = offset(CENTRE, rng.uniform(-side_m / 2, side_m / 2), rng.uniform(-side_m / 2, side_m / 2))
        d.start_shift(f"c{i}", loc, now=0, shift_end=now + 4 * 3600, speed_mps=rng.choice([4.5, 7.0]))
    # Orders placed 5 to 20 minutes ago whose food is ready now: nothing is worth deferring,
    # so both policies assign every order and their objectives compare over the same orders.
    placed = sorted(rng.randrange(now - 1200, now - 300) for _ in range(n_orders))
    accepted = 0
    while accepted < n_orders:  # customers the promise cannot serve are refused: draw another
        m = rng.choice(merchants)
        r, a = rng.uniform(200, 2500), rng.uniform(0, 2 * math.pi)
        drop = offset(m.location, r * math.cos(a), r * math.sin(a))
        try:
            at = placed[accepted]
            d.place_order(f"o{accepted}", m.id, drop, now=at, ready_at=at + rng.randrange(0, now - at + 1))
        except Refused:
            continue
        accepted += 1
    return d


def per_order(d: Dispatcher, result: Any, now: int) -> dict[str, tuple[int, int, int, int]]:
    """(lateness, click-to-door, food wait, courier ride to the merchant) in seconds, per order."""
    out: dict[str, tuple[int, int, int, int]] = {}
    pickup_at: dict[str, int] = {}
    ride: dict[str, int] = {}
    for a in result.assignments:
        for stop in a.route.stops:
            for oid in stop.order_ids:
                if oid not in a.order_ids:
                    continue
                if stop.kind is StopKind.PICKUP:
                    pickup_at[oid] = stop.service_at
                    # every courier is idle at `now` in this snapshot: it leaves right away
                    ride[oid] = stop.arrive_at - now if oid == stop.order_ids[0] else 0
                else:
                    o = d.order(oid)
                    out[oid] = (
                        max(0, stop.service_at - o.window.end),
                        stop.service_at - o.placed_at,
                        pickup_at[oid] - o.ready_at,
                        ride[oid],
                    )
    return out


def score(d: Dispatcher, orders: dict[str, tuple[int, int, int, int]], ids: set[str]) -> dict[str, float]:
    """The optimizing policy's own objective (its cost weights) over the orders ``ids``."""
    cfg = d.config
    late = sum(orders[o][0] for o in ids)
    c2d = sum(orders[o][1] for o in ids)
    wait = sum(orders[o][2] for o in ids)
    ride = sum(orders[o][3] for o in ids)
    cost = (
        cfg.lateness_weight * late
        + cfg.click_to_door_weight * c2d
        + cfg.food_wait_weight * wait
        + cfg.travel_weight * ride
    )
    n = max(len(ids), 1)
    return {
        "total_lateness_min": round(late / 60, 1),
        "mean_click_to_door_est_min": round(c2d / n / 60, 2),
        "objective_per_order": round(cost / n, 1),
    }


def run_policy(base: Dispatcher, policy: Any, reps: int, now: int) -> dict[str, Any]:
    times = []
    last = None
    for _ in range(reps):
        d = copy.deepcopy(base)
        d.policy = policy
        gc.collect()
        t0 = time.perf_counter()
        last = d.tick(now)
        times.append(time.perf_counter() - t0)
    d = copy.deepcopy(base)
    d.policy = policy
    tracemalloc.start()
    d.tick(now)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out: dict[str, Any] = {
        "tick_s_median": round(statistics.median(times), 3),
        "tick_s_all": [round(t, 3) for t in times],
        "peak_python_alloc_mb": round(peak / 2**20, 1),
    }
    assert last is not None
    final = copy.deepcopy(base)
    final.policy = policy
    out["_orders"] = per_order(final, final.tick(now), now)
    out["_dispatcher"] = final
    out["orders_assigned"] = len(out["_orders"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["2000x4000", "10000x20000"], help="ORDERSxCOURIERS")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    report: dict[str, Any] = {"python": sys.version.split()[0], "machine": platform.machine(), "runs": []}
    for size in args.sizes:
        n, m = (int(x) for x in size.lower().split("x"))
        t0 = time.perf_counter()
        base = build(n, m, args.seed)
        build_s = time.perf_counter() - t0
        row: dict[str, Any] = {"orders": n, "couriers": m, "build_s": round(build_s, 1)}
        for policy in (OptimizingPolicy(), GreedyPolicy()):
            row[policy.name] = run_policy(base, policy, args.reps, now=3600)
        opt, greedy = row["optimizing"], row["greedy"]
        row["speed_ratio_optimizing_over_greedy"] = round(
            opt["tick_s_median"] / max(greedy["tick_s_median"], 1e-9), 2
        )
        # Compare on the orders both assigned (all of them, when couriers outnumber orders).
        common = set(opt["_orders"]) & set(greedy["_orders"])
        row["orders_assigned_by_both"] = len(common)
        for entry in (opt, greedy):
            entry.update(score(entry.pop("_dispatcher"), entry.pop("_orders"), common))
        row["optimizing_not_worse"] = opt["objective_per_order"] <= greedy["objective_per_order"]
        report["runs"].append(row)
        print(json.dumps(row), file=sys.stderr)
    report["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
