"""Webhooks end to end: the real app over each store, a real HTTP receiver on loopback that fails
the first attempts and is sometimes slow, and the README's verification recipe on every delivery."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api import create_app
from api.webhooks.signing import sign
from dispatch import Dispatcher
from tests.api.conftest import (
    ADMIN,
    APP,
    APP_M2,
    AT_M1,
    AT_M2,
    COURIER_1,
    MERCHANT_1,
    Clock,
    auth,
    make_settings,
    place,
    seed,
    start_shift,
)
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.anyio

README = Path(__file__).resolve().parents[2] / "README.md"

FAST = {
    "webhook_allow_private": True,
    "webhook_retry_base_s": 0.05,
    "webhook_retry_factor": 2.0,
    "webhook_attempts": 8,
    "webhook_timeout_s": 0.4,
    "webhook_poll_s": 0.01,
    "webhook_claim_s": 5.0,
}


def readme_verify() -> Callable[..., bool]:
    """The ``verify`` of the README's Python block under the webhook-verify marker."""
    text = README.read_text(encoding="utf-8")
    block = re.search(r"<!-- webhook-verify[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert block is not None, "the README lost its webhook verification example"
    namespace: dict[str, Any] = {}
    exec(compile(block.group(1), "README.md", "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify


def test_the_readme_recipe_accepts_our_signature_and_refuses_tampering_and_replays() -> None:
    verify = readme_verify()
    body = b'{"id": "test-1", "kind": "order.placed"}'
    now = int(time.time())
    assert verify("whsec_abc", sign("whsec_abc", now, body), body)
    assert not verify("whsec_abc", sign("whsec_abc", now, body), body + b" ")  # body changed
    assert not verify("whsec_xyz", sign("whsec_abc", now, body), body)  # another secret
    assert not verify("whsec_abc", sign("whsec_abc", now - 301, body), body)  # a replay, 5 min later
    assert verify("whsec_abc", sign("whsec_abc", now - 299, body), body)
    assert not verify("whsec_abc", "t=1,v2=00", body)


@pytest.fixture
async def served(dispatcher: Dispatcher, clock: Clock) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(make_settings(**FAST), dispatcher=dispatcher, clock=clock)
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as c:
            yield app, c
    finally:
        await runtime.stop()


async def _create(client: httpx.AsyncClient, key: str, url: str, **extra: Any) -> dict[str, Any]:
    r = await client.post("/v1/webhooks", json={"url": url, **extra}, headers=auth(key))
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["secret"].startswith("whsec_")
    return body


def _flaky(path: str, event_id: str, seen: int) -> tuple[int, float]:
    """Fail each event's first 0-2 attempts (by its id), and be too slow for some first attempts."""
    h = int(hashlib.sha256(f"{path}{event_id}".encode()).hexdigest(), 16)
    fails = h % 3
    if seen < fails:
        return (500 if h % 2 else 503), 0.0
    if seen == fails and h % 5 == 0:
        return 200, 0.6  # past the 0.4 s timeout: counted as failed, retried
    return 200, 0.0


async def _wait_for(check: Callable[[], Any], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_every_event_arrives_signed_once_per_attempt_and_only_to_its_tenant(
    served: tuple[FastAPI, httpx.AsyncClient],
) -> None:
    _, client = served
    verify = readme_verify()
    await seed(client)
    # a second courier near each merchant: six orders of one merchant are more than one courier
    # can take in time, and supply admission is on
    await start_shift(client, "c-4", AT_M1)
    await start_shift(client, "c-5", AT_M2)
    before = (await client.get("/v1/events", params={"limit": 1000}, headers=auth(ADMIN))).json()[
        "next_after"
    ]
    with Receiver(_flaky) as receiver:
        hooks = {
            "admin": await _create(client, ADMIN, receiver.url + "/admin"),
            "m1": await _create(client, MERCHANT_1, receiver.url + "/m1"),
            "m2": await _create(
                client, APP_M2, receiver.url + "/m2", event_types=["order.placed", "order.assigned"]
            ),
        }
        keys = {"admin": ADMIN, "m1": MERCHANT_1, "m2": APP_M2}
        for i in range(6):
            assert (await place(client, f"A-{i}", "m-1")).status_code == 201
            assert (await place(client, f"B-{i}", "m-2")).status_code == 201
        assert (await client.post("/v1/dispatch/tick", headers=auth(ADMIN))).status_code == 200
        r = await client.post(
            "/v1/couriers/c-3/shift/start",
            json={"location": {"lat": 52.52, "lng": 13.41}, "duration_minutes": 60},
            headers=auth(ADMIN),
        )
        assert r.status_code == 201  # a courier's event: for the admin's endpoint only

        # what each tenant may see, from the event API with its own key
        expected: dict[str, set[str]] = {}
        for name, key in keys.items():
            page = await client.get("/v1/events", params={"after": before, "limit": 1000}, headers=auth(key))
            events = page.json()["events"]
            wanted = hooks[name]["event_types"]
            expected[name] = {e["id"] for e in events if "*" in wanted or e["kind"] in wanted}
        assert expected["m1"] and expected["m2"] and expected["m1"].isdisjoint(expected["m2"])
        assert expected["m1"] | expected["m2"] < expected["admin"]  # admin also gets courier events

        async def all_arrived() -> bool:
            for name, hook in hooks.items():
                log = (
                    await client.get(
                        f"/v1/webhooks/{hook['id']}/deliveries",
                        params={"limit": 1000},
                        headers=auth(keys[name]),
                    )
                ).json()
                done = {a["event_id"] for a in log["deliveries"] if a["outcome"] == "delivered"}
                if done != expected[name]:
                    return False
            return True

        await _wait_for(all_arrived)
        await asyncio.sleep(0.7)  # a slow answer still being served is recorded too

        for name, hook in hooks.items():
            copies = receiver.served(f"/{name}")
            assert {d.event["id"] for d in copies} == expected[name], name  # all of its events, nothing else
            for d in copies:
                assert verify(hook["secret"], d.headers["Dispatch-Signature"], d.body)
                assert d.headers["Dispatch-Event-Id"] == d.event["id"]
            log = (
                await client.get(
                    f"/v1/webhooks/{hook['id']}/deliveries", params={"limit": 1000}, headers=auth(keys[name])
                )
            ).json()
            attempts = Counter(a["event_id"] for a in log["deliveries"])
            delivered = Counter(a["event_id"] for a in log["deliveries"] if a["outcome"] == "delivered")
            # every copy the receiver got is an attempt of the log: duplicates come only from retries
            # (an attempt may not reach it: a connection that timed out before it was accepted)
            received = Counter(d.event["id"] for d in copies)
            assert all(received[e] <= attempts[e] for e in received), name
            assert set(delivered.values()) == {1}, name  # nothing is sent again after a success
            assert max(attempts.values()) >= 2  # the receiver's failures were retried
            retried = [a for a in log["deliveries"] if a["outcome"] == "retrying"]
            assert retried and all(a["next_attempt_at"] >= a["at"] for a in retried)
            assert any(a["error"] and "within" in a["error"] for a in retried) or name == "m2"


async def test_crud_secret_once_tenants_and_refused_urls(
    served: tuple[FastAPI, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, client = served
    hook = await _create(client, APP_M2, "http://127.0.0.1:9/hook")
    listed = (await client.get("/v1/webhooks", headers=auth(APP_M2))).json()["webhooks"]
    assert [h["id"] for h in listed] == [hook["id"]] and "secret" not in listed[0]
    assert (await client.get("/v1/webhooks", headers=auth(MERCHANT_1))).json()["webhooks"] == []
    assert [h["id"] for h in (await client.get("/v1/webhooks", headers=auth(ADMIN))).json()["webhooks"]] == [
        hook["id"]
    ]
    r = await client.get(
        f"/v1/webhooks/{hook['id']}", headers=auth(APP)
    )  # an app for all merchants is another tenant
    assert r.status_code == 404 and r.json()["code"] == "unknown-webhook"
    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=auth(MERCHANT_1))).status_code == 404
    assert (
        await client.post("/v1/webhooks", json={"url": "https://example.com/h"}, headers=auth(COURIER_1))
    ).status_code == 403
    assert (await client.delete(f"/v1/webhooks/{hook['id']}", headers=auth(APP_M2))).status_code == 204
    assert (await client.get(f"/v1/webhooks/{hook['id']}", headers=auth(APP_M2))).status_code == 404

    r = await client.post(
        "/v1/webhooks",
        json={"url": "https://example.com/h", "event_types": ["order.dlivered"]},
        headers=auth(APP),
    )
    assert r.status_code == 422 and "order.dlivered" in r.json()["detail"]  # a typo would never fire

    # http(s) only, always; private and loopback hosts only when allowed
    for url, words in (
        ("ftp://example.com/h", "http:// or https://"),
        ("https://user:pw@example.com/h", "user name or password"),
    ):
        r = await client.post("/v1/webhooks", json={"url": url}, headers=auth(APP))
        assert (
            r.status_code == 422 and r.json()["code"] == "invalid-webhook-url" and words in r.json()["detail"]
        )
    monkeypatch.setattr(
        app.state.runtime, "settings", make_settings(**{**FAST, "webhook_allow_private": False})
    )
    for url in (
        "http://127.0.0.1:8000/h",
        "http://10.1.2.3/h",
        "http://169.254.169.254/latest",
        "http://[::1]/h",
        "http://localhost/h",
    ):
        r = await client.post("/v1/webhooks", json={"url": url}, headers=auth(APP))
        assert r.status_code == 422, url
        assert "private, loopback or reserved" in r.json()["detail"], r.json()
    assert (await client.get("/v1/webhooks", headers=auth(ADMIN))).json()["webhooks"] == []


async def test_an_endpoint_failing_for_the_disable_period_is_disabled_and_says_so(
    dispatcher: Dispatcher, clock: Clock
) -> None:
    settings = make_settings(**{**FAST, "webhook_disable_after_s": 0.5, "webhook_attempts": 20})
    app = create_app(settings, dispatcher=dispatcher, clock=clock)
    await app.state.runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            await seed(client)
            with Receiver(lambda path, event_id, seen: (500, 0.0)) as receiver:
                hook = await _create(client, APP, receiver.url + "/down")
                assert (await place(client, "A-1", "m-1")).status_code == 201

                async def is_disabled() -> bool:
                    body = (await client.get(f"/v1/webhooks/{hook['id']}", headers=auth(APP))).json()
                    return bool(body["disabled"])

                await _wait_for(is_disabled, 20)
                body = (await client.get(f"/v1/webhooks/{hook['id']}", headers=auth(APP))).json()
                assert (
                    body["failing_since"] is not None and "every delivery failed" in body["disabled_reason"]
                )
                log = (await client.get(f"/v1/webhooks/{hook['id']}/deliveries", headers=auth(APP))).json()
                assert log["deliveries"][0]["outcome"] == "gave-up"
                assert all(a["status_code"] == 500 for a in log["deliveries"])
                served = len(receiver.deliveries)
                assert (await place(client, "A-2", "m-1")).status_code == 201
                await asyncio.sleep(0.5)
                assert len(receiver.deliveries) == served  # nothing more goes to a disabled endpoint
    finally:
        await app.state.runtime.stop()


async def test_a_disabled_endpoint_enabled_again_receives_the_events_from_then_on(
    dispatcher: Dispatcher, clock: Clock
) -> None:
    settings = make_settings(**{**FAST, "webhook_disable_after_s": 0.5, "webhook_attempts": 20})
    app = create_app(settings, dispatcher=dispatcher, clock=clock)
    await app.state.runtime.start()
    up = False
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            await seed(client)
            with Receiver(lambda path, event_id, seen: (200 if up else 500, 0.0)) as receiver:
                hook = await _create(client, APP, receiver.url + "/flaky")
                url = f"/v1/webhooks/{hook['id']}"
                assert (await place(client, "A-1", "m-1")).status_code == 201

                async def is_disabled() -> bool:
                    return bool((await client.get(url, headers=auth(APP))).json()["disabled"])

                await _wait_for(is_disabled, 20)
                assert (await place(client, "A-2", "m-1")).status_code == 201  # while disabled: not sent
                # another tenant cannot enable it
                assert (await client.post(url + "/enable", headers=auth(APP_M2))).status_code == 404
                assert (await client.get(url, headers=auth(APP))).json()["disabled"] is True
                up = True
                r = await client.post(url + "/enable", headers=auth(APP))
                assert r.status_code == 200, r.text
                body = r.json()
                assert (
                    body["disabled"],
                    body["disabled_at"],
                    body["disabled_reason"],
                    body["failing_since"],
                ) == (
                    False,
                    None,
                    None,
                    None,
                )
                assert (
                    await client.post(url + "/enable", headers=auth(APP))
                ).json() == body  # harmless twice
                assert (await place(client, "A-3", "m-1")).status_code == 201

                async def a3_delivered() -> bool:
                    return any(d.status == 200 and b"A-3" in d.body for d in receiver.deliveries)

                await _wait_for(a3_delivered, 20)
                # the event written while it was disabled was never sent (an earlier event's retry
                # still due may be: delivery is at least once)
                assert not any(b"A-2" in d.body for d in receiver.deliveries)
    finally:
        await app.state.runtime.stop()


async def test_deliveries_wait_while_a_request_is_in_flight(dispatcher: Dispatcher, clock: Clock) -> None:
    """Delivery has a lower priority than requests: with a request being worked on, a step waits
    (here up to its 10 s poll interval) and goes on as soon as none is."""
    app = create_app(make_settings(**{**FAST, "webhook_poll_s": 10.0}), dispatcher=dispatcher, clock=clock)
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            await seed(client)
            with Receiver() as receiver:
                await _create(client, ADMIN, receiver.url + "/all")
                assert runtime.requests.count == 0  # every request above has been answered
                runtime.requests.enter()  # a request being worked on
                assert (await place(client, "A-1", "m-1")).status_code == 201
                runtime.relay.nudge()
                await asyncio.sleep(1.0)
                assert receiver.served("/all") == []
                runtime.requests.leave()

                async def arrived() -> bool:
                    return any(d.event["kind"] == "order.placed" for d in receiver.served("/all"))

                await _wait_for(arrived, 5)
    finally:
        await runtime.stop()


async def test_deliveries_go_on_under_a_steady_load(dispatcher: Dispatcher, clock: Clock) -> None:
    """With requests always in flight, each step is deferred by at most its poll interval."""
    app = create_app(make_settings(**{**FAST, "webhook_poll_s": 0.2}), dispatcher=dispatcher, clock=clock)
    runtime = app.state.runtime
    await runtime.start()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as client:
            await seed(client)
            with Receiver() as receiver:
                await _create(client, ADMIN, receiver.url + "/all")
                runtime.requests.enter()  # never answered
                for minutes in range(11, 16):  # five events (orders would meet supply admission)
                    r = await client.patch(
                        "/v1/merchants/m-1", json={"prep_minutes": minutes}, headers=auth(ADMIN)
                    )
                    assert r.status_code == 200, r.text

                async def arrived() -> bool:
                    kinds = [d.event["kind"] for d in receiver.served("/all")]
                    return kinds.count("merchant.updated") == 5

                await _wait_for(arrived, 10)
                runtime.requests.leave()
    finally:
        await runtime.stop()


async def test_a_streamed_answer_is_in_flight_only_until_it_starts() -> None:
    """An event stream stays open for long: it must not hold deliveries back."""
    from api.metrics import MetricsMiddleware, Registry, RequestsInFlight

    in_flight = RequestsInFlight()
    started, finish = asyncio.Event(), asyncio.Event()
    seen: list[int] = []

    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        seen.append(in_flight.count)  # while the request is worked on
        await send({"type": "http.response.start", "status": 200, "headers": []})
        seen.append(in_flight.count)  # streaming
        started.set()
        await finish.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    middleware = MetricsMiddleware(streaming, Registry(), in_flight)

    async def send(message: Any) -> None:
        pass

    scope = {"type": "http", "method": "GET", "path": "/v1/events/stream"}
    task = asyncio.create_task(middleware(scope, None, send))
    await started.wait()
    assert seen == [1, 0] and in_flight.count == 0
    finish.set()
    await task
    assert in_flight.count == 0

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("no answer at all")

    with pytest.raises(RuntimeError):
        await MetricsMiddleware(failing, Registry(), in_flight)(scope, None, send)
    assert in_flight.count == 0  # left all the same
