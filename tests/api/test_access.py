"""Every (role, endpoint) pair, with the caller's own ids and other tenants' ids.

The world of each case: merchants m-1 and m-2, couriers c-1 and c-2 on shift, order ``m-1:o-1``
assigned to c-1, and then courier c-3 idle near m-1. Targets are always m-1, c-1 and that order;
so a m-2 merchant key, an app serving only m-2 and the c-2 courier key are "other tenants"
everywhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.api.conftest import (
    ADMIN,
    ANALYST,
    APP,
    APP_M2,
    AT_M1,
    COURIER_1,
    COURIER_2,
    MERCHANT_1,
    MERCHANT_2,
    NEAR_M1,
    Clock,
    auth,
    place,
    seed,
    start_shift,
)

pytestmark = pytest.mark.anyio

UNKNOWN = "not-a-key-but-long-enough-1"
# caller name -> API key (None: no Authorization header)
CALLERS: dict[str, str | None] = {
    "admin": ADMIN,
    "analyst": ANALYST,
    "app": APP,
    "app-of-m2": APP_M2,
    "merchant-m1": MERCHANT_1,
    "merchant-m2": MERCHANT_2,
    "courier-c1": COURIER_1,
    "courier-c2": COURIER_2,
    "no-key": None,
    "unknown-key": UNKNOWN,
}

Setup = Callable[[httpx.AsyncClient], Awaitable[None]]


async def _nothing(client: httpx.AsyncClient) -> None:
    return None


async def _end_c1_shift(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/couriers/c-1/shift/end", headers=auth(ADMIN))
    assert r.status_code == 200, r.text


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    body: dict[str, Any] | None
    # caller -> expected status; callers not listed get `default`
    allowed: dict[str, int]
    default: int = 403
    headers: dict[str, str] = field(default_factory=dict)
    setup: Setup = _nothing
    public: bool = False  # no key needed


def merchant_reader(ok: int) -> dict[str, int]:
    """Admin, apps serving m-1 and m-1 itself may read; other tenants get 404 (as if m-1 did not exist)."""
    return {"admin": ok, "app": ok, "merchant-m1": ok, "app-of-m2": 404, "merchant-m2": 404}


def courier_actor(ok: int) -> dict[str, int]:
    """Admin and c-1 itself; c-2 acting as c-1 is 403 (the default)."""
    return {"admin": ok, "courier-c1": ok}


NEW_MERCHANT = {"id": "m-9", "location": {"lat": 52.5, "lng": 13.4}, "delivery_area": {"radius_m": 2000}}
ENDPOINTS: dict[str, Endpoint] = {
    "create merchant": Endpoint("POST", "/v1/merchants", NEW_MERCHANT, {"admin": 201}),
    "read merchant": Endpoint("GET", "/v1/merchants/m-1", None, merchant_reader(200)),
    "update merchant": Endpoint(
        "PATCH",
        "/v1/merchants/m-1",
        {"prep_minutes": 12},
        {"admin": 200, "merchant-m1": 200, "merchant-m2": 404},
    ),
    "serviceability": Endpoint(
        "GET", "/v1/merchants/m-1/serviceability?lat=52.53&lng=13.415", None, merchant_reader(200)
    ),
    "restaurant board": Endpoint("GET", "/v1/merchants/m-1/orders", None, merchant_reader(200)),
    "quote": Endpoint("POST", "/v1/quotes", {"merchant_id": "m-1", "dropoff": NEAR_M1}, merchant_reader(201)),
    "order": Endpoint(
        "POST",
        "/v1/orders",
        {"external_id": "o-2", "merchant_id": "m-1", "dropoff": NEAR_M1},
        merchant_reader(201),
        headers={"Idempotency-Key": "access-matrix-1"},
    ),
    "read order": Endpoint(
        "GET", "/v1/orders/m-1:o-1", None, {**merchant_reader(200), "courier-c1": 200, "courier-c2": 404}
    ),
    "cancel order": Endpoint("POST", "/v1/orders/m-1:o-1/cancel", None, merchant_reader(200)),
    "start shift": Endpoint(
        "POST",
        "/v1/couriers/c-1/shift/start",
        {"location": {"lat": 52.521, "lng": 13.41}, "duration_minutes": 60},
        courier_actor(201),
        setup=_end_c1_shift,
    ),
    "end shift": Endpoint("POST", "/v1/couriers/c-1/shift/end", None, courier_actor(200)),
    "position": Endpoint(
        "PUT", "/v1/couriers/c-1/position", {"lat": 52.52, "lng": 13.41}, courier_actor(204)
    ),
    "courier event": Endpoint("POST", "/v1/couriers/c-1/events", {"type": "arrived"}, courier_actor(200)),
    "read courier": Endpoint("GET", "/v1/couriers/c-1", None, courier_actor(200)),
    "route": Endpoint("GET", "/v1/couriers/c-1/route", None, courier_actor(200)),
    "tick": Endpoint("POST", "/v1/dispatch/tick", None, {"admin": 200}),
    "events": Endpoint("GET", "/v1/events", None, {c: 200 for c in CALLERS if c != "analyst"}),
    "event stream": Endpoint("GET", "/v1/events/stream", None, {c: 200 for c in CALLERS if c != "analyst"}),
    "stats": Endpoint("GET", "/v1/stats", None, {"admin": 200, "analyst": 200}),
    "metrics": Endpoint("GET", "/metrics", None, {"admin": 200, "analyst": 200}),
    "healthz": Endpoint("GET", "/healthz", None, {c: 200 for c in CALLERS}, public=True),
}


def expected(endpoint: Endpoint, caller: str) -> int:
    if caller in ("no-key", "unknown-key") and not endpoint.public:
        return 401
    return endpoint.allowed.get(caller, endpoint.default)


async def _world(client: httpx.AsyncClient, clock: Clock) -> None:
    await seed(client)
    r = await place(client, "o-1", key=ADMIN)
    assert r.status_code == 201, r.text
    clock.advance(540)  # ready in a minute: now a courier is committed to it
    r = await client.post("/v1/dispatch/tick", headers=auth(ADMIN))
    assert r.json()["assignments"] == [{"courier_id": "c-1", "order_ids": ["m-1:o-1"]}], r.text
    # another courier near m-1, idle: c-1 is busy, and supply admission (on by default) quotes and
    # takes m-1's next orders only when some courier can deliver them in time
    await start_shift(client, "c-3", AT_M1)


@pytest.mark.parametrize("caller", list(CALLERS))
@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_role_and_tenant_decide_the_status(
    client: httpx.AsyncClient, clock: Clock, name: str, caller: str
) -> None:
    endpoint = ENDPOINTS[name]
    await _world(client, clock)
    await endpoint.setup(client)
    key = CALLERS[caller]
    headers = {**endpoint.headers, **(auth(key) if key else {})}
    r = await client.request(endpoint.method, endpoint.path, json=endpoint.body, headers=headers)
    assert r.status_code == expected(endpoint, caller), r.text
    if r.status_code >= 400:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["status"] == r.status_code
    if r.status_code == 401:
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("caller", ["merchant-m2", "app-of-m2"])
async def test_another_tenants_order_reads_exactly_like_a_missing_one(
    client: httpx.AsyncClient, clock: Clock, caller: str
) -> None:
    await _world(client, clock)
    key = CALLERS[caller]
    assert key is not None
    theirs = await client.get("/v1/orders/m-1:o-1", headers=auth(key))
    missing = await client.get("/v1/orders/m-1:nope", headers=auth(key))
    assert theirs.status_code == missing.status_code == 404
    strip = {"detail", "id", "instance"}
    assert {k: v for k, v in theirs.json().items() if k not in strip} == {
        k: v for k, v in missing.json().items() if k not in strip
    }
    assert "o-1" not in theirs.text.replace("m-1:o-1", "")  # nothing beyond the id that was asked for


async def test_a_courier_cannot_report_events_on_another_couriers_order(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await _world(client, clock)
    r = await client.post(
        "/v1/couriers/c-2/events", json={"type": "picked_up", "order_id": "m-1:o-1"}, headers=auth(COURIER_2)
    )
    assert r.status_code == 404
    assert r.json()["code"] == "unknown-order"


async def test_events_are_filtered_to_the_callers_tenant(client: httpx.AsyncClient, clock: Clock) -> None:
    await _world(client, clock)
    await place(client, "o-7", "m-2", key=ADMIN)

    async def kinds(key: str) -> list[tuple[str, str | None, str | None]]:
        r = await client.get("/v1/events?limit=1000", headers=auth(key))
        assert r.status_code == 200
        return [(e["kind"], e["order_id"], e["merchant_id"]) for e in r.json()["events"]]

    everything = await kinds(ADMIN)
    assert ("order.placed", "m-2:o-7", "m-2") in everything
    for key, merchant in ((MERCHANT_1, "m-1"), (MERCHANT_2, "m-2"), (APP_M2, "m-2")):
        seen = await kinds(key)
        assert seen and all((oid or "").startswith(merchant) or mid == merchant for _, oid, mid in seen)
    c1 = await kinds(COURIER_1)
    assert ("order.assigned", "m-1:o-1", "m-1") in c1
    assert await kinds(COURIER_2) == [("courier.shift_started", None, None)]


async def test_an_analyst_changes_nothing(client: httpx.AsyncClient, clock: Clock) -> None:
    await _world(client, clock)
    before = (await client.get("/v1/stats", headers=auth(ANALYST))).json()
    for endpoint in ENDPOINTS.values():
        if endpoint.method != "GET":
            r = await client.request(
                endpoint.method,
                endpoint.path,
                json=endpoint.body,
                headers={**endpoint.headers, **auth(ANALYST)},
            )
            assert r.status_code == 403, (endpoint.path, r.text)
    assert (await client.get("/v1/stats", headers=auth(ANALYST))).json() == before
