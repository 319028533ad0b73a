"""Webhook delivery: latency at a steady event rate, and what webhooks cost order creation.

1. Events are written at ``--rate`` per second (a merchant update each: one event, no dispatch
   work) for ``--seconds``, over in-memory state and over Redis (a redis-server started here),
   with one endpoint on a loopback HTTP receiver; the latency of each event is from its write
   returning to the receiver having served its POST (p50, p99, max), and every event must arrive.
   The first second of events warms up and is not counted.
2. Orders are created over HTTP (``POST /v1/orders`` to a ``dispatch serve`` process) with webhooks
   off (no endpoint) and on (one endpoint receiving every event, delivered by the running loop),
   in alternating rounds of the same run; the ratio of the median per-order times is the cost.
   The server's CPU time per order (from /proc, the deliveries of the round included) is
   reported too: on a shared machine it moves less than wall time.
3. CPU per POST of the service's sender (``api/webhooks/sender.py``) and of httpx, each sending
   the same signed bodies one after another to the same receiver, in alternating rounds.

Prints JSON. Seeded; the machine is shared, so compare within one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
            if at and event_id != "None":  # not the start-up check's empty POST
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


def _cpu_s(pid: int) -> float:
    """CPU seconds a process has run so far, all its threads (Linux schedstat: nanoseconds)."""
    total_ns = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):  # a thread that just ended
            total_ns += int((task / "schedstat").read_text().split()[0])
    return total_ns / 1e9


def _order_cost(orders_per_round: int, rounds: int) -> dict[str, Any]:
    """Median seconds per order with webhooks off and on, rounds alternating, against a real
    ``dispatch serve`` process (its delivery loop shares the process with the requests)."""
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DISPATCH_API_KEYS": f"{ADMIN}=admin,{APP}=app",
        "DISPATCH_WEBHOOK_ALLOW_PRIVATE": "1",
        # this city has no couriers: supply admission (on by default) would refuse every order;
        # what is measured is the cost webhooks add to an order, as recorded before it was on
        "DISPATCH_SUPPLY_ADMISSION": "false",
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
    cpu_per_order: dict[str, list[float]] = {"off": [], "on": []}
    #: what the receiver (on the same cores, in a real deployment elsewhere) spends per delivery
    receiver_ms: list[float] = []
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
                cpu_start = _cpu_s(server.pid)
                receiver_start = _cpu_s(receiver.process.pid)
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
                if hook is not None:
                    # every order.placed delivered before the next round, which then pays for none
                    deadline = time.monotonic() + 60
                    while receiver.count() - served_before < orders_per_round:
                        assert time.monotonic() < deadline, "deliveries did not catch up"
                        time.sleep(0.01)
                cpu = _cpu_s(server.pid) - cpu_start  # the round's deliveries included
                receiver_cpu = _cpu_s(receiver.process.pid) - receiver_start
                if hook is not None:
                    client.delete(f"/v1/webhooks/{hook}", headers=admin)
                if r > 0:
                    per_order[mode].append(elapsed / orders_per_round)
                    cpu_per_order[mode].append(cpu / orders_per_round)
                    if mode == "on":
                        receiver_ms.append(receiver_cpu * 1000 / orders_per_round)
            delivered = receiver.count()
    finally:
        stop_process(server)
    off, on = statistics.median(per_order["off"]), statistics.median(per_order["on"])
    cpu_off, cpu_on = statistics.median(cpu_per_order["off"]), statistics.median(cpu_per_order["on"])
    pairs = [b / a for a, b in zip(per_order["off"], per_order["on"], strict=True)]
    cpu_pairs = [b / a for a, b in zip(cpu_per_order["off"], cpu_per_order["on"], strict=True)]
    return {
        "orders_per_round": orders_per_round,
        "rounds_each": rounds,
        "ms_per_order_off": round(off * 1000, 3),
        "ms_per_order_on": round(on * 1000, 3),
        "on_over_off": round(on / off, 3),
        # each "on" round over the "off" round right after it: pairs see the same load, so their
        # median moves less than the ratio of the medians when the machine's load changes
        "on_over_off_paired_median": round(statistics.median(pairs), 3),
        "on_over_off_by_round": [round(x, 3) for x in pairs],
        "server_cpu_ms_per_order_off": round(cpu_off * 1000, 3),
        "server_cpu_ms_per_order_on": round(cpu_on * 1000, 3),
        "server_cpu_on_over_off": round(cpu_on / cpu_off, 3),
        "server_cpu_on_over_off_paired_median": round(statistics.median(cpu_pairs), 3),
        "webhook_deliveries": delivered,
        "receiver_cpu_ms_per_delivery": round(statistics.median(receiver_ms), 3),
    }


async def _cpu_per_post(posts: int, rounds: int) -> dict[str, Any]:
    """CPU milliseconds per sequential POST: the service's sender vs httpx (the one it replaced),
    the same signed event bodies to the same receiver, rounds alternating."""
    from api.webhooks.sender import Sender
    from api.webhooks.signing import HEADER, sign

    bodies = [
        json.dumps({"id": f"bench-{i}", "kind": "order.placed", "seq": i}).encode() for i in range(posts)
    ]

    def headers(body: bytes) -> list[tuple[str, str]]:
        return [("Content-Type", "application/json"), (HEADER, sign("whsec_bench", int(time.time()), body))]

    cpu_ms: dict[str, list[float]] = {"sender": [], "httpx": []}
    with RemoteReceiver() as receiver:
        url = receiver.url + "/cpu"
        async with (
            Sender(timeout_s=10, allow_private=True) as sender,
            httpx.AsyncClient(timeout=10, follow_redirects=False) as client,
        ):
            for r in range(rounds * 2 + 2):  # the first two rounds warm both up
                name = "sender" if r % 2 == 0 else "httpx"
                start = time.process_time()
                for body in bodies:
                    if name == "sender":
                        status = await sender.post(url, body, headers(body))
                    else:
                        status = (await client.post(url, content=body, headers=headers(body))).status_code
                    assert status == 200
                if r >= 2:
                    cpu_ms[name].append((time.process_time() - start) * 1000 / posts)
    new, old = statistics.median(cpu_ms["sender"]), statistics.median(cpu_ms["httpx"])
    return {
        "posts_per_round": posts,
        "rounds_each": rounds,
        "sender_cpu_ms_per_post": round(new, 3),
        "httpx_cpu_ms_per_post": round(old, 3),
        "sender_by_round": [round(x, 3) for x in cpu_ms["sender"]],
        "httpx_by_round": [round(x, 3) for x in cpu_ms["httpx"]],
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    from dispatch.redis_store import RedisStore, connect

    parts = set(args.parts)
    result: dict[str, Any] = {
        "python": platform.python_version(),
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "concurrency": args.concurrency,
    }
    if "latency" in parts:
        result["latency"] = {"memory": await _latency(None, args.rate, args.seconds, args.concurrency)}
        with tempfile.TemporaryDirectory(prefix="webhook-bench-") as tmp:
            server = RedisServer(Path(tmp) / "redis")
            server.start()
            try:
                store = RedisStore(connect(server.url), "bench")
                result["latency"]["redis"] = await _latency(store, args.rate, args.seconds, args.concurrency)
            finally:
                server.stop()
    if "cpu" in parts:
        result["cpu_per_post"] = await _cpu_per_post(args.posts, args.rounds)
    if "orders" in parts:
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
    parser.add_argument("--posts", type=int, default=1000, help="POSTs per round (CPU per POST)")
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("latency", "cpu", "orders"),
        default=["latency", "cpu", "orders"],
        help="what to measure (all by default)",
    )
    print(json.dumps(asyncio.run(main_async(parser.parse_args())), indent=2))


if __name__ == "__main__":
    main()
