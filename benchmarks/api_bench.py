"""HTTP API load benchmark: position updates and order creations against a trivial endpoint.

Starts ``dispatch serve`` (or ``python -m api.serve`` while the subcommand is not wired) with
uvicorn on a free loopback port, sets up a city over HTTP, then drives it from a separate
process: a minimal asyncio HTTP/1.1 client (stdlib, uvloop when installed) with keep-alive
connections. (An httpx client pool managed ~150 requests/s on this machine, far below the
server, so it would have measured itself.) Every phase is bounded in time; the run stops by
itself in under two minutes and prints JSON.

Phases, in order:

* closed loop (``--connections`` in flight): the trivial endpoint ``GET /healthz`` and position
  updates ``PUT /v1/couriers/{id}/position``, interleaved, ``--rounds`` rounds each (the median
  counts: the machine is shared and drifts);
* open loop at ``--rate`` requests/s for each: latency counts from when a request was due, so a
  stalled server is not hidden by a generator that waits for it (no coordinated omission);
* closed loop order creations ``POST /v1/orders`` (a new external id and idempotency key each),
  last, because the orders it leaves make later background ticks heavier.

Run: ``.venv/bin/python benchmarks/api_bench.py`` (``--help`` for the knobs). With
``--redis-url redis://...`` the server keeps its state in that Redis (flush it first: the city
is set up from scratch) and ``--workers N`` runs N uvicorn workers over it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CENTRE = (52.5200, 13.4050)  # Berlin
N_MERCHANTS = 20
N_COURIERS = 200


# -- the load generator (runs in its own process) -------------------------------------------


def _request(method: str, path: str, key: str | None, body: dict[str, Any] | None, extra: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if key:
        lines.append(f"Authorization: Bearer {key}")
    payload = b""
    if body is not None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    if extra:
        lines.append(extra)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


def _make_requests(kind: str, spec: dict[str, Any], worker: int) -> Callable[[int], bytes]:
    rng = random.Random(worker)
    if kind == "trivial":
        req = _request("GET", "/healthz", None, None)
        return lambda n: req
    if kind == "position":
        couriers: list[list[str]] = spec["couriers"]  # [id, key]

        def position(n: int) -> bytes:
            cid, key = couriers[rng.randrange(len(couriers))]
            lat = CENTRE[0] + rng.uniform(-0.03, 0.03)
            lng = CENTRE[1] + rng.uniform(-0.05, 0.05)
            return _request("PUT", f"/v1/couriers/{cid}/position", key, {"lat": lat, "lng": lng})

        return position
    if kind == "order":
        merchants: list[list[float | str]] = spec["merchants"]  # [id, lat, lng]
        app_key: str = spec["app_key"]
        tag = f"{spec['tag']}-{worker}"

        def order(n: int) -> bytes:
            mid, lat, lng = merchants[n % len(merchants)]
            ext = f"{tag}-{n}"
            body = {
                "external_id": ext,
                "merchant_id": mid,
                "dropoff": {
                    "lat": float(lat) + rng.uniform(-0.008, 0.008),
                    "lng": float(lng) + rng.uniform(-0.01, 0.01),
                },
            }
            return _request("POST", "/v1/orders", app_key, body, extra=f"Idempotency-Key: {ext}")

        return order
    raise ValueError(kind)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes) -> int:
    writer.write(data)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


def _summary(latencies: list[float], statuses: dict[int, int], seconds: float) -> dict[str, Any]:
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float:
        return round(latencies[min(n - 1, math.ceil(p * n) - 1)] * 1000, 2) if n else float("nan")

    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {
        "requests": n,
        "ok": ok,
        "errors": n - ok,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(seconds, 2),
        "rps": round(n / seconds, 1),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2) if n else float("nan"),
    }


async def _closed_loop(
    port: int, kind: str, spec: dict[str, Any], connections: int, seconds: float
) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    stop = time.perf_counter() + seconds

    async def worker(w: int) -> None:
        make = _make_requests(kind, spec, w)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = 0
        while time.perf_counter() < stop:
            data = make(n)
            n += 1
            t = time.perf_counter()
            status = await _exchange(reader, writer, data)
            latencies.append(time.perf_counter() - t)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(connections)))
    return _summary(latencies, statuses, time.perf_counter() - start)


async def _open_loop(
    port: int, kind: str, spec: dict[str, Any], rate: float, seconds: float
) -> dict[str, Any]:
    """Requests are due every 1/rate s; latency counts from when each was due."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    connections = 64
    make = _make_requests(kind, spec, 0)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            due, data = item
            status = await _exchange(reader, writer, data)
            latencies.append(time.perf_counter() - due)
            statuses[status] = statuses.get(status, 0) + 1
        writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.perf_counter()
    total = int(rate * seconds)
    for n in range(total):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, make(n)))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    result = _summary(latencies, statuses, time.perf_counter() - start)
    result["target_rps"] = rate
    return result


