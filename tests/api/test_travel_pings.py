"""Position pings over HTTP teach travel times: ``PUT /v1/couriers/{id}/position`` on a ride
the engine noted (here from the merchant to the customer's door) learns the stretch since the
ride's checkpoint, over in-memory state and over Redis."""

from __future__ import annotations

import json
import math

import httpx
import pytest

from dispatch import Dispatcher, Location
from dispatch.estimates import Leg
from dispatch.timing import leave_s
from tests.api.conftest import COURIER_1, M1, NEAR_M1, Clock, auth
from tests.api.test_orders import _assigned

pytestmark = pytest.mark.anyio


def _hour_table(d: Dispatcher, at: int) -> tuple[int, float]:
    raw = d.store.learned([f"travel:h{(at // 3600) % 24}"])
    if not raw:
        return 0, 0.0
    n, total = json.loads(next(iter(raw.values())))["all"]
    return int(n), float(total)


async def test_a_position_ping_on_the_way_to_the_door_teaches_travel(
    client: httpx.AsyncClient, clock: Clock, dispatcher: Dispatcher
) -> None:
    order_id = await _assigned(client, clock)
    h = auth(COURIER_1)
    clock.advance(100)
    arrived = await client.post("/v1/couriers/c-1/events", json={"type": "arrived"}, headers=h)
    assert arrived.status_code == 200, arrived.text
    clock.advance(60)
    picked = await client.post(
        "/v1/couriers/c-1/events", json={"type": "picked_up", "order_id": order_id}, headers=h
    )
    assert picked.status_code == 200, picked.text
    leaves = clock.now + leave_s(dispatcher.config.pickup_service_s)
    merchant, door = Location(**M1), Location(**NEAR_M1)
    assert dispatcher.store.learned(["leg:c-1"]) == {"leg:c-1": Leg(merchant, leaves, door).dump()}
    before = _hour_table(dispatcher, leaves)

    # half way to the door, at 1.3x the base model's time
    half = Location((M1["lat"] + NEAR_M1["lat"]) / 2, (M1["lng"] + NEAR_M1["lng"]) / 2)
    speed = dispatcher.courier("c-1").speed_mps
    base_s = dispatcher.travel.travel_s(merchant, half, speed)
    assert base_s >= 120
    clock.now = leaves + round(base_s * 1.3)
    r = await client.put("/v1/couriers/c-1/position", json={"lat": half.lat, "lng": half.lng}, headers=h)
    assert r.status_code == 204
    n, total = _hour_table(dispatcher, leaves)
    assert n == before[0] + 1
    assert total - before[1] == pytest.approx(math.log(round(base_s * 1.3) / base_s))
    assert dispatcher.store.learned(["leg:c-1"]) == {"leg:c-1": Leg(half, clock.now, door).dump()}

    # standing there a minute later teaches nothing and keeps the checkpoint
    clock.advance(60)
    r = await client.put("/v1/couriers/c-1/position", json={"lat": half.lat, "lng": half.lng}, headers=h)
    assert r.status_code == 204
    assert _hour_table(dispatcher, leaves) == (n, total)
    assert dispatcher.store.learned(["leg:c-1"]) == {"leg:c-1": Leg(half, clock.now - 60, door).dump()}
