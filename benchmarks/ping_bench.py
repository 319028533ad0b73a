"""What a position ping costs the engine: ``Dispatcher.update_position`` in process, per ping.

Three cases, each over ``--couriers`` couriers on shift (1 km apart, each with a merchant 2 km
north of it), every courier pinging every 5 s:

* ``idle``: couriers without a plan (what ``api_bench.py``'s pings are);
* ``riding``: each courier sent by a tick to collect an order at its merchant (the engine notes
  the ride), riding 1.2x the base model's time and pinging along it: most pings are under
  ``MIN_LEG_S`` of the base model from the ride's checkpoint and only read its note, about every
  twelfth one teaches (reads the tables, writes them and the checkpoint);
* ``learning_off``: the riding couriers with ``learning=False``.

After a warm-up pass with 5 couriers, the whole ping loop of each case is timed
(``perf_counter``), divided by the pings. Over Redis (``--redis-url``, a server it may flush)
each case starts from an empty database. To compare two versions of the engine, run the script
alternately with each on ``PYTHONPATH`` (it uses only what both have) and compare medians::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/ping_bench.py [--redis-url redis://127.0.0.1:6390/0]

Prints one JSON line: microseconds per ping for each case.
"""

from __future__ import annotations

import argparse
import json
import time

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, Location, Merchant
from dispatch.store import MemoryStore, Store

CENTRE = (52.5200, 13.4050)
PING_S = 5
SLOWER = 1.2


def _store(redis_url: str | None) -> Store:
    if redis_url is None:
        return MemoryStore("bench")
    import redis

    from dispatch.redis_store import RedisStore

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return RedisStore(redis_url, "bench")


def run(case: str, couriers: int, redis_url: str | None) -> float:
    """Microseconds per ping of ``case``."""
    # (supply admission off: it is not what is measured, and with it on some of these orders
    # were refused for no courier capacity, each with its own idle courier 2 km away)
    config = DispatchConfig(city="bench", learning=case != "learning_off", supply_admission=False)
    d = Dispatcher(store=_store(redis_url), config=config)
    starts: dict[str, Location] = {}
    for i in range(couriers):
        start = Location(CENTRE[0], CENTRE[1] + 0.0147 * i)  # 1 km apart, west to east
        starts[f"c{i}"] = start
        d.start_shift(f"c{i}", start, now=0, shift_end=24 * 3600)
        if case != "idle":
            shop = Location(start.lat + 0.018, start.lng)  # 2 km north
            area = DeliveryArea(radius_m=3000)
            d.add_merchant(Merchant(f"m{i}", shop, area, prep_s=300, promise_s=3600), now=0)
            d.place_order(f"o{i}", f"m{i}", Location(shop.lat + 0.009, shop.lng), now=0)
    rides: dict[str, tuple[Location, Location]] = {}
    if case != "idle":
        d.tick(now=0)
        if not all(d.route(cid).stops for cid in starts):
            raise RuntimeError("a courier was not sent to collect an order")
        rides = {cid: (start, d.route(cid).stops[0].location) for cid, start in starts.items()}
    else:
        rides = {cid: (start, Location(start.lat + 0.018, start.lng)) for cid, start in starts.items()}
    speed = 4.5
    base_s = {cid: d.travel.travel_s(a, b, speed) for cid, (a, b) in rides.items()}
    ride_s = max(base_s.values()) * SLOWER
    pings = 0
    began = time.perf_counter()
    t = PING_S
    while t < ride_s:
        for cid, (a, b) in rides.items():
            share = min(1.0, t / (base_s[cid] * SLOWER))
            here = Location(a.lat + (b.lat - a.lat) * share, a.lng + (b.lng - a.lng) * share)
            d.update_position(cid, here, now=t)
            pings += 1
        t += PING_S
    return (time.perf_counter() - began) / pings * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--couriers", type=int, default=50)
    parser.add_argument("--redis-url", default=None, help="time over this Redis (it is flushed)")
    args = parser.parse_args()
    cases = ("idle", "riding", "learning_off")
    for case in cases:  # a first pass warms up (imports, the Redis scripts, the connection)
        run(case, 5, args.redis_url)
    out = {case: round(run(case, args.couriers, args.redis_url), 1) for case in cases}
    print(json.dumps({"state": "redis" if args.redis_url else "memory", "us_per_ping": out}))


if __name__ == "__main__":
    main()
