"""Webhooks over Redis with two real worker processes, one of them killed with ``kill -9`` in
the middle of its deliveries: the other takes the lease, takes over what the dead one had read
(``XAUTOCLAIM``) and claimed, and every event is still delivered."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import ADMIN, API_KEYS, M1, NEAR_M1, auth
from tests.redis_server import RedisServer, free_port, stop_process
from tests.webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parents[2]


def _worker(port: int, redis_url: str) -> subprocess.Popen[bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DISPATCH_API_KEYS": API_KEYS,
        "DISPATCH_REDIS_URL": redis_url,
        "DISPATCH_LEASE_TTL_S": "1",
        "DISPATCH_WEBHOOK_ALLOW_PRIVATE": "1",
        "DISPATCH_WEBHOOK_CLAIM_S": "2",
        "DISPATCH_WEBHOOK_RETRY_BASE_S": "0.2",
        "DISPATCH_WEBHOOK_TIMEOUT_S": "2",
        "DISPATCH_WEBHOOK_CONCURRENCY": "4",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--port", str(port), "--tick-interval", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _call(port: int, method: str, path: str, **kwargs: Any) -> httpx.Response:
    return httpx.request(method, f"http://127.0.0.1:{port}{path}", timeout=10, **kwargs)


def _role(port: int) -> str:
    return str(_call(port, "GET", "/healthz").json()["dispatcher"])


def _wait(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_every_event_is_delivered_when_the_delivering_worker_is_killed(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    ports = [free_port(), free_port()]
    workers = [_worker(port, redis.url) for port in ports]
    # every answer takes a while, so the leader is killed with deliveries in flight
    with Receiver(lambda path, event_id, seen: (200, 0.05)) as receiver:
        try:
            for port in ports:
                _wait(
                    lambda p=port: _call(p, "GET", "/healthz").status_code == 200,
                    60,
                    "a worker did not start",
                )
            _wait(lambda: "leader" in {_role(p) for p in ports}, 30, "no worker took the lease")
            leader = next(i for i, p in enumerate(ports) if _role(p) == "leader")
            other = ports[1 - leader]
            admin = auth(ADMIN)
            merchant = {"id": "m-1", "location": M1, "delivery_area": {"radius_m": 3000}, "prep_minutes": 10}
            assert _call(other, "POST", "/v1/merchants", json=merchant, headers=admin).status_code == 201
            # supply admission is on: the 40 orders below need 14 couriers near m-1 (3 orders each)
            shift = {"location": M1, "duration_minutes": 240}
            for k in range(14):
                r = _call(other, "POST", f"/v1/couriers/c-{k}/shift/start", json=shift, headers=admin)
                assert r.status_code == 201, r.text
            before = _call(other, "GET", "/v1/events", headers=admin).json()["next_after"]
            r = _call(other, "POST", "/v1/webhooks", json={"url": receiver.url + "/all"}, headers=admin)
            assert r.status_code == 201, r.text
            for i in range(40):
                r = _call(
                    other,
                    "POST",
                    "/v1/orders",
                    json={"external_id": f"A-{i}", "merchant_id": "m-1", "dropoff": NEAR_M1},
                    headers={**admin, "Idempotency-Key": f"k-{i}"},
                )
                assert r.status_code == 201, r.text
            _wait(lambda: len(receiver.deliveries) >= 5, 30, "no deliveries started")
            os.kill(workers[leader].pid, signal.SIGKILL)  # mid-deliveries: 40 events at 4 at a time
            workers[leader].wait(timeout=10)
            served_when_killed = len({d.event["id"] for d in receiver.deliveries})
            assert served_when_killed < 40

            page = _call(other, "GET", "/v1/events", params={"after": before, "limit": 1000}, headers=admin)
            expected = {e["id"] for e in page.json()["events"]}
            assert len(expected) >= 40

            def all_delivered() -> bool:
                return {d.event["id"] for d in receiver.deliveries} >= expected

            _wait(all_delivered, 60, "not every event was delivered after the kill")
            # the survivor holds the lease (with a 1 s lease, a stall on a loaded machine can lose
            # it for a moment: it takes it back within a third of that)
            _wait(lambda: _role(other) == "leader", 10, "the surviving worker does not hold the lease")
            assert {d.event["id"] for d in receiver.deliveries} <= expected | {
                e["id"]
                for e in _call(
                    other, "GET", "/v1/events", params={"after": before, "limit": 1000}, headers=admin
                ).json()["events"]
            }
        finally:
            for worker in workers:
                if worker.poll() is None:
                    stop_process(worker)
            redis.stop()


def test_events_a_dead_consumer_read_are_taken_over_with_xautoclaim(redis_url: str) -> None:
    """A worker that read events from the group and died before scheduling their deliveries
    (no XACK) leaves them pending; the next reader takes them over once they are idle."""
    from api.webhooks.store import RedisWebhookStore
    from dispatch import DispatchConfig, Dispatcher, Location, Merchant
    from dispatch.models import DeliveryArea
    from dispatch.redis_store import RedisStore, connect

    client = connect(redis_url)
    webhooks = RedisWebhookStore(client, "test")
    webhooks.ensure_group()
    d = Dispatcher(store=RedisStore(client, "test"), config=DispatchConfig(city="test"))
    for i in range(3):
        d.add_merchant(Merchant(f"m-{i}", Location(52.52, 13.405), DeliveryArea(radius_m=3000)), now=0)
    assert webhooks.read_events("dead", 10, idle_ms=60_000) == [1, 2, 3]  # read, never acknowledged
    assert webhooks.read_events("alive", 10, idle_ms=60_000) == []  # not idle long enough yet
    time.sleep(0.05)
    assert webhooks.read_events("alive", 10, idle_ms=10) == [1, 2, 3]  # taken over
    webhooks.ack([1, 2, 3])
    time.sleep(0.05)
    assert webhooks.read_events("alive", 10, idle_ms=10) == []