def _generate(job: dict[str, Any]) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    if job["mode"] == "closed":
        coro = _closed_loop(job["port"], job["kind"], job["spec"], job["connections"], job["seconds"])
    else:
        coro = _open_loop(job["port"], job["kind"], job["spec"], job["rate"], job["seconds"])
    print(json.dumps(asyncio.run(coro)))


def _run_generator(job: dict[str, Any]) -> dict[str, Any]:
    """Run one phase in a separate process (so the generator never shares the server's process)."""
    out = subprocess.run(
        [sys.executable, __file__, "--generate", json.dumps(job)], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


# -- the server and the city ------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve_command() -> list[str]:
    """``dispatch serve`` when the CLI has it, else the same function through ``python -m api.serve``."""
    probe = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "serve", "--help"], capture_output=True, cwd=ROOT, check=False
    )
    if probe.returncode == 0:
        return [sys.executable, "-m", "dispatch.cli", "serve"]
    return [sys.executable, "-m", "api.serve"]


def _http(port: int, method: str, path: str, key: str, body: dict[str, Any] | None = None) -> int:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    payload = json.dumps(body) if body is not None else None
    headers = {"Authorization": f"Bearer {key}"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    conn.request(method, path, payload, headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status


def _setup_city(port: int, admin: str, courier_keys: list[str], rng: random.Random) -> dict[str, Any]:
    merchants = []
    for i in range(N_MERCHANTS):
        lat, lng = CENTRE[0] + rng.uniform(-0.03, 0.03), CENTRE[1] + rng.uniform(-0.05, 0.05)
        body = {"id": f"m-{i}", "location": {"lat": lat, "lng": lng}, "delivery_area": {"radius_m": 4000}}
        assert _http(port, "POST", "/v1/merchants", admin, body) == 201
        merchants.append([f"m-{i}", lat, lng])
    couriers = []
    for i, key in enumerate(courier_keys):
        lat, lng = CENTRE[0] + rng.uniform(-0.03, 0.03), CENTRE[1] + rng.uniform(-0.05, 0.05)
        shift: dict[str, Any] = {"location": {"lat": lat, "lng": lng}, "duration_minutes": 480}
        assert _http(port, "POST", f"/v1/couriers/c-{i}/shift/start", key, shift) == 201
        couriers.append([f"c-{i}", key])
    return {"merchants": merchants, "couriers": couriers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each closed-loop phase")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of trivial vs position")
    parser.add_argument("--connections", type=int, default=32, help="connections of the closed loops")
    parser.add_argument("--rate", type=float, default=1000.0, help="requests/s of the open loops")
    parser.add_argument("--open-seconds", type=float, default=10.0, help="length of each open-loop phase")
    parser.add_argument("--tick-interval", type=float, default=2.0, help="server's background tick, seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--redis-url", default=None, help="serve over shared state in this Redis (empty)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn workers (more than 1 needs Redis)")
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        _generate(json.loads(args.generate))
        return 0

    rng = random.Random(args.seed)
    admin, app_key = f"admin-{secrets.token_hex(12)}", f"app-{secrets.token_hex(12)}"
    courier_keys = [f"courier-{i}-{secrets.token_hex(8)}" for i in range(N_COURIERS)]
    port = _free_port()
    command = _serve_command()
    with tempfile.TemporaryDirectory() as tmp:
        keys_file = Path(tmp) / "keys"
        keys_file.write_text(
            "\n".join(
                [f"{admin}=admin", f"{app_key}=app"]
                + [f"{k}=courier:c-{i}" for i, k in enumerate(courier_keys)]
            )
        )
        env = {
            k: v for k, v in os.environ.items() if k not in ("DISPATCH_API_KEYS", "DISPATCH_API_KEYS_FILE")
        }
        env.pop("DISPATCH_REDIS_URL", None)
        env.update(DISPATCH_API_KEYS_FILE=str(keys_file), PYTHONPATH=str(ROOT), DISPATCH_CITY="bench")
        if args.redis_url:
            env["DISPATCH_REDIS_URL"] = args.redis_url
        server = subprocess.Popen(
            [
                *command,
                "--port",
                str(port),
                "--tick-interval",
                str(args.tick_interval),
                "--log-level",
                "warning",
                *(["--workers", str(args.workers)] if args.workers != 1 else []),
            ],
            cwd=ROOT,
            env=env,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("the server did not start") from None
                    time.sleep(0.1)
            city = _setup_city(port, admin, courier_keys, rng)
            spec = {**city, "app_key": app_key, "tag": f"b{args.seed}"}
            base = {"port": port, "spec": spec}
            started = time.monotonic()

            def closed(kind: str, seconds: float) -> dict[str, Any]:
                job = {
                    **base,
                    "mode": "closed",
                    "kind": kind,
                    "connections": args.connections,
                    "seconds": seconds,
                }
                return _run_generator(job)

            closed("trivial", 1.0)  # warm up both paths
            closed("position", 1.0)
            rounds: dict[str, list[dict[str, Any]]] = {"trivial": [], "position": []}
            for _ in range(args.rounds):
                for kind in ("trivial", "position"):
                    rounds[kind].append(closed(kind, args.seconds))
            open_loop = {
                kind: _run_generator(
                    {**base, "mode": "open", "kind": kind, "rate": args.rate, "seconds": args.open_seconds}
                )
                for kind in ("position", "trivial")
            }
            orders = closed("order", args.seconds)
            elapsed = time.monotonic() - started
        finally:
            server.terminate()
            server.wait(timeout=30)

    def median(kind: str, field: str) -> float:
        return float(statistics.median(r[field] for r in rounds[kind]))

    trivial_rps, position_rps = median("trivial", "rps"), median("position", "rps")
    ratio = position_rps / trivial_rps
    at_rate = open_loop["position"]
    report = {
        "benchmark": "api_bench",
        "server": " ".join(Path(c).name if i == 0 else c for i, c in enumerate(command)),
        "state": "redis" if args.redis_url else "memory",
        "workers": args.workers,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "setup": {
            "merchants": N_MERCHANTS,
            "couriers_on_shift": N_COURIERS,
            "connections": args.connections,
            "tick_interval_s": args.tick_interval,
            "seed": args.seed,
        },
        "closed_loop_median": {
            "trivial_healthz": {
                "rps": trivial_rps,
                "p50_ms": median("trivial", "p50_ms"),
                "p99_ms": median("trivial", "p99_ms"),
            },
            "position_update": {
                "rps": position_rps,
                "p50_ms": median("position", "p50_ms"),
                "p99_ms": median("position", "p99_ms"),
            },
            "position_vs_trivial": round(ratio, 3),
        },
        "closed_loop_rounds": rounds,
        "order_creation": orders,
        "open_loop": open_loop,
        "targets": {
            "position_at_least_70pct_of_trivial": ratio >= 0.70,
            "position_p99_at_most_50ms_at_rate": at_rate["p99_ms"] <= 50.0 and at_rate["errors"] == 0,
            "rate": args.rate,
        },
        "load_seconds": round(elapsed, 1),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
