"""Health, metrics, stats, the event stream and the background tick."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx
import pytest

from api import create_app
from dispatch import Dispatcher, Event
from dispatch.redis_store import RedisStore
from tests.api.conftest import (
    ADMIN,
    ANALYST,
    COURIER_2,
    MERCHANT_1,
    Clock,
    auth,
    make_settings,
    metric,
    place,
    seed,
)

pytestmark = pytest.mark.anyio


async def test_healthz_needs_no_key(client: httpx.AsyncClient, dispatcher: Dispatcher) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "failing_ticks": 0,
        "city": "default",
        "background_tick": False,
        "last_tick_at": None,
        # with shared state, a process that does not hold the city's lease is a standby
        "dispatcher": "standby" if isinstance(dispatcher.store, RedisStore) else "embedded",
    }


async def test_metrics_in_prometheus_text_format(client: httpx.AsyncClient, clock: Clock) -> None:
    await seed(client)
    await place(client, "M-1")
    clock.advance(540)
    await client.post("/v1/dispatch/tick", headers=auth(ADMIN))
    await client.get("/v1/orders/m-1:nope", headers=auth(ADMIN))
    r = await client.get("/metrics", headers=auth(ANALYST))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert metric(text, "dispatch_http_requests_total", method="POST", route="/v1/orders", status="201") == 1
    assert (
        metric(
            text, "dispatch_http_requests_total", method="GET", route="/v1/orders/{order_id}", status="404"
        )
        == 1
    )
    assert (
        metric(text, "dispatch_http_request_duration_seconds_count", method="POST", route="/v1/merchants")
        == 2
    )
    assert (
        metric(
            text,
            "dispatch_http_request_duration_seconds_bucket",
            method="POST",
            route="/v1/merchants",
            le="+Inf",
        )
        == 2
    )
    assert metric(text, "dispatch_ticks_total", trigger="admin", outcome="ok") == 1
    assert metric(text, "dispatch_tick_duration_seconds_count") == 1
    assert metric(text, "dispatch_assignments_total") == 1
    assert metric(text, "dispatch_open_orders", status="assigned") == 1
    assert metric(text, "dispatch_open_orders", status="placed") == 0
    assert metric(text, "dispatch_couriers_on_shift", status="busy") == 1
    for line in text.splitlines():  # every sample line is "name{labels} number"
        if not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


async def test_unmatched_paths_do_not_grow_the_metrics(client: httpx.AsyncClient) -> None:
    for n in range(5):
        await client.get(f"/nowhere/{n}")
    text = (await client.get("/metrics", headers=auth(ADMIN))).text
    assert metric(text, "dispatch_http_requests_total", method="GET", route="unmatched", status="404") == 5
    assert "/nowhere" not in text


async def test_stats_are_aggregates(client: httpx.AsyncClient) -> None:
    await seed(client)
    await place(client, "S-1")
    r = await client.get("/v1/stats", headers=auth(ANALYST))
    body = r.json()
    assert body["merchants"] == 2 and body["orders_by_status"]["placed"] == 1
    assert body["couriers_on_shift"] == {"idle": 2, "busy": 0}
    assert body["events"] == 5 and body["ticks"] == 0


def _sse(text: str) -> list[dict[str, str]]:
    events = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "data" in fields:
            events.append(fields)
    return events


async def test_the_event_stream_resumes_from_last_event_id(client: httpx.AsyncClient) -> None:
    await seed(client)
    await place(client, "E-1")
    r = await client.get("/v1/events/stream", headers=auth(ADMIN))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    assert [e["event"] for e in events] == ["merchant.created"] * 2 + ["courier.shift_started"] * 2 + [
        "order.placed"
    ]
    assert [e["id"] for e in events] == ["1", "2", "3", "4", "5"]
    assert json.loads(events[-1]["data"])["id"] == "test-5"
    resumed = await client.get("/v1/events/stream", headers={**auth(ADMIN), "Last-Event-ID": "3"})
    assert [e["id"] for e in _sse(resumed.text)] == ["4", "5"]


async def test_the_event_stream_is_filtered_by_tenant(client: httpx.AsyncClient) -> None:
    await seed(client)
    await place(client, "E-1")
    mine = _sse((await client.get("/v1/events/stream", headers=auth(MERCHANT_1))).text)
    assert [e["event"] for e in mine] == ["merchant.created", "order.placed"]
    courier = _sse((await client.get("/v1/events/stream", headers=auth(COURIER_2))).text)
    assert [json.loads(e["data"])["courier_id"] for e in courier] == ["c-2"]


async def test_the_event_stream_delivers_what_happens_while_it_is_open(
    client: httpx.AsyncClient, dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(client)
    # the order is placed once the stream has read the log (and found nothing after seq 4)
    read_once = threading.Event()
    read = dispatcher.store.events

    def spy(after_seq: int = 0, limit: int | None = None) -> list[Event]:
        found = read(after_seq, limit)
        if after_seq == 4:
            read_once.set()
        return found

    monkeypatch.setattr(dispatcher.store, "events", spy)

    async def later() -> None:
        assert await asyncio.to_thread(read_once.wait, 10), "the stream never read the log"
        await place(client, "L-1")

    stream, _ = await asyncio.gather(client.get("/v1/events/stream?after=4", headers=auth(ADMIN)), later())
    assert [e["event"] for e in _sse(stream.text)] == ["order.placed"]


async def test_the_background_tick_dispatches(dispatcher: Dispatcher) -> None:
    clock = Clock()
    app = create_app(make_settings(tick_interval_s=0.02), dispatcher=dispatcher, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://t") as client,
    ):
        await seed(client)
        await place(client, "B-1")
        clock.advance(540)
        for _ in range(100):
            await asyncio.sleep(0.02)
            order = (await client.get("/v1/orders/m-1:B-1", headers=auth(ADMIN))).json()
            if order["status"] == "enroute_to_pickup":
                break
        assert order["status"] == "enroute_to_pickup" and order["courier_id"] == "c-1"
        health = (await client.get("/healthz")).json()
        assert health["background_tick"] is True and health["last_tick_at"] == clock.now
    assert app.state.runtime.background is None  # stopped with the app


async def test_a_failing_tick_does_not_stop_the_background_loop(dispatcher: Dispatcher) -> None:
    calls = []

    def broken_tick(now: int) -> object:
        calls.append(now)
        raise RuntimeError("boom")

    dispatcher.tick = broken_tick  # type: ignore[method-assign,assignment]
    app = create_app(make_settings(tick_interval_s=0.01), dispatcher=dispatcher, clock=Clock())
    async with app.router.lifespan_context(app):
        for _ in range(100):
            await asyncio.sleep(0.01)
            if len(calls) >= 3:
                break
        text = app.state.runtime.metrics.render([])
    assert len(calls) >= 3
    assert (metric(text, "dispatch_ticks_total", trigger="background", outcome="error") or 0) >= 3
