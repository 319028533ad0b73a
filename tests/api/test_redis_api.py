"""The HTTP API over shared state: two apps over one Redis behave as one service (two workers),
the tick belongs to the lease holder, and an unreachable Redis is a 503 the service recovers from.

Each "worker" here is a full app with its own Redis connection pool, as a uvicorn worker has;
``tests/dispatch/test_redis_faults.py`` does the same with real processes and kill -9.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api import Settings, create_app
from dispatch import DispatchConfig, Dispatcher
from dispatch.redis_store import Lease, RedisStore, connect
from tests.api.conftest import (
    ADMIN,
    APP,
    AT_M1,
    NEAR_M1,
    Clock,
    auth,
    make_settings,
    place,
    seed,
    start_shift,
)
from tests.redis_server import RedisServer

pytestmark = pytest.mark.anyio


def _app(url: str, clock: Clock, **settings: object) -> FastAPI:
    store = RedisStore(url, "test", timeout_s=0.5)
    return create_app(
        make_settings(**settings),
        dispatcher=Dispatcher(store=store, config=DispatchConfig(city="test")),
        clock=clock,
    )


@pytest.fixture
async def workers(redis_url: str, clock: Clock) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    clients = []
    for _ in range(2):
        transport = httpx.ASGITransport(app=_app(redis_url, clock))
        clients.append(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
    try:
        yield clients[0], clients[1]
    finally:
        for c in clients:
            await c.aclose()


async def test_two_workers_share_orders_quotes_and_idempotency(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = workers
    await seed(a)
    first = await place(a, "A-1")
    assert first.status_code == 201, first.text
    # the retry lands on the other worker: the first answer again, not a second order
    again = await place(b, "A-1")
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json() and again.headers["Location"] == "/v1/orders/m-1:A-1"
    # the same external id with another key: the order exists once, on every worker
    other = await b.post(
        "/v1/orders",
        json={"external_id": "A-1", "merchant_id": "m-1", "dropoff": NEAR_M1},
        headers={**auth(APP), "Idempotency-Key": "another-key"},
    )
    assert other.status_code == 409 and other.json()["code"] == "duplicate-id"
    # a quote issued by one worker is ordered from on the other
    quote = await a.post("/v1/quotes", json={"merchant_id": "m-1", "dropoff": NEAR_M1}, headers=auth(APP))
    assert quote.status_code == 201
    from_quote = await b.post(
        "/v1/orders",
        json={"external_id": "A-2", "quote_id": quote.json()["id"]},
        headers={**auth(APP), "Idempotency-Key": "from-quote-A-2"},
    )
    assert from_quote.status_code == 201, from_quote.text
    assert (await a.get("/v1/orders/m-1:A-2", headers=auth(APP))).json()["status"] == "created"
    page = (await b.get("/v1/events?after=0&limit=100", headers=auth(ADMIN))).json()
    assert [e["order_id"] for e in page["events"] if e["kind"] == "order.placed"] == ["m-1:A-1", "m-1:A-2"]


async def test_one_key_sent_to_two_workers_at_once_places_one_order(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    a, b = workers
    await seed(a)
    await start_shift(a, "c-3", AT_M1)  # five orders of m-1: two couriers near it (supply admission)
    answers = await asyncio.gather(*(place(w, f"B-{n}") for n in range(5) for w in (a, b)))
    for n in range(5):
        pair = [r for r in answers if r.request.headers["Idempotency-Key"] == f"idem-m-1-B-{n}"]
        statuses = sorted(r.status_code for r in pair)
        # one placed it; the other replayed it, or was told it is in flight (409 with Retry-After)
        assert statuses in ([201, 201], [201, 409]), [r.text for r in pair]
        if statuses == [201, 201]:
            assert any(r.headers.get("Idempotent-Replayed") == "true" for r in pair)
        else:
            busy = next(r for r in pair if r.status_code == 409)
            assert busy.json()["code"] == "idempotency-key-in-use" and busy.headers["Retry-After"]
    events = (await a.get("/v1/events?limit=1000", headers=auth(ADMIN))).json()["events"]
    assert sorted(e["order_id"] for e in events if e["kind"] == "order.placed") == [
        f"m-1:B-{n}" for n in range(5)
    ]


async def test_only_the_lease_holder_ticks(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], redis_url: str, clock: Clock
) -> None:
    a, b = workers
    await seed(a)
    assert (await place(a, "C-1")).status_code == 201
    other = Lease(connect(redis_url), "test", ttl_s=60, owner="another-process")
    assert other.acquire()
    refused = await b.post("/v1/dispatch/tick", headers=auth(ADMIN))
    assert refused.status_code == 409 and refused.json()["code"] == "lease-held"
    assert "another-process" in refused.json()["detail"]
    assert (await a.get("/v1/orders/m-1:C-1", headers=auth(APP))).json()["status"] == "created"
    other.release()
    clock.advance(9 * 60)  # the food is nearly ready: the courier is committed now
    # free again: a worker without a background tick borrows the lease for one tick
    ticked = await b.post("/v1/dispatch/tick", headers=auth(ADMIN))
    assert ticked.status_code == 200 and ticked.json()["assignments"] == [
        {"courier_id": "c-1", "order_ids": ["m-1:C-1"]}
    ]
    assert other.acquire()  # and gave it back
    health = (await a.get("/healthz")).json()
    assert health["dispatcher"] == "standby"


class _Recalling(Dispatcher):
    """A Dispatcher that counts how often it is told to recall the demand."""

    recalls = 0

    def recall_demand(self) -> None:
        self.recalls += 1
        super().recall_demand()


async def test_taking_the_lease_recalls_the_demand(redis_url: str, clock: Clock) -> None:
    dispatcher = _Recalling(
        store=RedisStore(redis_url, "test", timeout_s=0.5), config=DispatchConfig(city="test")
    )
    app = create_app(make_settings(), dispatcher=dispatcher, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        await seed(client)
        for expected in (1, 2):  # each tick borrows the lease (no lease loop here) and gives it back
            assert (await client.post("/v1/dispatch/tick", headers=auth(ADMIN))).status_code == 200
            assert dispatcher.recalls == expected


async def test_redis_down_is_503_with_retry_after_and_recovers(tmp_path: Path, clock: Clock) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        app = _app(server.url, clock)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await seed(client)
            assert (await place(client, "D-1")).status_code == 201
            server.kill()
            for call in (
                place(client, "D-2"),
                client.get("/v1/orders/m-1:D-1", headers=auth(APP)),
                client.put(
                    "/v1/couriers/c-1/position", json={"lat": 52.52, "lng": 13.41}, headers=auth(ADMIN)
                ),
                client.post("/v1/quotes", json={"merchant_id": "m-1", "dropoff": NEAR_M1}, headers=auth(APP)),
                client.post("/v1/dispatch/tick", headers=auth(ADMIN)),
                client.get("/v1/stats", headers=auth(ADMIN)),
            ):
                r = await asyncio.wait_for(call, timeout=10)
                assert r.status_code == 503, r.text
                assert r.headers["Retry-After"] == "1"
                assert r.headers["content-type"] == "application/problem+json"
                assert r.json()["code"] == "store-unavailable"
            assert (await client.get("/healthz")).status_code == 200  # alive, just degraded
            server.start()
            # recovers by itself; the order refused while Redis was down can be placed now, once
            retry = await place(client, "D-2")
            assert retry.status_code == 201, retry.text
            assert (await client.get("/v1/orders/m-1:D-1", headers=auth(APP))).status_code == 200
    finally:
        server.stop()


async def test_a_redis_that_hangs_is_503_after_the_timeout_not_a_hang(tmp_path: Path, clock: Clock) -> None:
    import os
    import signal

    server = RedisServer(tmp_path / "redis")
    server.start()
    assert server.process is not None
    try:
        app = _app(server.url, clock)  # 0.5 s Redis timeout
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            await seed(client)
            os.kill(server.process.pid, signal.SIGSTOP)  # alive, accepting nothing: the worst kind of down
            try:
                r = await asyncio.wait_for(client.get("/v1/merchants/m-1", headers=auth(ADMIN)), timeout=10)
                assert r.status_code == 503 and r.headers["Retry-After"] == "1"
                assert "TimeoutError" in r.json()["detail"]
            finally:
                os.kill(server.process.pid, signal.SIGCONT)
            r = await client.get("/v1/merchants/m-1", headers=auth(ADMIN))
            assert r.status_code == 200 and r.json()["id"] == "m-1"
    finally:
        server.stop()


def test_a_redis_url_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValueError, match="DISPATCH_REDIS_URL must start with redis://"):
        make_settings(redis_url="http://127.0.0.1:6379")
    assert make_settings(redis_url="").redis_url is None
    assert isinstance(make_settings(redis_url="redis://127.0.0.1:1/0"), Settings)


def test_serve_refuses_several_workers_without_redis(tmp_path: Path) -> None:
    env = {"DISPATCH_API_KEYS": "admin-key-0000000000000001=admin", "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [sys.executable, "-m", "dispatch.cli", "serve", "--workers", "2", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert run.returncode == 2
    assert "--workers 2 needs shared state: set DISPATCH_REDIS_URL" in run.stderr
