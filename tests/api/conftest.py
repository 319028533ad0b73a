"""Fixtures of the HTTP API tests: the real app over a real Dispatcher, a clock the test moves,
and one API key per role and tenant.

Berlin, one merchant ``m-1`` with a 3 km radius and another ``m-2``; couriers ``c-1`` and ``c-2``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api import Settings, create_app
from dispatch import DispatchConfig, Dispatcher
from tests.conftest import make_store
from tests.redis_server import free_port

T0 = 1_750_000_000  # a POSIX second in 2025

ADMIN = "admin-key-0000000000000001"
ANALYST = "analyst-key-00000000000001"
APP = "app-key-all-merchants-0001"  # an app serving every merchant
APP_M2 = "app-key-only-m2-0000000001"  # an app serving m-2 only
MERCHANT_1 = "merchant-key-m1-000000001"
MERCHANT_2 = "merchant-key-m2-000000001"
COURIER_1 = "courier-key-c1-0000000001"
COURIER_2 = "courier-key-c2-0000000001"

API_KEYS = ",".join(
    [
        f"{ADMIN}=admin",
        f"{ANALYST}=analyst",
        f"{APP}=app",
        f"{APP_M2}=app:m-2",
        f"{MERCHANT_1}=merchant:m-1",
        f"{MERCHANT_2}=merchant:m-2",
        f"{COURIER_1}=courier:c-1",
        f"{COURIER_2}=courier:c-2",
    ]
)

M1 = {"lat": 52.5200, "lng": 13.4050}
M2 = {"lat": 52.5000, "lng": 13.3500}
NEAR_M1 = {"lat": 52.5300, "lng": 13.4150}  # 1.3 km from m-1
AT_M1 = {"lat": 52.5190, "lng": 13.4000}  # 370 m from m-1: where an extra courier starts
AT_M2 = {"lat": 52.4990, "lng": 13.3490}  # 130 m from m-2
FAR = {"lat": 52.6300, "lng": 13.4150}  # 12.2 km from m-1


class Clock:
    """A clock the test moves by hand (whole POSIX seconds)."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: int) -> int:
        self.now += seconds
        return self.now


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the sample ``name{labels}`` in Prometheus text (labels in any order), or None."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "api_keys": API_KEYS,
        "tick_interval_s": 0,
        # long enough that an order placed over Redis 0.05 s after a stream opens arrives
        # while it is open, on a loaded machine too
        "event_stream_max_s": 0.5,
        "event_poll_s": 0.02,
        "max_body_bytes": 16 * 1024,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "redis"])
def dispatcher(request: pytest.FixtureRequest) -> Dispatcher:
    """The engine over each store: the API tests run over in-memory state and over Redis."""
    return Dispatcher(store=make_store(request.param, "test", request), config=DispatchConfig(city="test"))


@pytest.fixture
def app(clock: Clock, dispatcher: Dispatcher) -> FastAPI:
    return create_app(make_settings(), dispatcher=dispatcher, clock=clock)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def seed(client: httpx.AsyncClient) -> None:
    """Merchants m-1 and m-2, couriers c-1 (near m-1) and c-2 (near m-2) on shift."""
    for mid, where in (("m-1", M1), ("m-2", M2)):
        r = await client.post(
            "/v1/merchants",
            json={"id": mid, "location": where, "delivery_area": {"radius_m": 3000}, "prep_minutes": 10},
            headers=auth(ADMIN),
        )
        assert r.status_code == 201, r.text
    for cid, where in (("c-1", {"lat": 52.5210, "lng": 13.4100}), ("c-2", {"lat": 52.5010, "lng": 13.3510})):
        await start_shift(client, cid, where)


async def start_shift(
    client: httpx.AsyncClient, courier_id: str, where: dict[str, float], minutes: int = 240
) -> None:
    """Put ``courier_id`` on shift at ``where`` for ``minutes`` (with the admin key).

    Supply admission is on by default: a test whose orders need more couriers near a merchant
    than :func:`seed` starts adds them with this.
    """
    r = await client.post(
        f"/v1/couriers/{courier_id}/shift/start",
        json={"location": where, "duration_minutes": minutes},
        headers=auth(ADMIN),
    )
    assert r.status_code == 201, r.text


async def place(
    client: httpx.AsyncClient, external_id: str, merchant_id: str = "m-1", *, key: str = APP, **extra: Any
) -> httpx.Response:
    body = {
        "external_id": external_id,
        "merchant_id": merchant_id,
        "dropoff": NEAR_M1 if merchant_id == "m-1" else M2,
    }
    body.update(extra)
    return await client.post(
        "/v1/orders", json=body, headers={**auth(key), "Idempotency-Key": f"idem-{merchant_id}-{external_id}"}
    )


@pytest.fixture
def served_app() -> Iterator[tuple[str, FastAPI, Clock]]:
    """The app over in-memory state behind a real uvicorn on loopback, in a thread."""
    clock = Clock(int(time.time()))
    app = create_app(
        make_settings(event_poll_s=0.05, event_stream_max_s=30),
        dispatcher=Dispatcher(config=DispatchConfig(city="test")),
        clock=clock,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", app, clock
    finally:
        server.should_exit = True
        thread.join(timeout=10)
