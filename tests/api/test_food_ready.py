"""``POST /v1/orders/{id}/ready``: the merchant says the food is ready (merchant or admin key)."""

from __future__ import annotations

import httpx
import pytest

from dispatch import Dispatcher
from dispatch.estimates import learned_delay_s
from tests.api.conftest import APP, COURIER_1, MERCHANT_1, MERCHANT_2, Clock, auth, place, seed

pytestmark = pytest.mark.anyio


async def test_food_ready_teaches_the_preparation_time(
    client: httpx.AsyncClient, clock: Clock, dispatcher: Dispatcher
) -> None:
    await seed(client)
    r = await place(client, "R-1")
    assert r.status_code == 201, r.text
    order = dispatcher.order("m-1:R-1")
    clock.now = order.ready_at + 180  # three minutes late
    # only the merchant (or an admin) says so; another merchant's key does not see the order
    assert (await client.post("/v1/orders/m-1:R-1/ready", headers=auth(APP))).status_code == 403
    assert (await client.post("/v1/orders/m-1:R-1/ready", headers=auth(COURIER_1))).status_code == 403
    assert (await client.post("/v1/orders/m-1:R-1/ready", headers=auth(MERCHANT_2))).status_code == 404
    assert learned_delay_s(dispatcher, "m-1", order.ready_at) == 0
    ok = await client.post("/v1/orders/m-1:R-1/ready", headers=auth(MERCHANT_1))
    assert ok.status_code == 200, ok.text
    assert ok.json()["id"] == "m-1:R-1"
    # one exact observation, shrunk towards the city's figure (no other observation yet: itself)
    assert learned_delay_s(dispatcher, "m-1", order.ready_at) == 180
    missing = await client.post("/v1/orders/m-1:NOPE/ready", headers=auth(MERCHANT_1))
    assert missing.status_code == 404
    assert (await client.post("/v1/orders/m-1:R-1/cancel", headers=auth(APP))).status_code == 200
    closed = await client.post("/v1/orders/m-1:R-1/ready", headers=auth(MERCHANT_1))
    assert closed.status_code == 409 and closed.json()["code"] == "illegal-transition"
