"""Quote then order, idempotency, external ids, cancellation, courier events, ETAs."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fastapi import FastAPI

from api.idempotency import Begin, MemoryIdempotencyStore, StoredResponse
from dispatch import Dispatcher, OrderStatus
from tests.api.conftest import (
    ADMIN,
    APP,
    AT_M1,
    COURIER_1,
    FAR,
    MERCHANT_1,
    NEAR_M1,
    T0,
    Clock,
    auth,
    place,
    seed,
    start_shift,
)

pytestmark = pytest.mark.anyio


async def _quote(client: httpx.AsyncClient, key: str = APP, **body: object) -> httpx.Response:
    return await client.post(
        "/v1/quotes", json={"merchant_id": "m-1", "dropoff": NEAR_M1, **body}, headers=auth(key)
    )


async def test_quote_then_order_then_tick_gives_a_courier_and_etas(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await seed(client)
    q = await _quote(client)
    assert q.status_code == 201, q.text
    quote = q.json()
    assert quote["deadline_at"] == T0 + 30 * 60  # ASAP: 30 minutes from now
    assert quote["expires_at"] == T0 + 5 * 60  # honoured for 5 minutes
    assert quote["ready_at"] == T0 + 10 * 60  # m-1 prepares in 10 minutes
    assert T0 < quote["pickup_eta_at"] < quote["dropoff_eta_at"] <= quote["deadline_at"]

    clock.advance(60)
    r = await client.post(
        "/v1/orders",
        json={"external_id": "A-1", "quote_id": quote["id"]},
        headers={**auth(APP), "Idempotency-Key": "k-1"},
    )
    assert r.status_code == 201, r.text
    order = r.json()
    assert r.headers["location"] == "/v1/orders/m-1:A-1"
    assert (order["id"], order["external_id"], order["merchant_id"]) == ("m-1:A-1", "A-1", "m-1")
    assert order["status"] == "created" and order["eta"]["estimated"] is True
    assert order["courier_position"] is None

    clock.advance(480)
    tick = await client.post("/v1/dispatch/tick", headers=auth(ADMIN))
    assert tick.json()["assignments"] == [{"courier_id": "c-1", "order_ids": ["m-1:A-1"]}]

    order = (await client.get("/v1/orders/m-1:A-1", headers=auth(APP))).json()
    assert order["status"] == "enroute_to_pickup" and order["courier_id"] == "c-1"
    assert order["eta"]["estimated"] is False
    assert order["eta"]["courier_arrival_at"] <= order["eta"]["pickup_at"] < order["eta"]["dropoff_at"]
    assert order["courier_position"] == {
        "courier_id": "c-1",
        "lat": 52.521,
        "lng": 13.41,
        "seen_at": T0,
        "age_s": 540,
    }

    board = (await client.get("/v1/merchants/m-1/orders", headers=auth(MERCHANT_1))).json()
    assert [(o["id"], o["status"], o["courier_id"]) for o in board["orders"]] == [
        ("m-1:A-1", "enroute_to_pickup", "c-1")
    ]
    assert board["orders"][0]["courier_arrival_at"] == order["eta"]["courier_arrival_at"]

    route = (await client.get("/v1/couriers/c-1/route", headers=auth(COURIER_1))).json()
    assert [(s["kind"], s["order_ids"]) for s in route["stops"]] == [
        ("pickup", ["m-1:A-1"]),
        ("dropoff", ["m-1:A-1"]),
    ]


async def test_refusals_say_why_in_numbers(client: httpx.AsyncClient) -> None:
    await seed(client)
    far = await client.post("/v1/quotes", json={"merchant_id": "m-1", "dropoff": FAR}, headers=auth(APP))
    assert far.status_code == 422
    problem = far.json()
    assert problem["type"] == "/problems/outside-delivery-area"
    assert problem["radius_m"] == 3000 and 12_000 < problem["distance_m"] < 12_500
    assert "12250 m" in problem["detail"]

    # a 10-minute window starting now: the food is ready only in 10 minutes
    window = {"start_at": T0, "end_at": T0 + 600}
    late = await _quote(client, dropoff_window=window)
    assert late.status_code == 422
    assert late.json()["code"] == "window-infeasible"
    assert late.json()["late_s"] > 0 and late.json()["window_end"] == T0 + 600

    s = await client.get("/v1/merchants/m-1/serviceability", params=FAR, headers=auth(APP))
    assert s.status_code == 200
    assert s.json()["serviceable"] is False and s.json()["reason"] == "outside-delivery-area"
    assert s.json()["radius_m"] == 3000
    ok = (await client.get("/v1/merchants/m-1/serviceability", params=NEAR_M1, headers=auth(APP))).json()
    assert ok["serviceable"] is True and ok["deadline_at"] == T0 + 1800


async def test_a_scheduled_window_is_kept(client: httpx.AsyncClient) -> None:
    await seed(client)
    window = {"start_at": T0 + 3600, "end_at": T0 + 3600 + 1800}
    r = await place(client, "S-1", dropoff_window=window)
    assert r.status_code == 201, r.text
    assert r.json()["scheduled"] is True and r.json()["dropoff_window"] == window
    too_long = await place(client, "S-2", dropoff_window={"start_at": T0 + 3600, "end_at": T0 + 3600 + 1801})
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid-window"


async def test_an_expired_quote_is_refused(client: httpx.AsyncClient, clock: Clock) -> None:
    await seed(client)
    quote = (await _quote(client)).json()
    clock.advance(301)
    r = await client.post(
        "/v1/orders",
        json={"external_id": "late", "quote_id": quote["id"]},
        headers={**auth(APP), "Idempotency-Key": "x"},
    )
    assert r.status_code == 409
    assert r.json()["code"] == "quote-expired" and r.json()["expired_at"] == T0 + 300


async def test_another_keys_quote_does_not_exist(client: httpx.AsyncClient) -> None:
    await seed(client)
    quote = (await _quote(client, key=APP)).json()
    r = await client.post(
        "/v1/orders",
        json={"external_id": "x", "quote_id": quote["id"]},
        headers={**auth(MERCHANT_1), "Idempotency-Key": "x"},
    )
    assert r.status_code == 404 and r.json()["code"] == "unknown-quote"


async def test_a_retry_with_the_same_key_and_body_gets_the_same_response(
    client: httpx.AsyncClient, clock: Clock, dispatcher: Dispatcher
) -> None:
    await seed(client)
    first = await place(client, "R-1")
    clock.advance(30)  # the ETA would differ now; the replay does not
    again = await place(client, "R-1")
    assert first.status_code == again.status_code == 201
    assert first.content == again.content
    assert (
        again.headers["idempotent-replayed"] == "true" and again.headers["location"] == "/v1/orders/m-1:R-1"
    )
    assert len(dispatcher.store.orders_of_merchant("m-1")) == 1


async def test_a_failed_request_is_replayed_too(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = {"external_id": "F-1", "merchant_id": "m-1", "dropoff": FAR}
    headers = {**auth(APP), "Idempotency-Key": "far-1"}
    first = await client.post("/v1/orders", json=body, headers=headers)
    again = await client.post("/v1/orders", json=body, headers=headers)
    assert first.status_code == again.status_code == 422
    assert first.content == again.content and again.headers["content-type"] == "application/problem+json"


async def test_the_same_key_with_another_body_is_refused(client: httpx.AsyncClient) -> None:
    await seed(client)
    headers = {**auth(APP), "Idempotency-Key": "same"}
    a = await client.post(
        "/v1/orders", json={"external_id": "K-1", "merchant_id": "m-1", "dropoff": NEAR_M1}, headers=headers
    )
    b = await client.post(
        "/v1/orders", json={"external_id": "K-2", "merchant_id": "m-1", "dropoff": NEAR_M1}, headers=headers
    )
    assert a.status_code == 201
    assert b.status_code == 422 and b.json()["code"] == "idempotency-key-reused"


async def test_keys_are_scoped_to_the_api_key(client: httpx.AsyncClient) -> None:
    await seed(client)
    body = {"merchant_id": "m-1", "dropoff": NEAR_M1}
    a = await client.post(
        "/v1/orders", json={**body, "external_id": "P-1"}, headers={**auth(APP), "Idempotency-Key": "k"}
    )
    b = await client.post(
        "/v1/orders",
        json={**body, "external_id": "P-2"},
        headers={**auth(MERCHANT_1), "Idempotency-Key": "k"},
    )
    assert a.status_code == b.status_code == 201


async def test_concurrent_requests_with_one_key_create_one_order(
    client: httpx.AsyncClient, dispatcher: Dispatcher
) -> None:
    await seed(client)
    responses = await asyncio.gather(*(place(client, "C-1") for _ in range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}
    created = [r for r in responses if r.status_code == 201]
    assert created and all(r.content == created[0].content for r in created)
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency-key-in-use" and r.headers["retry-after"] == "1"
    assert [o.id for o in dispatcher.store.orders_of_merchant("m-1")] == ["m-1:C-1"]
    placed = [e for e in dispatcher.store.events() if e.kind == "order.placed"]
    assert len(placed) == 1


async def test_an_external_id_is_unique_per_merchant(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert (await place(client, "E-1")).status_code == 201
    dup = await client.post(
        "/v1/orders",
        json={"external_id": "E-1", "merchant_id": "m-1", "dropoff": NEAR_M1},
        headers={**auth(APP), "Idempotency-Key": "another-key"},
    )
    assert dup.status_code == 409 and dup.json()["code"] == "duplicate-id"
    other_merchant = await place(client, "E-1", "m-2")  # the same external id at another merchant is fine
    assert other_merchant.status_code == 201 and other_merchant.json()["id"] == "m-2:E-1"


async def _assigned(client: httpx.AsyncClient, clock: Clock, external_id: str = "D-1") -> str:
    await seed(client)
    assert (await place(client, external_id)).status_code == 201
    clock.advance(540)
    tick = (await client.post("/v1/dispatch/tick", headers=auth(ADMIN))).json()
    assert tick["assignments"], tick
    return f"m-1:{external_id}"


async def test_cancel_before_pickup_then_409_after(client: httpx.AsyncClient, clock: Clock) -> None:
    order_id = await _assigned(client, clock)
    event = {"type": "picked_up", "order_id": order_id}
    await client.post("/v1/couriers/c-1/events", json={"type": "arrived"}, headers=auth(COURIER_1))
    r = await client.post("/v1/couriers/c-1/events", json=event, headers=auth(COURIER_1))
    assert r.status_code == 200, r.text
    late = await client.post(f"/v1/orders/{order_id}/cancel", headers=auth(APP))
    assert late.status_code == 409 and late.json()["code"] == "illegal-transition"

    # c-1 carries D-1: another courier near m-1 takes the next order (supply admission is on)
    await start_shift(client, "c-3", AT_M1)
    assert (await place(client, "D-2")).status_code == 201
    ok = await client.post("/v1/orders/m-1:D-2/cancel", headers=auth(APP))
    assert ok.status_code == 200 and ok.json()["status"] == "cancelled" and ok.json()["eta"] is None
    again = await client.post("/v1/orders/m-1:D-2/cancel", headers=auth(APP))
    assert again.status_code == 409


async def test_courier_events_carry_an_order_to_its_door(client: httpx.AsyncClient, clock: Clock) -> None:
    order_id = await _assigned(client, clock)
    h = auth(COURIER_1)
    clock.advance(100)
    arrived = await client.post("/v1/couriers/c-1/events", json={"type": "arrived"}, headers=h)
    assert arrived.json()["route"]["arrived_at"] == clock.now
    clock.advance(60)
    picked = await client.post(
        "/v1/couriers/c-1/events", json={"type": "picked_up", "order_id": order_id}, headers=h
    )
    assert [s["kind"] for s in picked.json()["route"]["stops"]] == ["dropoff"]
    clock.advance(540)
    at_door = await client.post("/v1/couriers/c-1/events", json={"type": "arrived"}, headers=h)
    assert at_door.status_code == 200
    clock.advance(60)
    done = await client.post(
        "/v1/couriers/c-1/events", json={"type": "delivered", "order_id": order_id}, headers=h
    )
    assert done.status_code == 200 and done.json()["route"]["stops"] == []
    order = (await client.get(f"/v1/orders/{order_id}", headers=auth(APP))).json()
    assert (
        order["status"] == OrderStatus.DELIVERED.value
        and order["eta"] is None
        and order["courier_position"] is None
    )
    twice = await client.post(
        "/v1/couriers/c-1/events", json={"type": "delivered", "order_id": order_id}, headers=h
    )
    assert twice.status_code == 409


async def test_a_rejected_assignment_goes_back_to_the_pool(client: httpx.AsyncClient, clock: Clock) -> None:
    order_id = await _assigned(client, clock)
    r = await client.post(
        "/v1/couriers/c-1/events", json={"type": "rejected", "order_id": order_id}, headers=auth(COURIER_1)
    )
    assert r.status_code == 200 and r.json()["route"]["stops"] == []
    order = (await client.get(f"/v1/orders/{order_id}", headers=auth(APP))).json()
    assert order["status"] == "created" and order["courier_id"] is None


async def test_position_updates_move_the_courier(client: httpx.AsyncClient, clock: Clock) -> None:
    await seed(client)
    clock.advance(5)
    r = await client.put(
        "/v1/couriers/c-1/position", json={"lat": 52.5, "lng": 13.3}, headers=auth(COURIER_1)
    )
    assert r.status_code == 204 and r.content == b""
    courier = (await client.get("/v1/couriers/c-1", headers=auth(COURIER_1))).json()
    assert courier["location"] == {"lat": 52.5, "lng": 13.3} and courier["seen_at"] == T0 + 5
    await client.post("/v1/couriers/c-1/shift/end", headers=auth(COURIER_1))
    off = await client.put(
        "/v1/couriers/c-1/position", json={"lat": 52.5, "lng": 13.3}, headers=auth(COURIER_1)
    )
    assert off.status_code == 409 and off.json()["code"] == "courier-off-shift"


async def test_a_merchant_can_move_its_promise(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.patch("/v1/merchants/m-1", json={"promise_minutes": 45}, headers=auth(MERCHANT_1))
    assert r.status_code == 200 and r.json()["promise_minutes"] == 45
    assert r.json()["delivery_area"] == {"radius_m": 3000}
    assert (await _quote(client)).json()["deadline_at"] == T0 + 45 * 60
    reset = await client.patch("/v1/merchants/m-1", json={"promise_minutes": None}, headers=auth(MERCHANT_1))
    assert reset.json()["promise_minutes"] is None


class _NetworkLikeStore(MemoryIdempotencyStore):
    """The in-memory store, yielding to the event loop like a Redis round trip would."""

    async def begin(self, scope: str, key: str, request_fingerprint: str, now: int) -> Begin:
        await asyncio.sleep(0.001)
        begun = await super().begin(scope, key, request_fingerprint, now)
        await asyncio.sleep(0.001)
        return begun

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        await asyncio.sleep(0.002)
        await super().complete(scope, key, response)


async def test_concurrent_requests_interleaving_on_a_slow_store_still_create_one_order(
    app: FastAPI, client: httpx.AsyncClient, dispatcher: Dispatcher
) -> None:
    await seed(client)
    app.state.runtime.idempotency = _NetworkLikeStore(ttl_s=3600)
    first = await asyncio.gather(*(place(client, "N-1") for _ in range(20)))
    codes = [r.status_code for r in first]
    assert codes.count(201) == 1 and codes.count(409) == 19  # the others arrived while it was in flight
    retry = await place(client, "N-1")  # a retry after it finished is a replay
    assert (
        retry.status_code == 201 and retry.content == next(r for r in first if r.status_code == 201).content
    )
    assert [o.id for o in dispatcher.store.orders_of_merchant("m-1")] == ["m-1:N-1"]
