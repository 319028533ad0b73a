"""ETA sources and supply-aware admission in the city simulator with uncertainty, same scenario
and seed (issue #19's measurement). Prints one JSON document.

ETA sources:

* ``static``: learning off (the stated preparation time, the base travel model);
* ``learned``: learning on (:mod:`dispatch.estimates`: preparation delay per merchant and hour,
  travel time per H3 cell and hour);
* ``oracle``: learning on, its store seeded before the day with each merchant's true mean
  preparation delay (from the day's truth: stated preparation x the mean of that merchant's
  factors, minus the stated) and each hour's true median ride factor (the scenario's
  ``ride_hour_factor``, as the hour's and the city's log ratio), each weighted as a million
  observations: the ceiling of what learning per merchant and per hour can reach.

Each source is run with supply-aware admission off and on. Per run: the pickup ETA given at
assignment and the drop-off ETA given at placement (MAE, p90, bias, minutes), accepted orders,
refusals, orders delivered on time, the share of accepted orders delivered within the promise,
click-to-door; and the gap closed by learning, ``(static - learned) / (static - oracle)`` of MAE.

    .venv/bin/python benchmarks/eta_sources_bench.py                      # lunch-rush, seed 1
    .venv/bin/python benchmarks/eta_sources_bench.py --scenario metro-day --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import tomllib
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from dispatch import Dispatcher  # noqa: E402
from dispatch.estimates.prep import PrepDelay  # noqa: E402
from dispatch.estimates.travel import LogRatios  # noqa: E402
from simulations.day import build_day  # noqa: E402
from simulations.kpis import compute_kpis, courier_rows, order_rows  # noqa: E402
from simulations.scenario import load_scenario  # noqa: E402
from simulations.simulate import _policy  # noqa: E402
from simulations.world import World  # noqa: E402

SOURCES = ("static", "learned", "oracle")


def _err(rows: list[dict[str, Any]], actual: str, eta: str) -> dict[str, float]:
    errs = [(r[actual] - r[eta]) / 60 for r in rows if r[actual] is not None and r[eta] is not None]
    if not errs:
        return {"mae_min": 0.0, "p90_min": 0.0, "bias_min": 0.0, "n": 0}
    absolute = sorted(abs(e) for e in errs)
    return {
        "mae_min": round(statistics.fmean(absolute), 3),
        "p90_min": round(absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))], 3),
        "bias_min": round(statistics.fmean(errs), 3),
        "n": len(errs),
    }


def _overrides(scenario_name: str, scale: float) -> list[tuple[str, Any]]:
    """Demand and fleet x ``scale`` (the same city, merchants and uncertainty)."""
    if scale == 1.0:
        return []
    s = load_scenario(scenario_name)
    return [("demand.orders", round(s.demand.orders * scale)), ("fleet.scale", s.fleet.scale * scale)]


def run(
    scenario_name: str,
    scale: float,
    seed: int,
    source: str,
    supply: bool,
    extra: tuple[tuple[str, Any], ...] = (),
) -> dict[str, Any]:
    started = time.perf_counter()
    cpu_started = time.process_time()
    overrides = [
        *_overrides(scenario_name, scale),
        *extra,
        ("rules.config.learning", source != "static"),
        ("rules.config.supply_admission", supply),
    ]
    scenario = load_scenario(scenario_name, overrides)
    day = build_day(scenario, seed)
    d = Dispatcher(config=day.config, policy=_policy(scenario.rules.policy))
    if source == "oracle":
        factors: dict[str, list[float]] = defaultdict(list)
        for req in day.plan.requests:
            factors[req.merchant_id].append(day.truth.prep_factor.get(req.order_id, 1.0))
        seeded = {}
        n = 1_000_000
        for m in day.plan.merchants:
            mean = statistics.fmean(factors[m.id]) if factors[m.id] else 1.0
            truth = json.dumps(list(PrepDelay(n, n * m.prep_s * (mean - 1))))
            seeded[f"prep:m:{m.id}"] = truth
            seeded.update({f"prep:m:{m.id}:h{h}": truth for h in range(24)})
        logs = [math.log(f) for f in day.truth.ride_hour_factor]
        city = statistics.fmean(logs)
        seeded["travel:city"] = json.dumps(list(LogRatios(n, n * city)))
        for h, log in enumerate(logs):
            seeded[f"travel:h{h}"] = json.dumps({"all": list(LogRatios(n, n * log)), "cells": {}})
        d.store.set_learned(seeded)
    world = World(d, day.plan, tick_s=scenario.rules.tick_seconds, truth=day.truth)
    report = world.run()
    merchants = {m.id: (m.location.lat, m.location.lng) for m in day.plan.merchants}
    orders = order_rows(source, report, merchants)
    kpis = compute_kpis(orders, courier_rows(source, report, day.vehicle_of), report.tick_seconds)
    accepted = [r for r in orders if r["status"] != "refused"]
    on_time = sum(1 for r in orders if r["status"] == "delivered" and r["on_time"])
    return {
        "source": source,
        "supply_admission": supply,
        "pickup_eta_at_assignment": _err(orders, "picked_up_at", "pickup_eta_at_assignment"),
        "dropoff_eta_at_placement": _err(orders, "delivered_at", "dropoff_eta_at_placement"),
        "accepted": len(accepted),
        "refused": len(orders) - len(accepted),
        "refused_by_code": {k[8:]: v for k, v in kpis.items() if k.startswith("refused_")},
        "delivered": kpis["orders_delivered"],
        "delivered_on_time": on_time,
        "accepted_within_promise_share": round(on_time / len(accepted), 4) if accepted else 0.0,
        "click_to_door_mean_min": kpis["click_to_door_mean_min"],
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu_started, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="lunch-rush")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=1.0, help="demand and fleet x this (default 1)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a scenario value for every run, e.g. promise_margin_share=0.1 (repeatable)",
    )
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    combos = [(s, supply) for supply in (False, True) for s in SOURCES]
    with ProcessPoolExecutor(args.jobs) as pool:
        pairs = (text.split("=", 1) for text in args.set)
        extra = tuple((key, tomllib.loads(f"v = {value}")["v"]) for key, value in pairs)
        futures = [
            pool.submit(run, args.scenario, args.scale, args.seed, s, supply, extra) for s, supply in combos
        ]
        runs = [f.result() for f in futures]
    gaps = {}
    for supply in (False, True):
        by = {r["source"]: r for r in runs if r["supply_admission"] is supply}
        for what in ("pickup_eta_at_assignment", "dropoff_eta_at_placement"):
            s, le, o = (by[x][what]["mae_min"] for x in SOURCES)
            gaps[f"{what}{'_supply' if supply else ''}"] = round((s - le) / (s - o), 3) if s != o else None
    without = {r["source"]: r for r in runs if not r["supply_admission"]}
    with_ = {r["source"]: r for r in runs if r["supply_admission"]}
    out = {
        "scenario": args.scenario,
        "scale": args.scale,
        "set": args.set,
        "seed": args.seed,
        "runs": runs,
        "gap_closed_by_learning": gaps,
        "on_time_with_vs_without_supply_admission": {
            s: round(with_[s]["delivered_on_time"] / without[s]["delivered_on_time"], 3) for s in SOURCES
        },
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
