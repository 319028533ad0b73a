"""Issue #15, "no single client can break a city": one test per defect the attacker's probe found.

Each test failed on the code before the fix; the comment above it says how.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import create_app
from api.idempotency import Begin, RedisIdempotencyStore
from dispatch import DispatchConfig, Dispatcher
from dispatch.redis_store import RedisStore
from tests.api.conftest import (
    ADMIN,
    API_KEYS,
    APP,
    COURIER_1,
    MERCHANT_1,
    NEAR_M1,
    Clock,
    auth,
    make_settings,
    place,
    seed,
)
from tests.redis_server import RedisServer, free_port

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


# 1. A courier key stopped the city's dispatch: speed 1e-300 was accepted (201) and every tick
#    then failed with OverflowError (500). Now the speed is refused with its range, and ticks run.
@pytest.mark.parametrize("speed", [1e-300, 1e-16, 0.1, 40.5])
async def test_an_unphysical_courier_speed_is_refused_with_its_range(
    client: httpx.AsyncClient, speed: float
) -> None:
    await seed(client)
    r = await client.post(
        "/v1/couriers/c-1/shift/end", headers=auth(COURIER_1)
    )  # c-1 starts again with the bad speed
    assert r.status_code == 200, r.text
    r = await client.post(
        "/v1/couriers/c-1/shift/start",
        json={"location": {"lat": 52.521, "lng": 13.41}, "duration_minutes": 60, "speed_mps": speed},
        headers=auth(COURIER_1),
    )
    assert r.status_code == 422, r.text
    assert "speed_mps must be in [0.5, 40] m/s" in r.text
    assert (await client.get("/v1/couriers/c-1", headers=auth(ADMIN))).json()["status"] == "off_shift"
    # c-1 starts with a physical speed: an order of m-1 has a courier near (supply admission)
    good = {"location": {"lat": 52.521, "lng": 13.41}, "duration_minutes": 60}
    r = await client.post("/v1/couriers/c-1/shift/start", json=good, headers=auth(COURIER_1))
    assert r.status_code == 201, r.text
    assert (await place(client, "S-1")).status_code == 201
    tick = await client.post("/v1/dispatch/tick", headers=auth(ADMIN))
    assert tick.status_code == 200, tick.text


# 2. A huge after= was a 500 over Redis (Invalid stream ID) and 200 in memory: now 422 in both.
@pytest.mark.parametrize("path", ["/v1/events", "/v1/events/stream"])
async def test_after_beyond_the_sequence_range_is_422_in_both_stores(
    client: httpx.AsyncClient, path: str
) -> None:
    r = await client.get(path, params={"after": str(2**64)}, headers=auth(ADMIN))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["parameter"] == "after"
    ok = await client.get("/v1/events", params={"after": str(2**63 - 1)}, headers=auth(ADMIN))
    assert ok.status_code == 200 and ok.json()["events"] == []


# 3. After a Redis stall the retry of an order got 409 idempotency-key-in-use for ~10 s (the
#    claim's expiry): the claim could not be given back while Redis hung. Now it is given back as
#    soon as Redis answers, and the 503 comes within the Redis timeout.
async def test_a_retry_after_a_redis_stall_runs_at_once(tmp_path: Path, clock: Clock) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    assert server.process is not None
    pid = server.process.pid
    timeout_s = 0.5
    try:
        store = RedisStore(server.url, "test", timeout_s=timeout_s)
        app = create_app(
            make_settings(),
            dispatcher=Dispatcher(store=store, config=DispatchConfig(city="test")),
            clock=clock,
        )
        runtime = app.state.runtime
        real = runtime.idempotency
        assert isinstance(real, RedisIdempotencyStore)

        frozen: list[bool] = []

        class FreezeAfterClaim(RedisIdempotencyStore):
            """Redis stops answering right after the key is first claimed: the order is in flight."""

            async def begin(self, scope: str, key: str, request_fingerprint: str, now: int) -> Begin:
                begun = await real.begin(scope, key, request_fingerprint, now)
                if key == "stalled" and not frozen:
                    frozen.append(True)
                    os.kill(pid, signal.SIGSTOP)
                return begun

            async def abandon(self, scope: str, key: str) -> None:
                await real.abandon(scope, key)

            async def complete(self, scope: str, key: str, response: Any) -> None:
                await real.complete(scope, key, response)

        runtime.idempotency = FreezeAfterClaim(store.client, "test", 3600)
        body = {"external_id": "STALL-1", "merchant_id": "m-1", "dropoff": NEAR_M1}
        headers = {**auth(APP), "Idempotency-Key": "stalled"}
        async with _client(app) as client:
            await seed(client)
            started = time.monotonic()
            try:
                first = await asyncio.wait_for(client.post("/v1/orders", json=body, headers=headers), 10)
                took = time.monotonic() - started
            finally:
                os.kill(pid, signal.SIGCONT)
            assert first.status_code == 503, first.text
            assert took < 3 * timeout_s, took  # one Redis timeout, not several in a row
            recovered = time.monotonic()
            seen = []
            while True:
                retry = await client.post("/v1/orders", json=body, headers=headers)
                seen.append(retry.status_code)
                if retry.status_code not in (409, 503) or time.monotonic() - recovered > 8:
                    break
                await asyncio.sleep(0.1)
            assert retry.status_code == 201, (seen, retry.text)
            assert time.monotonic() - recovered < 2.0, seen
    finally:
        server.stop()


def _serve(port: int, **env: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.serve",
            "--port",
            str(port),
            "--tick-interval",
            "0",
            "--log-level",
            "error",
        ],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DISPATCH_API_KEYS": API_KEYS, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("dispatch serve did not start")


def _exchange(port: int, request: bytes, timeout_s: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        with contextlib.suppress(OSError):  # the server may close before it has read it all
            s.sendall(request)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


# 4. An 8 MB header was read and answered, 20,000 headers were accepted, and a client sending a
#    byte every 5 s was never timed out. Now the head is bounded (16 KiB), the header count too
#    (431), and a request that does not arrive within the read timeout is cut off.
def test_the_server_bounds_headers_and_slow_clients() -> None:
    port = free_port()
    process = _serve(port, DISPATCH_REQUEST_READ_TIMEOUT_S="1")
    try:
        key = f"Authorization: Bearer {ADMIN}\r\n".encode()
        huge = b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n" + key + b"X-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
        answer = _exchange(port, huge)
        assert not answer.startswith(b"HTTP/1.1 200"), answer[:200]
        many = (
            b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n" + key + b"".join(b"X-%d: 1\r\n" % i for i in range(500))
        )
        answer = _exchange(port, many + b"Connection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
        assert b"too-many-headers" in answer
        fine = _exchange(port, b"GET /v1/stats HTTP/1.1\r\nHost: x\r\n" + key + b"Connection: close\r\n\r\n")
        assert fine.startswith(b"HTTP/1.1 200"), fine[:200]
        # a slow client: the head trickles in and never ends
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /v1/stats HTTP/1.1\r\n")
            started = time.monotonic()
            closed = False
            while time.monotonic() - started < 5:
                try:
                    s.sendall(b"X")
                    s.settimeout(0.3)
                    if s.recv(1024) == b"":
                        closed = True
                        break
                except TimeoutError:
                    continue
                except OSError:
                    closed = True
                    break
            assert closed and time.monotonic() - started < 3
    finally:
        process.terminate()
        process.wait(timeout=10)


# 5. The Redis password appeared in a start-up error. Now neither errors nor stderr carry it.
def test_a_refused_redis_url_never_shows_its_password() -> None:
    secret = "Sup3rSecretRedisPw"
    port = free_port()
    run = subprocess.run(
        [sys.executable, "-m", "api.serve", "--port", str(port)],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DISPATCH_API_KEYS": API_KEYS,
            "DISPATCH_REDIS_URL": f"default:{secret}@127.0.0.1:6390/0",
        },
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "DISPATCH_REDIS_URL must start with redis://" in run.stderr
    assert secret not in run.stderr and secret not in run.stdout
    for url in (f"http://user:{secret}@host/0", f"default:{secret}@127.0.0.1:6390/0", f":{secret}@h"):
        with pytest.raises(ValueError) as error:
            make_settings(redis_url=url)
        assert secret not in str(error.value) and secret not in repr(error.value)
        assert ADMIN[:8] not in str(error.value)  # nor the API keys it was given


def _json_body_operations(app: FastAPI) -> list[tuple[str, str]]:
    operations = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                concrete = path.replace("{merchant_id}", "m-1").replace("{courier_id}", "c-1")
                operations.append((method.upper(), concrete.replace("{order_id}", "m-1:x")))
    return operations


# 6. POST /v1/orders with text/plain, a form type or none answered 422 validation-error, while
#    quotes and positions answered 415. Now every operation with a JSON body answers 415.
@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_every_json_body_has_one_media_type_rule(app: FastAPI, content_type: str | None) -> None:
    operations = _json_body_operations(app)
    assert ("POST", "/v1/orders") in operations and len(operations) >= 6
    async with _client(app) as client:
        await seed(client)
        for method, path in operations:
            headers = {**auth(ADMIN), "Idempotency-Key": "media"}
            if content_type:
                headers["Content-Type"] = content_type
            r = await client.request(method, path, content=b'{"a": 1}', headers=headers)
            assert r.status_code == 415, (method, path, r.status_code, r.text)
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "unsupported-media-type"


# 7. A refusal was replayed as the key's answer for 24 h: an order for an unknown merchant got 404,
#    and after the merchant was created the retry with the same key replayed the 404.
async def test_a_refusal_is_not_remembered_for_the_key(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = {"external_id": "LATE-1", "merchant_id": "m-9", "dropoff": NEAR_M1}
    headers = {**auth(APP), "Idempotency-Key": "late-merchant"}
    first = await client.post("/v1/orders", json=body, headers=headers)
    assert first.status_code == 404 and first.json()["code"] == "unknown-merchant"
    created = await client.post(
        "/v1/merchants",
        json={"id": "m-9", "location": {"lat": 52.52, "lng": 13.405}, "delivery_area": {"radius_m": 3000}},
        headers=auth(ADMIN),
    )
    assert created.status_code == 201
    retry = await client.post("/v1/orders", json=body, headers=headers)
    assert retry.status_code == 201, retry.text
    assert "Idempotent-Replayed" not in retry.headers
    again = await client.post("/v1/orders", json=body, headers=headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"


# 8. Ids "." and ".." were accepted for merchants and external ids.
@pytest.mark.parametrize("bad", [".", "..", ".m", "m.", "a~b", "a b"])
async def test_ids_are_letters_digits_dash_underscore_with_dots_only_inside(
    client: httpx.AsyncClient, bad: str
) -> None:
    await seed(client)
    r = await client.post(
        "/v1/merchants",
        json={"id": bad, "location": {"lat": 52.52, "lng": 13.405}, "delivery_area": {"radius_m": 3000}},
        headers=auth(ADMIN),
    )
    assert r.status_code == 422, r.text
    assert (await place(client, bad)).status_code == 422
    fine = await client.post(
        "/v1/merchants",
        json={
            "id": "m.9_x-1",
            "location": {"lat": 52.52, "lng": 13.405},
            "delivery_area": {"radius_m": 3000},
        },
        headers=auth(ADMIN),
    )
    assert fine.status_code == 201, fine.text


# 9a. 300 concurrent event streams from one merchant key were all held open. Now past the cap
#     a key's next stream is 429, and the slot comes back when a stream ends.
async def test_event_streams_per_key_are_capped(clock: Clock) -> None:
    app = create_app(
        make_settings(event_streams_per_key=2, event_stream_max_s=1.0), dispatcher=Dispatcher(), clock=clock
    )
    async with _client(app) as client:
        held = [
            asyncio.create_task(client.get("/v1/events/stream", headers=auth(MERCHANT_1))) for _ in range(2)
        ]
        await asyncio.sleep(0.3)
        third = await client.get("/v1/events/stream", headers=auth(MERCHANT_1))
        assert third.status_code == 429, third.text
        assert third.json()["code"] == "too-many-streams" and third.headers["Retry-After"]
        other_key = await client.get("/v1/events/stream", headers=auth(APP))
        assert other_key.status_code == 200  # the cap is per key
        assert [r.status_code for r in await asyncio.gather(*held)] == [200, 200]
        after = await client.get("/v1/events/stream", headers=auth(MERCHANT_1))
        assert after.status_code == 200


# 9b. There was no cap on stored idempotency records per tenant.
async def test_idempotency_records_per_key_are_capped(clock: Clock, dispatcher: Dispatcher) -> None:
    # without supply admission: the orders are never dispatched, and a day later (shifts over,
    # yesterday's orders still waiting) no courier could take one more; this is about the cap
    config = dataclasses.replace(dispatcher.config, supply_admission=False)
    dispatcher = Dispatcher(store=dispatcher.store, config=config)
    app = create_app(make_settings(idempotency_max_records=2), dispatcher=dispatcher, clock=clock)
    async with _client(app) as client:
        await seed(client)
        assert (await place(client, "CAP-1")).status_code == 201
        assert (await place(client, "CAP-2")).status_code == 201
        third = await place(client, "CAP-3")
        assert third.status_code == 429, third.text
        assert third.json()["code"] == "too-many-idempotency-records"
        assert int(third.headers["Retry-After"]) > 0
        assert (await place(client, "CAP-1")).headers["Idempotent-Replayed"] == "true"  # kept ones replay
        assert (await place(client, "CAP-3", key=MERCHANT_1)).status_code == 201  # another key's own cap
        clock.advance(24 * 3600 + 1)
        assert (await place(client, "CAP-4")).status_code == 201  # the old ones expired
