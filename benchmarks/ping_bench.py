"""What a position ping costs the engine: ``Dispatcher.update_position`` in process, per ping.

Three cases, each over ``--couriers`` couriers on shift, every courier pinging every 5 s:

* ``idle``: no ride noted (a courier waiting for work: what ``api_bench.py``'s random pings are);
* ``riding``: each courier on a ride noted at its departure (``note_departure``), 2 km long,
  riding 1.2x the base model's time and pinging along it: most pings are under ``MIN_LEG_S``
  of the base model from the ride's checkpoint and only read its note, about every twelfth one
  teaches (reads the tables, writes them and the checkpoint);
* ``learning_off``: the riding couriers with ``learning=False``.

After a warm-up pass with 5 couriers, the whole ping loop of each case is timed
(``perf_counter``), divided by the pings. Over Redis
(``--redis-url``, a server it may flush) each case starts from an empty database. To compare
two versions of the engine, run the script alternately with each on ``PYTHONPATH`` (it uses
only what both have) and compare medians::

    PYTHONPATH=$PWD .venv/bin/python benchmarks/ping_bench.py [--redis-url redis://127.0.0.1:6390/0]

Prints one JSON line: microseconds per ping for each case.
"""

from __future__ import annotations

import argparse
import json
import time

from dispatch import DispatchConfig, Dispatcher, Location
from dispatch.estimates import Leg, note_departure
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
    d = Dispatcher(
        store=_store(redis_url), config=DispatchConfig(city="bench", learning=case != "learning_off")
    )
    rides: dict[str, tuple[Location, Location]] = {}
    for i in range(couriers):
        lat, lng = CENTRE[0] + 0.0004 * (i % 50), CENTRE[1] + 0.0006 * (i // 50)
        start, end = Location(lat, lng), Location(lat + 0.018, lng)  # 2 km north
        rides[f"c{i}"] = (start, end)
        d.start_shift(f"c{i}", start, now=0, shift_end=24 * 3600)
    if case != "idle":
        note_departure(d, {cid: Leg(start, 0, end) for cid, (start, end) in rides.items()})
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
