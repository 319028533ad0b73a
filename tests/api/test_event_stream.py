"""The event stream on the wire (FastAPI's EventSourceResponse): ``retry``, then one SSE event per
log entry with ``id`` = seq, ``event`` = kind and the event as JSON in ``data``; a ``: ping``
comment keeps a quiet connection open; ``Last-Event-ID`` resumes after the id it names."""

from __future__ import annotations

import json

import fastapi.routing
import httpx
import pytest

from tests.api.conftest import ADMIN, auth, place, seed

pytestmark = pytest.mark.anyio


def _events(text: str) -> list[dict[str, str]]:
    blocks = [b for b in text.split("\n\n") if b.strip()]
    parsed = []
    for block in blocks:
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            name, _, value = line.partition(":")
            fields[name or "comment"] = value.removeprefix(" ")
        parsed.append(fields)
    return parsed


async def test_the_stream_sends_each_event_with_its_seq_kind_and_json(client: httpx.AsyncClient) -> None:
    await seed(client)
    assert (await place(client, "W-1")).status_code == 201
    r = await client.get("/v1/events/stream", headers=auth(ADMIN))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["cache-control"] == "no-cache"
    events = _events(r.text)
    assert events[0] == {"retry": "1000"}
    placed = next(e for e in events if e.get("event") == "order.placed")
    body = json.loads(placed["data"])
    assert body["order_id"] == "m-1:W-1" and placed["id"] == str(body["seq"])
    seqs = [int(e["id"]) for e in events if "id" in e]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    resumed = await client.get(
        "/v1/events/stream", headers={**auth(ADMIN), "Last-Event-ID": str(body["seq"] - 1)}
    )
    first = next(e for e in _events(resumed.text) if "id" in e)
    assert first["id"] == str(body["seq"]) and first["event"] == "order.placed"


async def test_a_quiet_stream_is_kept_alive(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # FastAPI pings every 15 s; the test stream is open 0.5 s, so the interval is shortened here
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.05)
    r = await client.get("/v1/events/stream", headers=auth(ADMIN), params={"after": 10**6})
    assert r.status_code == 200
    assert any(e.get("comment") == "ping" for e in _events(r.text)), r.text
