"""What integrators expect over HTTP: statuses, courier offers, quotes used once, lookups by the
client's own id, contacts kept out of logs and events, the delivery PIN, the strict courier
state machine and cancellations with a reason."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import create_app
from dispatch import Dispatcher
from tests.api.conftest import (
    ADMIN,
    APP,
    APP_M2,
    COURIER_1,
    COURIER_2,
    MERCHANT_1,
    NEAR_M1,
    Clock,
    auth,
    make_settings,
    place,
    seed,
)

pytestmark = pytest.mark.anyio

C1, C2 = auth(COURIER_1), auth(COURIER_2)


async def _tick(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    r = await client.post("/v1/dispatch/tick", headers=auth(ADMIN))
    assert r.status_code == 200, r.text
    assignments: list[dict[str, Any]] = r.json()["assignments"]
    return assignments


async def _event(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    courier = "c-1" if headers == C1 else "c-2"
    return await client.post(f"/v1/couriers/{courier}/events", json=body, headers=headers)


async def _order(client: httpx.AsyncClient, order_id: str) -> dict[str, Any]:
    r = await client.get(f"/v1/orders/{order_id}", headers=auth(APP))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _assigned_to_c1(
    client: httpx.AsyncClient, clock: Clock, external_id: str = "A-1", **extra: Any
) -> str:
    await seed(client)
    r = await place(client, external_id, **extra)
    assert r.status_code == 201, r.text
    clock.advance(480)
    assert await _tick(client) == [{"courier_id": "c-1", "order_ids": [f"m-1:{external_id}"]}]
    return f"m-1:{external_id}"


# -- statuses and the order view ---------------------------------------------------------------


async def test_an_order_walks_through_the_integrators_statuses(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await seed(client)
    r = await place(client, "S-1")
    assert r.json()["status"] == "created" and r.json()["courier_imminent"] is False
    clock.advance(480)
    await _tick(client)
    seen = [(await _order(client, "m-1:S-1"))["status"]]
    far = await _order(client, "m-1:S-1")
    # c-1 is 400 m from m-1 and has minutes to go: not imminent; its position is 480 s old
    assert far["courier_imminent"] is False and far["courier_position"]["age_s"] == 480
    steps: list[dict[str, Any]] = [
        {"type": "arrived"},
        {"type": "picked_up", "order_id": "m-1:S-1"},
        {"type": "arrived"},
        {"type": "delivered", "order_id": "m-1:S-1"},
    ]
    for step in steps:
        clock.advance(120)
        r = await _event(client, C1, **step)
        assert r.status_code == 200, r.text
        seen.append((await _order(client, "m-1:S-1"))["status"])
        if step == steps[0]:
            assert (await _order(client, "m-1:S-1"))["courier_imminent"] is True  # at the merchant
    assert seen == [
        "enroute_to_pickup",
        "arrived_at_pickup",
        "enroute_to_dropoff",
        "arrived_at_dropoff",
        "delivered",
    ]
    events = (await client.get("/v1/events", headers=auth(ADMIN))).json()["events"]
    said = [
        e["data"].get("status")
        for e in events
        if (e["order_id"] == "m-1:S-1" or e["kind"] == "courier.arrived") and e["kind"] != "order.eta_changed"
    ]
    assert said == [
        "created",
        "enroute_to_pickup",
        "arrived_at_pickup",
        "enroute_to_dropoff",
        "arrived_at_dropoff",
        "delivered",
    ]


async def test_out_of_order_courier_events_are_409_with_the_next_step(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    order_id = await _assigned_to_c1(client, clock)
    before = (await client.get("/v1/events", headers=auth(ADMIN))).json()["events"]
    for body in ({"type": "picked_up", "order_id": order_id}, {"type": "delivered", "order_id": order_id}):
        r = await _event(client, C1, **body)
        assert r.status_code == 409, r.text
        problem = r.json()
        assert problem["type"].endswith("/illegal-transition")
        assert problem["expected_next"]["event"] == "arrived" and problem["expected_next"]["stop"] == "pickup"
    assert (await client.get("/v1/events", headers=auth(ADMIN))).json()["events"] == before
    assert (await _order(client, order_id))["status"] == "enroute_to_pickup"


# -- offers --------------------------------------------------------------------------------------


@pytest.fixture
async def offering(dispatcher: Dispatcher, clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """The API over a city that makes offers (30 s to answer)."""
    d = Dispatcher(store=dispatcher.store, config=replace(dispatcher.config, auto_accept=False))
    app: FastAPI = create_app(make_settings(), dispatcher=d, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
        yield c


async def _offer(client: httpx.AsyncClient, clock: Clock) -> str:
    await seed(client)
    assert (await place(client, "O-1")).status_code == 201
    clock.advance(480)
    assert await _tick(client) == [{"courier_id": "c-1", "order_ids": ["m-1:O-1"]}]
    offers = (await client.get("/v1/couriers/c-1/offers", headers=C1)).json()
    assert [(o["status"], o["order_ids"], o["expires_at"]) for o in offers] == [
        ("pending", ["m-1:O-1"], clock.now + 30)
    ]
    assert (await _order(client, "m-1:O-1"))["status"] == "created"  # not confirmed yet
    offer_id: str = offers[0]["offer_id"]
    return offer_id


async def test_a_declined_offer_goes_to_another_courier(offering: httpx.AsyncClient, clock: Clock) -> None:
    offer_id = await _offer(offering, clock)
    r = await offering.post(f"/v1/couriers/c-1/offers/{offer_id}/decline", headers=C1)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "declined" and r.json()["route"]["stops"] == []
    clock.advance(60)
    assert await _tick(offering) == [{"courier_id": "c-2", "order_ids": ["m-1:O-1"]}]
    kinds = [e["kind"] for e in (await offering.get("/v1/events", headers=auth(ADMIN))).json()["events"]]
    assert "order.offer_declined" in kinds


async def test_an_unanswered_offer_goes_to_another_courier(offering: httpx.AsyncClient, clock: Clock) -> None:
    offer_id = await _offer(offering, clock)
    clock.advance(30)
    assert await _tick(offering) == [{"courier_id": "c-2", "order_ids": ["m-1:O-1"]}]
    late = await offering.post(f"/v1/couriers/c-1/offers/{offer_id}/accept", headers=C1)
    assert late.status_code == 404 and late.json()["type"].endswith("/unknown-offer")


async def test_accepting_twice_is_harmless(offering: httpx.AsyncClient, clock: Clock) -> None:
    offer_id = await _offer(offering, clock)
    first = await offering.post(f"/v1/couriers/c-1/offers/{offer_id}/accept", headers=C1)
    assert first.status_code == 200 and first.json()["status"] == "accepted"
    events = (await offering.get("/v1/events", headers=auth(ADMIN))).json()["events"]
    again = await offering.post(f"/v1/couriers/c-1/offers/{offer_id}/accept", headers=C1)
    assert again.status_code == 200 and again.json() == first.json()
    assert (await offering.get("/v1/events", headers=auth(ADMIN))).json()["events"] == events
    assert (await _order(offering, "m-1:O-1"))["status"] == "enroute_to_pickup"
    assert (await offering.get("/v1/couriers/c-1/offers", headers=C1)).json() == []
    # another courier's key cannot answer c-1's offers
    other = await offering.post(f"/v1/couriers/c-1/offers/{offer_id}/decline", headers=C2)
    assert other.status_code == 403


@pytest.mark.parametrize(
    "offer_id",
    [
        "of-1",  # malformed
        "of-123-zzzzzzzzzz",  # not hex
        "of-123-0123456789",  # well-formed, never made
    ],
)
async def test_bad_offer_ids(offering: httpx.AsyncClient, clock: Clock, offer_id: str) -> None:
    await _offer(offering, clock)
    r = await offering.post(f"/v1/couriers/c-1/offers/{offer_id}/accept", headers=C1)
    assert r.status_code in (404, 422) and r.headers["content-type"] == "application/problem+json"
    assert (await offering.get("/v1/couriers/c-1/offers", headers=C1)).json()[0]["status"] == "pending"


# -- quotes and lookups ----------------------------------------------------------------------


async def test_a_quote_places_one_order(client: httpx.AsyncClient) -> None:
    await seed(client)
    quote = (
        await client.post("/v1/quotes", json={"merchant_id": "m-1", "dropoff": NEAR_M1}, headers=auth(APP))
    ).json()

    async def order(external_id: str, key: str) -> httpx.Response:
        return await client.post(
            "/v1/orders",
            json={"external_id": external_id, "quote_id": quote["id"]},
            headers={**auth(APP), "Idempotency-Key": key},
        )

    assert (await place(client, "Q-2")).status_code == 201
    refused = await order("Q-2", "k-dup")  # a duplicate external id: refused, the quote stays unused
    assert refused.status_code == 409 and refused.json()["type"].endswith("/duplicate-id")
    first = await order("Q-1", "k-1")
    assert first.status_code == 201, first.text
    second = await order("Q-3", "k-2")
    assert second.status_code == 409 and second.json()["type"].endswith("/quote-used")
    assert second.json()["order_id"] == "m-1:Q-1"
    replay = await order("Q-1", "k-1")  # a retry of the first is its answer again
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"


async def test_an_order_is_found_by_merchant_and_external_id(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert (await place(client, "A-1001")).status_code == 201
    found = await client.get(
        "/v1/orders", params={"merchant_id": "m-1", "external_id": "A-1001"}, headers=auth(APP)
    )
    assert found.status_code == 200 and found.json()["id"] == "m-1:A-1001"
    # another tenant: the same 404 as no order
    hidden = await client.get(
        "/v1/orders", params={"merchant_id": "m-1", "external_id": "A-1001"}, headers=auth(APP_M2)
    )
    assert hidden.status_code == 404
    # the external id alone names no order, and the answer says what does
    alone = await client.get("/v1/orders/A-1001", headers=auth(APP))
    assert alone.status_code == 422
    assert "<merchant_id>:<external_id>" in alone.text and "external_id=" in alone.text


# -- contacts --------------------------------------------------------------------------------

DOOR = {"name": "Ada Lovelace", "phone": "+49 30 1234567", "instructions": "2nd floor, ring twice"}
KITCHEN = {"name": "Chef Bo", "phone": "+49 30 7654321", "instructions": "back door"}
SECRETS = ("Ada Lovelace", "1234567", "ring twice", "Chef Bo", "7654321", "back door")


async def test_contacts_are_shown_to_those_allowed_and_never_logged(
    client: httpx.AsyncClient, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    order_id = await _assigned_to_c1(client, clock, pickup_contact=KITCHEN, dropoff_contact=DOOR)
    for key in (APP, MERCHANT_1, COURIER_1, ADMIN):
        seen = (await client.get(f"/v1/orders/{order_id}", headers=auth(key))).json()
        assert seen["dropoff_contact"] == DOOR and seen["pickup_contact"] == KITCHEN
    for key in (APP_M2, COURIER_2):
        assert (await client.get(f"/v1/orders/{order_id}", headers=auth(key))).status_code == 404
    # the paths that log: an error on the order, a cancelled order, a tick
    assert (
        await client.post(f"/v1/orders/{order_id}/cancel", json={"reason": "Bad Reason"}, headers=auth(APP))
    ).status_code == 422
    await client.post(f"/v1/orders/{order_id}/cancel", headers=auth(APP))
    await _tick(client)
    events = (await client.get("/v1/events", headers=auth(ADMIN))).text
    board = (await client.get("/v1/merchants/m-1/orders", headers=auth(MERCHANT_1))).text
    for secret in SECRETS:
        assert secret not in caplog.text and secret not in events and secret not in board


@pytest.mark.parametrize(
    "contact",
    [
        {"phone": "call me"},  # not a phone number
        {"name": ""},  # empty
        {"instructions": "x" * 501},  # too long
        {"email": "a@b.c"},  # unknown field
    ],
)
async def test_bad_contacts_are_refused(client: httpx.AsyncClient, contact: dict[str, Any]) -> None:
    await seed(client)
    r = await place(client, "B-1", dropoff_contact=contact)
    assert r.status_code == 422
    assert any("/dropoff_contact" in e["pointer"] for e in r.json()["errors"])


# -- delivery PIN ----------------------------------------------------------------------------


async def _at_the_door(client: httpx.AsyncClient, clock: Clock, **extra: Any) -> tuple[str, str | None]:
    """m-1 asks for PINs; an order is carried to its door. Returns its id and PIN."""
    await seed(client)
    r = await client.patch("/v1/merchants/m-1", json={"delivery_pin": True}, headers=auth(ADMIN))
    assert r.status_code == 200 and r.json()["delivery_pin"] is True, r.text
    created = await place(client, "P-1", **extra)
    assert created.status_code == 201, created.text
    pin: str | None = created.json()["delivery_pin"]
    order_id = "m-1:P-1"
    assert (await _order(client, order_id))["delivery_pin"] is None  # only at creation
    clock.advance(480)
    await _tick(client)
    for body in ({"type": "arrived"}, {"type": "picked_up", "order_id": order_id}, {"type": "arrived"}):
        clock.advance(120)
        assert (await _event(client, C1, **body)).status_code == 200
    return order_id, pin


async def test_the_right_pin_delivers_and_a_wrong_one_is_counted(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    order_id, pin = await _at_the_door(client, clock)
    assert pin is not None and len(pin) == 4 and pin.isdigit()
    wrong = f"{(int(pin) + 1) % 10_000:04d}"
    r = await _event(client, C1, type="delivered", order_id=order_id, pin=wrong)
    assert r.status_code == 422 and r.json()["type"].endswith("/wrong-pin") and r.json()["attempts_left"] == 4
    r = await _event(client, C1, type="delivered", order_id=order_id)
    assert r.status_code == 422 and r.json()["attempts_left"] == 3
    assert (await _order(client, order_id))["status"] == "arrived_at_dropoff"
    r = await _event(client, C1, type="delivered", order_id=order_id, pin=pin)
    assert r.status_code == 200 and (await _order(client, order_id))["status"] == "delivered"


async def test_too_many_wrong_pins_are_429(client: httpx.AsyncClient, clock: Clock) -> None:
    order_id, pin = await _at_the_door(client, clock)
    assert pin is not None
    wrong = f"{(int(pin) + 1) % 10_000:04d}"
    for _ in range(5):
        assert (await _event(client, C1, type="delivered", order_id=order_id, pin=wrong)).status_code == 422
    r = await _event(client, C1, type="delivered", order_id=order_id, pin=pin)
    assert r.status_code == 429 and r.json()["type"].endswith("/too-many-pin-attempts")
    assert int(r.headers["retry-after"]) == 300
    clock.advance(300)
    assert (await _event(client, C1, type="delivered", order_id=order_id, pin=pin)).status_code == 200


async def test_contactless_waives_the_pin(client: httpx.AsyncClient, clock: Clock) -> None:
    order_id, pin = await _at_the_door(client, clock, contactless=True)
    assert pin is None and (await _order(client, order_id))["contactless"] is True
    assert (await _event(client, C1, type="delivered", order_id=order_id)).status_code == 200


# -- cancellations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "body", "by"),
    [
        (APP, None, "customer"),  # an app cancels for its customer
        (MERCHANT_1, {"reason": "store_closed"}, "merchant"),
        (ADMIN, {"reason": "courier_accident", "cancelled_by": "courier"}, "courier"),  # an operator says who
    ],
)
async def test_a_cancellation_says_why_and_who(
    client: httpx.AsyncClient, clock: Clock, key: str, body: dict[str, str] | None, by: str
) -> None:
    order_id = await _assigned_to_c1(client, clock)
    r = await client.post(f"/v1/orders/{order_id}/cancel", json=body, headers=auth(key))
    assert r.status_code == 200, r.text
    reason = (body or {}).get("reason", "unspecified")
    assert (r.json()["status"], r.json()["cancel_reason"], r.json()["cancelled_by"]) == (
        "cancelled",
        reason,
        by,
    )
    event = (await client.get("/v1/events", headers=auth(ADMIN))).json()["events"][-1]
    assert event["kind"] == "order.cancelled" and event["data"] == {
        "reason": reason,
        "by": by,
        "status": "cancelled",
    }


async def test_only_an_operator_says_on_whose_behalf(client: httpx.AsyncClient, clock: Clock) -> None:
    order_id = await _assigned_to_c1(client, clock)
    r = await client.post(
        f"/v1/orders/{order_id}/cancel", json={"cancelled_by": "operator"}, headers=auth(APP)
    )
    assert r.status_code == 403
    assert (await _order(client, order_id))["status"] == "enroute_to_pickup"
