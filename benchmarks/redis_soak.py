"""A longer soak of the Redis fault test: rounds of ``kill -9`` under a steady load, then the checks.

Two ``dispatch serve`` processes share one redis-server (AOF, ``appendfsync always``); a client
thread creates orders and sends position pings to whichever is alive, retrying as a client does.
Each round kills an API worker that does not hold the lease (a new one joins), then the lease
holder (a new one joins; the time until another process holds the lease is measured), then
redis-server itself, which restarts on its AOF. At the end every acknowledged order must exist
once, be assigned at most once and sit in exactly its courier's plan (the checks of
``tests/dispatch/test_redis_faults.py``). Prints JSON; exits 1 if a check fails.

    .venv/bin/python benchmarks/redis_soak.py --rounds 10 --settle 3
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dispatch.redis_store import RedisStore  # noqa: E402
from tests.dispatch.test_redis_faults import CITY, Load, Server, check_state, holder_pid, setup_city, wait_for  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load between faults")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    report: dict[str, Any] = {"benchmark": "redis_soak", "rounds": args.rounds, "settle_s": args.settle}
    takeovers: list[float] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        redis_server = RedisServer(tmp / "redis")
        redis_server.start()
        url = redis_server.url
        servers = [Server(url, tmp / "serve-0.log"), Server(url, tmp / "serve-1.log")]
        load: Load | None = None
        try:
            for s in servers:
                s.wait_ready()
            merchants = setup_city(servers[0].port, random.Random(args.seed))
            wait_for("a lease holder", lambda: holder_pid(url) is not None, 15)
            load = Load(servers, merchants)
            client = threading.Thread(target=load.run, args=(random.Random(args.seed + 1),), daemon=True)
            client.start()
            n = len(servers)
            for _ in range(args.rounds):
                time.sleep(args.settle)
                holder = holder_pid(url)
                victim = next(s for s in servers if s.alive and s.process.pid != holder)
                victim.kill()
                servers.append(Server(url, tmp / f"serve-{n}.log"))
                n += 1
                servers[-1].wait_ready()
                time.sleep(args.settle)
                leader = next(s for s in servers if s.alive and s.process.pid == holder_pid(url))
                leader.kill()
                killed_at = time.monotonic()
                alive = {s.process.pid for s in servers if s.alive}
                wait_for("a new lease holder", lambda: holder_pid(url) in alive, 30)  # noqa: B023
                takeovers.append(time.monotonic() - killed_at)
                servers.append(Server(url, tmp / f"serve-{n}.log"))
                n += 1
                servers[-1].wait_ready()
                time.sleep(args.settle)
                redis_server.kill()
                time.sleep(0.5)
                redis_server.start()
            time.sleep(args.settle)
            load.stop.set()
            client.join(timeout=60)
            time.sleep(1.0)
            for s in servers:
                s.stop()
            counts = check_state(RedisStore(url, CITY), load.acknowledged)
            report.update(ok=not load.errors, checks="passed", **counts)
        except AssertionError as exc:
            report.update(ok=False, checks=f"FAILED: {exc}")
        finally:
            for s in servers:
                s.stop()
            redis_server.stop()
    if load is not None:
        report.update(
            orders_sent=load.sent,
            orders_acknowledged=len(load.acknowledged),
            pings=load.pings,
            client_retries=dict(load.failures),
            client_errors=load.errors[:10],
        )
    report["lease_takeover_s"] = {
        "median": round(statistics.median(takeovers), 2) if takeovers else None,
        "max": round(max(takeovers), 2) if takeovers else None,
        "all": [round(t, 2) for t in takeovers],
    }
    report["seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, indent=2))
    return 0 if report.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
