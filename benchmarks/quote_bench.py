"""The cost of a quote that counts supply, against today's quote, in the same run.

A city of 2,000 couriers within reach of the merchant (``tick_bench``'s builder: 2,000 orders,
one tick assigns them, so most couriers are busy with plans) and ``--waiting`` orders placed
after the tick, waiting for a courier. Timed, interleaved, on the same state:

* ``before``: the quote as on ``arch`` (admission rules, then the nearest idle courier or a
  repositioning one among the 16 nearest busy plans; the function is copied below verbatim);
* ``supply``: the quote with ``supply_admission`` on (the couriers' plans and the waiting orders).

With ``--learned``, the store first holds learned travel factors (1.1, for the hour of the
quotes and every res-7 cell a courier is in), so the supply quote times rides with
:class:`~dispatch.estimates.LearnedTravel` as a city with learning on would.

Target (issue #19): ``supply`` costs at most 2x ``before``. Prints one JSON document.

    .venv/bin/python benchmarks/quote_bench.py
    .venv/bin/python benchmarks/quote_bench.py --redis     # the same over a RedisStore
    .venv/bin/python benchmarks/quote_bench.py --redis --learned
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h3

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from tick_bench import CENTRE, build  # noqa: E402

from dispatch import Dispatcher, Location, Refused  # noqa: E402
from dispatch.admission import admit  # noqa: E402
from dispatch.estimates.travel import cell_of, hour_of  # noqa: E402
from dispatch.geo import disk_k_for, location_to_cell  # noqa: E402
from dispatch.lookups import Engine  # noqa: E402
from dispatch.models import CourierStatus, Merchant, OrderStatus, StopKind  # noqa: E402
from dispatch.timing import pickup_at  # noqa: E402

QUOTE_BUSY_PLANS = 16


def arch_supply_arrival(ctx: Engine, merchant: Merchant, now: int) -> int:
    """``dispatch.admission.supply_arrival`` as on the ``arch`` branch (today's quote)."""
    cfg = ctx.config
    cell = location_to_cell(merchant.location, cfg.h3_resolution)
    reach = ctx.travel.reach_m(cfg.max_pickup_travel_s, cfg.reference_speed_mps)
    cells = h3.grid_disk(cell, disk_k_for(cell, reach))
    best = None
    busy = []
    for courier in ctx.store.couriers_in_cells(cells):
        if courier.shift_end <= now:
            continue
        t = ctx.travel.travel_s(courier.location, merchant.location, courier.speed_mps)
        if courier.status is not CourierStatus.IDLE:
            busy.append((t, courier.id, courier))
        elif t <= cfg.max_pickup_travel_s and (best is None or t < best):
            best = t
    limit = cfg.max_pickup_travel_s if best is None else best
    moving = [c for t, _, c in sorted(busy)[:QUOTE_BUSY_PLANS] if t < limit]
    routes = ctx.store.routes([c.id for c in moving]) if moving else {}
    for courier in moving:
        route = routes.get(courier.id)
        if route is None or len(route.stops) != 1 or route.stops[0].kind is not StopKind.REPOSITION:
            continue
        stop = route.stops[0]
        t = max(0, stop.arrive_at - now) + ctx.travel.travel_s(
            stop.location, merchant.location, courier.speed_mps
        )
        if t <= cfg.max_pickup_travel_s and (best is None or t < best):
            best = t
    return now + (best if best is not None else cfg.free_horizon_s)


def arch_quote(d: Dispatcher, merchant_id: str, dropoff: Location, now: int) -> int:
    """Today's quote: the admission rules and the nearest supply; returns the drop-off ETA."""
    a = admit(d, d._areas, merchant_id, dropoff, now, None, None)
    pickup = pickup_at(arch_supply_arrival(d, a.merchant, now), a.ready_at, d.config.pickup_service_s)
    return max(pickup + a.after_ready_s, a.window.start)


def city(store: Any, waiting: int) -> tuple[Dispatcher, int]:
    d = build(2000, 2000, seed=7, store=store)
    now = 3600
    d.tick(now)
    placed = 0
    merchants = [m for m in d.store.merchants()]
    i = 0
    while placed < waiting:
        m = merchants[i % len(merchants)]
        i += 1
        try:
            d.place_order(f"w{i}", m.id, Location(m.location.lat + 0.004, m.location.lng), now=now + 1)
        except Refused:
            continue
        placed += 1
    return d, now + 2


def _time(fn: Callable[[], object], reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _learn(d: Dispatcher, now: int) -> None:
    """Learned travel factors of 1.1 for ``now``'s hour, in every cell a courier is in."""
    cells = {cell_of(c.location) for c in d.store.couriers_on_shift()}
    n, log = 100, math.log(1.1)
    table = {"all": [n * len(cells), n * len(cells) * log], "cells": {c: [n, n * log] for c in sorted(cells)}}
    hour = f"travel:h{hour_of(now)}"
    d.store.set_learned({"travel:city": json.dumps([n, n * log]), hour: json.dumps(table)})


def run(store: Any, reps: int, waiting: int, learned: bool = False) -> dict[str, Any]:
    d, now = city(store, waiting)
    if learned:
        _learn(d, now)
    supply_d = Dispatcher(
        store=d.store, config=dataclasses.replace(d.config, supply_admission=True), travel=d.travel
    )
    merchant = min(
        d.store.merchants(), key=lambda m: abs(m.location.lat - CENTRE.lat) + abs(m.location.lng - CENTRE.lng)
    )
    dropoff = Location(merchant.location.lat + 0.006, merchant.location.lng + 0.004)
    cells = h3.grid_disk(
        location_to_cell(merchant.location, d.config.h3_resolution),
        disk_k_for(
            location_to_cell(merchant.location, d.config.h3_resolution),
            d.travel.reach_m(d.config.max_pickup_travel_s, d.config.reference_speed_mps),
        ),
    )
    near = d.store.couriers_in_cells(cells)

    def supply_quote() -> object:
        try:
            return supply_d.quote(merchant.id, dropoff, now)
        except Refused as exc:
            return exc

    before: list[float] = []
    after: list[float] = []
    for _ in range(reps):  # interleaved, so drift on a shared machine hits both alike
        before += _time(lambda: arch_quote(d, merchant.id, dropoff, now), 1)
        after += _time(supply_quote, 1)
    b, a = statistics.median(before), statistics.median(after)
    return {
        "travel": repr(supply_d.travel_at(now)),
        "couriers_in_reach": len(near),
        "busy_in_reach": sum(c.status is not CourierStatus.IDLE for c in near),
        "waiting_orders": len(d.store.orders_with_status(OrderStatus.PLACED)),
        "before_ms_median": round(b * 1000, 3),
        "supply_ms_median": round(a * 1000, 3),
        "ratio": round(a / b, 2),
        "target_ratio_max": 2.0,
        "met": a / b <= 2.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--waiting", type=int, default=200)
    parser.add_argument("--redis", action="store_true", help="also over a RedisStore (starts redis-server)")
    parser.add_argument("--learned", action="store_true", help="learned travel factors in the store")
    args = parser.parse_args()
    out: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "memory": run(None, args.reps, args.waiting, args.learned),
    }
    if args.redis:
        from dispatch.redis_store import RedisStore
        from tests.redis_server import RedisServer

        with tempfile.TemporaryDirectory() as tmp:
            server = RedisServer(Path(tmp))
            server.start()
            try:
                out["redis"] = run(RedisStore(server.url, "bench"), args.reps, args.waiting, args.learned)
            finally:
                server.stop()
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
