"""Shared state in Redis vs the embedded in-memory state, in the same run.

1. **Tick**: one dispatch tick over 2,000 open orders and 4,000 couriers (the scenario of
   ``tick_bench.py``, built by its own builder), with the state in a ``MemoryStore`` and in a
   ``RedisStore``: median of ``--reps`` ticks, each on the same state (a deep copy for memory; the
   Redis keys restored with DUMP/RESTORE), the share of the tick spent in store calls, and
   whether both made the same decisions.
2. **API load**: ``api_bench.py`` against in-memory state (1 worker), Redis with 1 worker and
   Redis with 2 workers: throughput and p50/p99 of position updates, the trivial endpoint and
   order creations.

Each part starts its own redis-server (AOF on, ``--appendfsync`` as given, default ``always``: what
the README recommends) on a free port in a temporary directory. Prints one JSON document.

    .venv/bin/python benchmarks/redis_bench.py                 # both parts, ~6 minutes
    .venv/bin/python benchmarks/redis_bench.py --skip-api      # the tick only
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from tick_bench import build  # noqa: E402

from dispatch import Dispatcher  # noqa: E402
from dispatch.redis_store import RedisStore  # noqa: E402
from tests.redis_server import RedisServer  # noqa: E402


class _Timed:
    """A store proxy that adds up the seconds spent in store calls."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        return timed


def _decisions(result: Any) -> list[tuple[str, tuple[str, ...]]]:
    return sorted((a.courier_id, a.order_ids) for a in result.assignments)


def _tick(d: Dispatcher, now: int) -> tuple[float, float, Any]:
    timed = _Timed(d.store)
    d.store = timed  # type: ignore[assignment]
    gc.collect()
    t0 = time.perf_counter()
    result = d.tick(now)
    total = time.perf_counter() - t0
    d.store = timed._store
    return total, timed.seconds, result


def _summary(runs: list[tuple[float, float, Any]]) -> dict[str, Any]:
    return {
        "tick_s_median": round(statistics.median(r[0] for r in runs), 3),
        "tick_s_all": [round(r[0], 3) for r in runs],
        "store_calls_s_median": round(statistics.median(r[1] for r in runs), 3),
        "orders_assigned": sum(len(a.order_ids) for a in runs[-1][2].assignments),
    }


def tick_part(n_orders: int, n_couriers: int, reps: int, seed: int, appendfsync: str) -> dict[str, Any]:
    now = 3600
    t0 = time.perf_counter()
    memory = build(n_orders, n_couriers, seed)
    memory_build_s = time.perf_counter() - t0
    memory_runs = []
    for _ in range(reps):
        memory_runs.append(_tick(copy.deepcopy(memory), now))

    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp), appendfsync=appendfsync)
        server.start()
        try:
            store = RedisStore(server.url, "bench", timeout_s=30)
            t0 = time.perf_counter()
            shared = build(n_orders, n_couriers, seed, store=store)
            redis_build_s = time.perf_counter() - t0
            raw = redis.Redis.from_url(server.url)
            saved = {key: raw.dump(key) for key in raw.keys("*")}

            def restore() -> None:
                raw.flushall()
                for key, value in saved.items():
                    raw.restore(key, 0, value)

            redis_runs = []
            for _ in range(reps):
                restore()
                redis_runs.append(_tick(shared, now))
            keys = len(saved)
            used_mb = round(raw.info("memory")["used_memory"] / 2**20, 1)
        finally:
            server.stop()
    mem, red = _summary(memory_runs), _summary(redis_runs)
    return {
        "orders": n_orders,
        "couriers": n_couriers,
        "reps": reps,
        "appendfsync": appendfsync,
        "memory": {**mem, "build_s": round(memory_build_s, 1)},
        "redis": {**red, "build_s": round(redis_build_s, 1), "keys": keys, "used_memory_mb": used_mb},
        "redis_over_memory_tick": round(red["tick_s_median"] / max(mem["tick_s_median"], 1e-9), 2),
        "same_decisions": _decisions(memory_runs[-1][2]) == _decisions(redis_runs[-1][2]),
    }


def api_part(args: argparse.Namespace) -> dict[str, Any]:
    knobs = ["--seconds", str(args.api_seconds), "--rounds", str(args.api_rounds)]
    knobs += ["--open-seconds", str(args.api_seconds), "--rate", str(args.rate)]
    out: dict[str, Any] = {}
    for label, workers, shared in (
        ("memory_1_worker", 1, False),
        ("redis_1_worker", 1, True),
        ("redis_2_workers", 2, True),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            server = RedisServer(Path(tmp), appendfsync=args.appendfsync) if shared else None
            if server is not None:
                server.start()
            try:
                command = [sys.executable, str(ROOT / "benchmarks" / "api_bench.py"), *knobs]
                if server is not None:
                    command += ["--redis-url", server.url, "--workers", str(workers)]
                run = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
            finally:
                if server is not None:
                    server.stop()
        report = json.loads(run.stdout)
        closed = report["closed_loop_median"]
        out[label] = {
            "position_update": closed["position_update"],
            "trivial_healthz": closed["trivial_healthz"],
            "order_creation": {k: report["order_creation"][k] for k in ("rps", "p50_ms", "p99_ms", "errors")},
            "position_open_loop": {
                k: report["open_loop"]["position"][k]
                for k in ("target_rps", "rps", "p50_ms", "p99_ms", "errors")
            },
        }
    base = out["memory_1_worker"]
    for label in ("redis_1_worker", "redis_2_workers"):
        out[label]["vs_memory"] = {
            "position_rps": round(out[label]["position_update"]["rps"] / base["position_update"]["rps"], 2),
            "order_rps": round(out[label]["order_creation"]["rps"] / base["order_creation"]["rps"], 2),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="2000x4000", help="ORDERSxCOURIERS of the tick")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--appendfsync", choices=["always", "everysec", "no"], default="always")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--skip-tick", action="store_true")
    parser.add_argument("--api-seconds", type=float, default=5.0)
    parser.add_argument("--api-rounds", type=int, default=3)
    parser.add_argument("--rate", type=float, default=500.0, help="open-loop position updates per second")
    args = parser.parse_args()
    report: dict[str, Any] = {
        "benchmark": "redis_bench",
        "python": platform.python_version(),
        "redis_server": subprocess.run(
            ["redis-server", "--version"], capture_output=True, text=True
        ).stdout.split()[2],
    }
    if not args.skip_tick:
        n, m = (int(x) for x in args.size.lower().split("x"))
        report["tick"] = tick_part(n, m, args.reps, args.seed, args.appendfsync)
        print(json.dumps(report["tick"]), file=sys.stderr)
    if not args.skip_api:
        report["api"] = api_part(args)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
