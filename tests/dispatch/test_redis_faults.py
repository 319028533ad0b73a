"""Fault tests with real processes: ``dispatch serve`` processes sharing one redis-server, under
a steady load of order creations and position pings, while we ``kill -9`` an API worker, the
process holding the dispatcher lease, and redis-server itself (AOF on, ``appendfsync always``).

The servers are separate single-worker processes on their own ports (rather than one
``--workers 2``), so that the test can kill exactly the worker it means to and send the load to
the ones alive; ``--workers`` runs the same app the same way (see the last test).

Afterwards every order acknowledged with 201 exists once, is assigned at most once (or still
waits), sits in exactly its courier's plan, and no order is in two plans. Bounded: ~30 s.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dispatch import OrderStatus
from dispatch.redis_store import Lease, RedisStore, connect
from tests.redis_server import RedisServer, free_port, stop_process

ROOT = Path(__file__).resolve().parents[2]
ADMIN = "admin-fault-000000000001"
APP = "app-fault-00000000000001"
CITY = "fault"
CENTRE = (52.5200, 13.4050)
N_COURIERS = 30


def _keys() -> str:
    couriers = [f"courier-fault-{i:010d}=courier:c-{i}" for i in range(N_COURIERS)]
    return ",".join([f"{ADMIN}=admin", f"{APP}=app", *couriers])


def _call(
    port: int, method: str, path: str, key: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        hdrs = {"Authorization": f"Bearer {key}", **(headers or {})}
        payload = None
        if body is not None:
            payload = json.dumps(body)
            hdrs["Content-Type"] = "application/json"
        conn.request(method, path, payload, hdrs)
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else None)
    finally:
        conn.close()


class Server:
    """One ``dispatch serve`` process (one uvicorn worker) over the shared Redis."""

    def __init__(self, redis_url: str, log: Path) -> None:
        self.port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")},
            "DISPATCH_API_KEYS": _keys(),
            "DISPATCH_REDIS_URL": redis_url,
            "DISPATCH_CITY": CITY,
            "DISPATCH_LEASE_TTL_S": "1.5",
            "DISPATCH_REDIS_TIMEOUT_S": "1",
            # the load places orders as fast as it can and no courier ever delivers one: with
            # supply admission (on by default) the fleet is soon full and orders are refused,
            # which these tests of faults would count as errors
            "DISPATCH_SUPPLY_ADMISSION": "false",
            "PYTHONPATH": str(ROOT),
        }
        self.log = log.open("ab")
        command = [sys.executable, "-m", "dispatch.cli", "serve", "--port", str(self.port)]
        command += ["--tick-interval", "0.3", "--log-level", "warning"]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=self.log)

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dispatch serve exited with {self.process.returncode}")
            try:
                if _call(self.port, "GET", "/healthz", ADMIN)[0] == 200:
                    return
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.1)
        raise RuntimeError("dispatch serve did not answer /healthz")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """``kill -9``: no shutdown, the lease is not released, requests in flight are cut."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.log.close()

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


