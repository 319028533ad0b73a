"""Webhook delivery: latency at a steady event rate, and what webhooks cost order creation.

1. Events are written at ``--rate`` per second (a merchant update each: one event, no dispatch
   work) for ``--seconds``, over in-memory state and over Redis (a redis-server started here),
   with one endpoint on a loopback HTTP receiver; the latency of each event is from its write
   returning to the receiver having served its POST (p50, p99, max), and every event must arrive.
   The first second of events warms up and is not counted.
2. Orders are created over HTTP (``POST /v1/orders`` to a ``dispatch serve`` process) with webhooks
   off (no endpoint) and on (one endpoint receiving every event, delivered by the running loop),
   in alternating rounds of the same run; the ratio of the median per-order times is the cost.

Prints JSON. Seeded; the machine is shared, so compare within one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api import Settings, create_app
from dispatch import DeliveryArea, DispatchConfig, Dispatcher, Location, Merchant
from tests.redis_server import RedisServer, free_port, stop_process

ADMIN = "bench-admin-key-000000001"
APP = "bench-app-key-00000000001"


class RemoteReceiver:
    """The loopback receiver in a process of its own (``python -m tests.webhook_receiver``, on
    uvicorn), so that it takes no CPU from the sender's process. ``served()`` reads what it
    has answered."""

    def __enter__(self) -> RemoteReceiver:
        self._dir = tempfile.TemporaryDirectory(prefix="webhook-receiver-")
        self.log = Path(self._dir.name) / "served.log"
        self.log.touch()
        root = Path(__file__).resolve().parents[1]
        port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.webhook_receiver", str(self.log), str(port)], cwd=root
        )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(self.url + "/warm-up", content=b"{}", timeout=5)
                return self
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        stop_process(self.process)  # type: ignore[arg-type]
        self._dir.cleanup()

    def served(self) -> dict[str, float]:
        """Event id -> when it was first served (time.perf_counter: one clock for all processes)."""
        first: dict[str, float] = {}
        for line in self.log.read_text().splitlines():
            event_id, _, at = line.partition(" ")
            if at:
                first.setdefault(event_id, float(at))
        return first

    def count(self) -> int:
        with self.log.open() as lines:
            return sum(1 for line in lines if not line.startswith("None "))


def _settings(**extra: Any) -> Settings:
    return Settings(
        api_keys=f"{ADMIN}=admin,{APP}=app",
        tick_interval_s=0,
        webhook_allow_private=True,
        **extra,
    )


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _latency(store: Any, rate: float, seconds: float, concurrency: int = 16) -> dict[str, Any]:
    dispatcher = Dispatcher(store=store, config=DispatchConfig(city="bench"))
    app = create_app(_settings(webhook_poll_s=0.005, webhook_concurrency=concurrency), dispatcher=dispatcher)
    runtime = app.state.runtime
    merchant = Merchant("m-1", Location(52.52, 13.405), DeliveryArea(radius_m=3000))
    await runtime.run(lambda: dispatcher.add_merchant(merchant, int(time.time())))
    written: dict[str, float] = {}
    with RemoteReceiver() as receiver:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench"
        ) as client:
            r = await client.post(
                "/v1/webhooks",
                json={"url": receiver.url + "/all"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            )
            assert r.status_code == 201, r.text
        await runtime.start()
        try:
            warm = int(rate)  # the first second warms the loop, the client and the receiver up
            n = warm + int(rate * seconds)
            start = time.perf_counter()
            for i in range(n):
                due = start + i / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                updated = Merchant(
                    "m-1", Location(52.52, 13.405), DeliveryArea(radius_m=3000), prep_s=600 + i % 60
                )

                def write(m: Merchant = updated) -> int:
                    dispatcher.update_merchant(m, int(time.time()))
                    return runtime.event_count()

                seq = await runtime.run(write)
                if i >= warm:
                    written[f"bench-{seq}"] = time.perf_counter()
            achieved = n / (time.perf_counter() - start)
            n = len(written) + warm
            deadline = time.monotonic() + 60
            while len(receiver.served()) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await runtime.stop()
        served = receiver.served()
    latencies_ms = [(served[e] - t) * 1000 for e, t in written.items() if e in served]
    if os.environ.get("WEBHOOK_BENCH_TRACE"):
        print([round(x) for x in latencies_ms[::10]], file=sys.stderr)
    return {
        "events": len(written),
        "delivered": len(latencies_ms),
        "rate_per_s": round(achieved, 1),
        "p50_ms": round(_quantile(latencies_ms, 0.5), 2),
        "p99_ms": round(_quantile(latencies_ms, 0.99), 2),
        "max_ms": round(max(latencies_ms), 2),
    }


def _order_cost(orders_per_round: int, rounds: int) -> dict[str, Any]:
    """Median seconds per order with webhooks off and on, rounds alternating, against a real
    ``dispatch serve`` process (its delivery loop shares the process with the requests)."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DISPATCH_API_KEYS": f"{ADMIN}=admin,{APP}=app",
        "DISPATCH_WEBHOOK_ALLOW_PRIVATE": "1",
    }
    root = Path(__file__).resolve().parents[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--port", str(port), "--tick-interval", "0"],
        env=env,
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    per_order: dict[str, list[float]] = {"off": [], "on": []}
    placed = 0
    admin = {"Authorization": f"Bearer {ADMIN}"}
    try:
        with (
            RemoteReceiver() as receiver,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client,
        ):
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "dispatch serve did not start"
                time.sleep(0.1)
            for k in range(20):
                merchant = {
                    "id": f"m-{k}",
                    "location": {"lat": 52.52 + k * 0.001, "lng": 13.405},
                    "delivery_area": {"radius_m": 3000},
                }
                assert client.post("/v1/merchants", json=merchant, headers=admin).status_code == 201
            for r in range(rounds * 2 + 1):
                mode = "on" if r % 2 else "off"  # the first "off" round warms the service up
                hook = None
                if mode == "on":
                    hook = client.post(
                        "/v1/webhooks", json={"url": receiver.url + "/all"}, headers=admin
                    ).json()["id"]
                served_before = receiver.count()
                start = time.perf_counter()
                for _ in range(orders_per_round):
                    placed += 1
                    resp = client.post(
                        "/v1/orders",
                        json={
                            "external_id": f"o-{placed}",
                            "merchant_id": f"m-{placed % 20}",
                            "dropoff": {"lat": 52.525, "lng": 13.41},
                        },
                        headers={"Authorization": f"Bearer {APP}", "Idempotency-Key": f"k-{placed}"},
                    )
                    assert resp.status_code == 201, resp.text
                elapsed = time.perf_counter() - start
                if r > 0:
                    per_order[mode].append(elapsed / orders_per_round)
                if hook is not None:
                    # every order.placed delivered before the next round, which then pays for none
                    deadline = time.monotonic() + 60
                    while receiver.count() - served_before < orders_per_round:
                        assert time.monotonic() < deadline, "deliveries did not catch up"
                        time.sleep(0.01)
                    client.delete(f"/v1/webhooks/{hook}", headers=admin)
            delivered = receiver.count()
    finally:
        stop_process(server)
    off, on = statistics.median(per_order["off"]), statistics.median(per_order["on"])
    return {
        "orders_per_round": orders_per_round,
        "rounds_each": rounds,
        "ms_per_order_off": round(off * 1000, 3),
        "ms_per_order_on": round(on * 1000, 3),
        "on_over_off": round(on / off, 3),
        "webhook_deliveries": delivered,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from dispatch.redis_store import RedisStore, connect

    result: dict[str, Any] = {
        "python": platform.python_version(),
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "concurrency": args.concurrency,
        "latency": {"memory": await _latency(None, args.rate, args.seconds, args.concurrency)},
    }
    with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        try:
            from dispatch.redis_store import RedisStore as _RS

            store: _RS = RedisStore(connect(server.url), "bench")
            result["latency"]["redis"] = await _latency(store, args.rate, args.seconds, args.concurrency)
        finally:
            server.stop()
    result["order_creation"] = _order_cost(args.orders, args.rounds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0, help="events written per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to write them")
    parser.add_argument("--concurrency", type=int, default=16, help="DISPATCH_WEBHOOK_CONCURRENCY")
    parser.add_argument("--orders", type=int, default=300, help="orders per round (order creation)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each mode, alternating")
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
