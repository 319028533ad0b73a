"""Supply-aware admission over HTTP: 422 ``no-courier-capacity`` with the numbers, or a quote
offering the earliest feasible scheduled window instead, and a 201 within its deadline."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from api import create_app
from dispatch import DispatchConfig, Dispatcher
from tests.api.conftest import ADMIN, APP, NEAR_M1, Clock, auth, make_settings, place
from tests.conftest import make_store

pytestmark = pytest.mark.anyio

FAR_COURIER = {"lat": 52.5200, "lng": 13.4500}  # ~3 km east of m-1


async def _city(client: httpx.AsyncClient, promise_minutes: int) -> None:
    r = await client.post(
        "/v1/merchants",
        json={
            "id": "m-1",
            "location": {"lat": 52.5200, "lng": 13.4050},
            "delivery_area": {"radius_m": 3000},
            "prep_minutes": 1,
            "promise_minutes": promise_minutes,
        },
        headers=auth(ADMIN),
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        "/v1/couriers/c-1/shift/start",
        json={"location": FAR_COURIER, "duration_minutes": 240},
        headers=auth(ADMIN),
    )
    assert r.status_code == 201, r.text


@pytest.fixture(params=[False, True], ids=["refuse", "offer"])
def app(clock: Clock, request: pytest.FixtureRequest) -> FastAPI:
    config = DispatchConfig(city="test", supply_admission=True, offer_schedule_when_full=request.param)
    d = Dispatcher(store=make_store("memory", "test", request), config=config)
    return create_app(make_settings(), dispatcher=d, clock=clock)


async def test_full_city_refuses_or_offers_a_window(
    client: httpx.AsyncClient, app: FastAPI, clock: Clock
) -> None:
    offers = app.state.runtime.dispatcher.config.offer_schedule_when_full
    await _city(client, promise_minutes=15)  # the only courier is ~15 min of riding away
    q = await client.post("/v1/quotes", json={"merchant_id": "m-1", "dropoff": NEAR_M1}, headers=auth(APP))
    if offers:
        assert q.status_code == 201, q.text
        body = q.json()
        assert body["offered_instead"] and body["scheduled"]
        assert body["dropoff_window"]["start_at"] > clock.now + 600
        assert body["dropoff_eta_at"] <= body["deadline_at"]
    else:
        assert q.status_code == 422 and q.json()["code"] == "no-courier-capacity", q.text
        assert q.json()["late_s"] > 0 and q.json()["earliest_dropoff"] > clock.now + 600
    r = await place(client, "A-1")
    assert r.status_code == 422 and r.json()["code"] == "no-courier-capacity", r.text


async def test_serviceability_says_no_courier_can_deliver(client: httpx.AsyncClient, clock: Clock) -> None:
    """Not a 422: "no courier can keep the promise" is an answer of serviceability, with the numbers."""
    await _city(client, promise_minutes=15)  # the only courier is ~15 min of riding away
    r = await client.get("/v1/merchants/m-1/serviceability", params=NEAR_M1, headers=auth(APP))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["serviceable"] is False and body["reason"] == "no-courier-capacity", body
    assert body["late_s"] > 0 and body["deadline_at"] == clock.now + 15 * 60
    r = await client.post("/v1/couriers/c-1/shift/end", headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    r = await client.get("/v1/merchants/m-1/serviceability", params=NEAR_M1, headers=auth(APP))
    body = r.json()
    assert (r.status_code, body["serviceable"], body["reason"]) == (200, False, "no-courier-capacity")
    assert body["late_s"] is None  # no courier at all: no earliest drop-off to be late by


async def test_a_201_is_within_its_deadline(client: httpx.AsyncClient, clock: Clock) -> None:
    await _city(client, promise_minutes=40)
    r = await place(client, "A-1")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["eta"]["dropoff_at"] <= body["deadline_at"]