@dataclass
class Load:
    """Order creations and position pings against whichever servers are alive, as clients retry."""

    servers: list[Server]
    merchants: list[tuple[str, float, float]]
    acknowledged: set[str] = field(default_factory=set)
    sent: int = 0
    pings: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def _send(
        self, method: str, path: str, key: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Send until a definite answer, to any live server (a retry may land on another one)."""
        for attempt in range(60):
            live = [s for s in self.servers if s.alive]
            server = live[attempt % len(live)] if live else None
            try:
                if server is not None:
                    status, data = _call(server.port, method, path, key, body, headers)
                    if status not in (503, 409) or (status == 409 and data.get("code") == "duplicate-id"):
                        return status, data
                    self.failures[f"{status} {data.get('code')}"] += 1
            except (OSError, http.client.HTTPException) as exc:
                # a worker killed mid-answer cuts the body (IncompleteRead) or the status line
                # (RemoteDisconnected): no definite answer, so the client retries as a real one would
                self.failures[type(exc).__name__] += 1
            time.sleep(0.1)
        return 0, None

    def run(self, rng: random.Random) -> None:
        try:
            self._run(rng)
        except Exception as exc:  # recorded, so the final check names why the load stopped
            self.errors.append(f"load thread died: {exc!r}")
            raise

    def _run(self, rng: random.Random) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            mid, lat, lng = self.merchants[n % len(self.merchants)]
            ext = f"F-{n}"
            body = {
                "external_id": ext,
                "merchant_id": mid,
                "dropoff": {"lat": lat + rng.uniform(-0.005, 0.005), "lng": lng + rng.uniform(-0.008, 0.008)},
            }
            self.sent += 1
            status, data = self._send("POST", "/v1/orders", APP, body, {"Idempotency-Key": f"idem-{ext}"})
            if status == 201:
                self.acknowledged.add(data["id"])
            elif status not in (409, 0):
                self.errors.append(f"order {ext}: {status} {data}")
            c = rng.randrange(N_COURIERS)
            ping = {
                "lat": CENTRE[0] + rng.uniform(-0.01, 0.01),
                "lng": CENTRE[1] + rng.uniform(-0.015, 0.015),
            }
            status, data = self._send("PUT", f"/v1/couriers/c-{c}/position", ADMIN, ping)
            if status == 204:
                self.pings += 1
            elif status != 0:
                self.errors.append(f"ping c-{c}: {status} {data}")


def holder_pid(url: str) -> int | None:
    holder = Lease(connect(url), CITY).holder()
    return int(holder[1].rsplit(":", 1)[1]) if holder else None


def _answers(port: int) -> bool:
    try:
        return _call(port, "GET", "/healthz", ADMIN)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def wait_for(what: str, condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, list[Server], Path]]:
    redis_server = RedisServer(tmp_path / "redis")  # appendonly yes, appendfsync always
    redis_server.start()
    servers: list[Server] = []
    try:
        yield redis_server, servers, tmp_path
    finally:
        for s in servers:
            s.stop()
        redis_server.stop()


def test_nothing_acknowledged_is_lost_or_doubled_when_processes_and_redis_die(
    cluster: tuple[RedisServer, list[Server], Path],
) -> None:
    redis_server, servers, tmp = cluster
    url = redis_server.url
    servers += [Server(url, tmp / "serve-a.log"), Server(url, tmp / "serve-b.log")]
    for s in servers:
        s.wait_ready()
    merchants = setup_city(servers[0].port, random.Random(5))
    wait_for("a lease holder", lambda: holder_pid(url) in {s.process.pid for s in servers}, 15)

    load = Load(servers, merchants)
    worker = threading.Thread(target=load.run, args=(random.Random(7),), daemon=True)
    worker.start()
    try:
        wait_for("steady load", lambda: len(load.acknowledged) >= 20, 30)

        # 1. kill -9 an API worker that does not hold the lease; a new one joins
        holder = holder_pid(url)
        victim = next(s for s in servers if s.process.pid != holder)
        victim.kill()
        servers.append(Server(url, tmp / "serve-c.log"))
        servers[-1].wait_ready()
        seen = len(load.acknowledged)
        wait_for("load after the worker died", lambda: len(load.acknowledged) >= seen + 15, 30)

        # 2. kill -9 the dispatcher holding the lease: another process takes over in seconds
        leader = next(s for s in servers if s.process.pid == holder_pid(url))
        leader.kill()
        alive = {s.process.pid for s in servers if s.alive}
        wait_for("another process to take the lease", lambda: holder_pid(url) in alive, 10)
        seen = len(load.acknowledged)
        wait_for("load after the leader died", lambda: len(load.acknowledged) >= seen + 15, 30)

        # 3. kill -9 redis-server and start it again on the same AOF
        felt = sum(load.failures.values())
        redis_server.kill()
        # an outage under load: start Redis again once the clients have felt it (503s)
        wait_for("the clients to feel the outage", lambda: sum(load.failures.values()) > felt, 15)
        redis_server.start()
        seen = len(load.acknowledged)
        wait_for("load after Redis came back", lambda: len(load.acknowledged) >= seen + 15, 30)
    finally:
        load.stop.set()
        worker.join(timeout=60)
    assert load.errors == []
    assert load.failures, "the faults were felt by the clients (503s or refused connections)"
    # the dispatcher keeps assigning after all three faults
    store = RedisStore(url, CITY)
    wait_for(
        "assignments after the faults", lambda: len(store.orders_with_status(OrderStatus.ASSIGNED)) > 0, 15
    )
    # no process writes while the final state is read: a tick in between could move an order
    # from one read to the next
    for s in servers:
        s.stop()
    check_state(store, load.acknowledged)


def setup_city(port: int, rng: random.Random) -> list[tuple[str, float, float]]:
    """Four merchants (one minute of preparation) and ``N_COURIERS`` couriers on shift, over HTTP."""
    merchants = []
    for i in range(4):
        lat, lng = CENTRE[0] + rng.uniform(-0.01, 0.01), CENTRE[1] + rng.uniform(-0.015, 0.015)
        body = {"id": f"m-{i}", "location": {"lat": lat, "lng": lng}, "delivery_area": {"radius_m": 4000}}
        assert _call(port, "POST", "/v1/merchants", ADMIN, {**body, "prep_minutes": 1})[0] == 201
        merchants.append((f"m-{i}", lat, lng))
    for i in range(N_COURIERS):
        where = {"lat": CENTRE[0] + rng.uniform(-0.01, 0.01), "lng": CENTRE[1] + rng.uniform(-0.015, 0.015)}
        shift = {"location": where, "duration_minutes": 240, "capacity": 2}
        assert _call(port, "POST", f"/v1/couriers/c-{i}/shift/start", ADMIN, shift)[0] == 201
    return merchants


def check_state(store: RedisStore, acknowledged: set[str]) -> dict[str, int]:
    """Every acknowledged order exists once, is assigned at most once (or waits), and sits in
    exactly its courier's plan; no order is in two plans. Raises AssertionError; returns counts."""
    events = store.events()
    assert [e.seq for e in events] == list(range(1, len(events) + 1)), "the event log has a gap or a repeat"
    placed = Counter(e.order_id for e in events if e.kind == "order.placed")
    assigned = Counter(e.order_id for e in events if e.kind == "order.assigned")
    for oid in acknowledged:
        order = store.get_order(oid)
        assert order is not None, f"acknowledged order {oid} was lost"
        assert placed[oid] == 1, f"order {oid} placed {placed[oid]} times"
        assert assigned[oid] <= 1, f"order {oid} assigned {assigned[oid]} times"
        assert order.status in (OrderStatus.PLACED, OrderStatus.ASSIGNED)
        assert (order.status is OrderStatus.ASSIGNED) == (assigned[oid] == 1)
    assert max(placed.values()) == 1 and max(assigned.values()) == 1
    routes = store.routes([f"c-{i}" for i in range(N_COURIERS)])
    in_plans = Counter(oid for route in routes.values() for oid in route.order_ids)
    assert in_plans and max(in_plans.values()) == 1, "an order is in two plans"
    for route in routes.values():
        for oid in route.order_ids:
            order = store.get_order(oid)
            assert order is not None and order.courier_id == route.courier_id
    for order in store.orders_with_status(OrderStatus.ASSIGNED):
        assert order.courier_id is not None and order.id in routes[order.courier_id].order_ids
    return {"events": len(events), "orders": len(placed), "assigned": len(assigned), "plans": len(routes)}


def test_serve_with_two_workers_shares_one_city(cluster: tuple[RedisServer, list[Server], Path]) -> None:
    redis_server, _, tmp = cluster
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DISPATCH_")},
        "DISPATCH_API_KEYS": _keys(),
        "DISPATCH_REDIS_URL": redis_server.url,
        "DISPATCH_CITY": CITY,
        "PYTHONPATH": str(ROOT),
    }
    command = [sys.executable, "-m", "dispatch.cli", "serve", "--workers", "2", "--port", str(port)]
    log = (tmp / "workers.log").open("ab")
    supervisor = subprocess.Popen(
        [*command, "--tick-interval", "0.3"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        wait_for("a lease holder", lambda: holder_pid(redis_server.url) is not None, 60)
        holder = holder_pid(redis_server.url)
        assert holder != supervisor.pid  # a worker process ticks, not the supervisor
        # a worker takes the lease while it starts up, a moment before the shared socket is
        # listened on (until then a connection is refused): wait until the service answers
        wait_for("the service to answer", lambda: _answers(port), 60)
        body = {
            "id": "m-1",
            "location": {"lat": CENTRE[0], "lng": CENTRE[1]},
            "delivery_area": {"radius_m": 3000},
        }
        assert _call(port, "POST", "/v1/merchants", ADMIN, {**body, "prep_minutes": 1})[0] == 201
        shift = {"location": {"lat": 52.521, "lng": 13.41}, "duration_minutes": 60}
        assert _call(port, "POST", "/v1/couriers/c-1/shift/start", ADMIN, shift)[0] == 201
        order = {"external_id": "W-1", "merchant_id": "m-1", "dropoff": {"lat": 52.53, "lng": 13.415}}
        status, _ = _call(port, "POST", "/v1/orders", APP, order, {"Idempotency-Key": "w-1"})
        assert status == 201
        roles = Counter(_call(port, "GET", "/healthz", ADMIN)[1]["dispatcher"] for _ in range(40))
        assert set(roles) <= {"leader", "standby"} and roles["leader"] >= 1
        wait_for(
            "the background tick",
            lambda: _call(port, "GET", "/v1/orders/m-1:W-1", APP)[1]["status"] == "enroute_to_pickup",
            20,
        )
    finally:
        supervisor.terminate()
        supervisor.wait(timeout=20)
        log.close()
    # a clean shutdown hands the lease back at once
    assert holder_pid(redis_server.url) is None
