"""The public tracking page: a token per order that reads that order and nothing else, its JSON
and stream, and the page itself in headless Chromium, updated live."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from fastapi import FastAPI

from api.tracking import TrackingTokens
from tests.api.conftest import ADMIN, COURIER_1, Clock, auth, place, seed
from tests.browser import open_page

pytestmark = pytest.mark.anyio


def test_a_token_names_its_order_and_cannot_be_changed_into_another() -> None:
    tokens = TrackingTokens(b"0123456789abcdef0123456789abcdef")
    a, b = tokens.token_for("m-1:A-1"), tokens.token_for("m-2:B-1")
    assert tokens.order_of(a) == "m-1:A-1" and tokens.order_of(b) == "m-2:B-1"
    forged = b.split(".")[0] + "." + a.split(".")[1]  # B's id with A's signature
    assert tokens.order_of(forged) is None
    assert tokens.order_of(a[:-1] + ("A" if a[-1] != "A" else "B")) is None
    assert TrackingTokens(b"another-secret-of-32-bytes------").order_of(a) is None
    assert tokens.order_of("not a token") is None


async def test_the_token_reads_one_order_and_no_courier_details(
    client: httpx.AsyncClient, clock: Clock
) -> None:
    await seed(client)
    a = (await place(client, "A-1", "m-1")).json()
    b = (await place(client, "B-1", "m-2")).json()
    url_a, url_b = a["tracking_url"], b["tracking_url"]
    assert url_a.startswith("/track/") and url_a != url_b
    token_a, token_b = url_a.removeprefix("/track/"), url_b.removeprefix("/track/")
    r = await client.get(f"/v1/tracking/{token_a}")  # no key
    assert r.status_code == 200, r.text
    state = r.json()
    assert state["status"] == "placed" and state["dropoff_at"] is not None and state["courier"] is None
    assert state["dropoff"] == a["dropoff"]
    assert (await client.get(f"/v1/orders/{a['id']}", headers=auth(ADMIN))).json()["tracking_url"] == url_a

    clock.advance(540)  # the food is nearly ready: the courier is sent
    assert (await client.post("/v1/dispatch/tick", headers=auth(ADMIN))).status_code == 200
    state = (await client.get(f"/v1/tracking/{token_a}")).json()
    assert state["status"] == "assigned" and state["courier"] is not None
    text = json.dumps(state) + (await client.get(url_a)).text
    for secret in ("c-1", "c-2", "courier_id", b["id"], "B-1", "m-2"):
        assert secret not in text, secret  # nothing of the courier but its position, nothing of B

    forged = token_b.split(".")[0] + "." + token_a.split(".")[1]
    # another first character of the signature: other leading bits of its first byte (the last
    # characters may carry only padding bits, or already be the replacement)
    body, signature = token_a.split(".")
    tampered = body + "." + ("B" if signature[0] != "B" else "C") + signature[1:]
    for bad in (forged, tampered, "x" * 30 + "." + "y" * 22):
        r = await client.get(f"/v1/tracking/{bad}")
        assert r.status_code == 404 and r.json()["code"] == "unknown-tracking-token", bad
        assert (await client.get(f"/track/{bad}")).status_code == 404
    assert (await client.get("/v1/tracking/short")).status_code == 422

    # the stream starts with the state, and ends with the delivery
    async with client.stream("GET", f"/v1/tracking/{token_a}/stream") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if line.startswith("data: "):
                assert json.loads(line[6:])["status"] == "assigned"
                break


def test_the_page_in_chromium_shows_status_and_eta_and_follows_the_order_live(
    served_app: tuple[str, FastAPI, Clock],
) -> None:
    base, _, clock = served_app

    async def setup() -> tuple[str, str]:
        async with httpx.AsyncClient(base_url=base) as client:
            await seed(client)
            a = (await place(client, "A-1", "m-1")).json()
            b = (await place(client, "B-1", "m-2")).json()
            clock.advance(540)  # the food is nearly ready: the courier is sent
            assert (await client.post("/v1/dispatch/tick", headers=auth(ADMIN))).status_code == 200
            return a["tracking_url"], b["id"]

    url, other_id = asyncio.run(setup())

    def pick_up() -> None:
        with httpx.Client(base_url=base, headers=auth(COURIER_1)) as c:
            clock.advance(300)
            assert c.post("/v1/couriers/c-1/events", json={"type": "arrived"}).status_code == 200
            r = c.post("/v1/couriers/c-1/events", json={"type": "picked_up", "order_id": "m-1:A-1"})
            assert r.status_code == 200, r.text

    before = open_page(
        base + url,
        expression="[document.querySelector('#status').textContent,"
        " document.querySelector('#eta').textContent,"
        " document.querySelector('#courier').getAttribute('visibility'), document.body.innerText]",
    )
    status, eta, courier, text = before.evaluated
    assert status == "A courier is on the way to the restaurant"
    assert eta.startswith("Arrives in about ") and " min (" in eta
    assert courier == "visible"
    assert other_id not in text and "c-1" not in text
    assert not before.exceptions and not before.console_errors
    assert all(r.startswith(base) for r in before.requests), before.requests  # no tiles, no CDN

    after = open_page(
        base + url,
        then=pick_up,
        wait_for="document.body.dataset.status === 'picked_up'",
        expression="document.querySelector('#status').textContent",
    )
    assert after.evaluated == "Your order is on its way"  # pushed by the stream, no reload
    assert not after.exceptions
