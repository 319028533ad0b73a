"""The public tracking page: no key, just the unguessable token of an order's ``tracking_url``.

``GET /track/{token}`` is a small HTML page (status, ETA, and a map drawn in SVG from the
coordinates alone: no tiles, no external requests) that follows
``GET /v1/tracking/{token}/stream``, a server-sent stream of the order's state, sent again
whenever one of its events happens and as its courier moves.
"""

from __future__ import annotations

import asyncio
import functools
import html
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import RuntimeDep
from api.problems import ApiError, problem_responses
from api.runtime import Runtime
from api.schemas.tracking import TrackingPublic
from api.tracking import tracking_view
from dispatch.errors import StoreUnavailable

router = APIRouter(tags=["tracking"])

_Token = Annotated[
    str,
    Path(
        min_length=24,
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$",
        description="the token of the order's tracking_url",
    ),
]
#: while a courier carries the order, its position is sent again this often (pings are no events)
_POSITION_EVERY_S = 2.0
_FINAL = frozenset({"delivered", "cancelled", "returned"})


async def _tracked_order(token: _Token, runtime: RuntimeDep) -> str:
    """The order of a token, or 404 (a dependency: it answers before a stream's first byte)."""
    tokens = await runtime.tracking_tokens()
    order_id = tokens.order_of(token)
    if order_id is None:
        raise ApiError("unknown-tracking-token", "no order has this tracking token")
    await _state(runtime, order_id)  # and it still exists
    return order_id


_TrackedOrder = Annotated[str, Depends(_tracked_order)]


async def _state(runtime: Runtime, order_id: str) -> TrackingPublic:
    view = await runtime.run(lambda: tracking_view(runtime.dispatcher, order_id, runtime.now()))
    if view is None:
        raise ApiError("unknown-tracking-token", "no order has this tracking token")
    return TrackingPublic.of(view)


@router.get(
    "/v1/tracking/{token}",
    responses=problem_responses(404, 422),
    summary="An order's tracking state (public: the token is the key)",
    description=(
        "The status, ETA and promise of the one order the token names, where it is picked up and "
        "dropped off, and its courier's last position while one carries it. Nothing else: no other "
        "order, no courier id."
    ),
)
async def tracking_state(order_id: _TrackedOrder, runtime: RuntimeDep) -> TrackingPublic:
    return await _state(runtime, order_id)


@router.get(
    "/v1/tracking/{token}/stream",
    response_class=EventSourceResponse,
    responses=problem_responses(404, 422),
    summary="An order's tracking state as server-sent events (public)",
    description=(
        "`event: state` with the state as `GET /v1/tracking/{token}` shows it: at once, after each of "
        "the order's events, and every few seconds as its courier moves. Ends once the order is "
        "delivered or cancelled, or after `DISPATCH_EVENT_STREAM_MAX_S` (`EventSource` reconnects)."
    ),
)
async def tracking_stream(order_id: _TrackedOrder, runtime: RuntimeDep) -> AsyncIterator[ServerSentEvent]:
    try:
        state = await _state(runtime, order_id)
    except (StoreUnavailable, ApiError):
        return  # the page reconnects
    settings = runtime.settings
    loop = asyncio.get_running_loop()
    closes_at = loop.time() + settings.event_stream_max_s
    cursor = await runtime.run(runtime.event_count)
    yield ServerSentEvent(raw_data=state.model_dump_json(), event="state", retry=2000)
    last_sent, sent_at = state, loop.time()
    while state.status not in _FINAL and loop.time() < closes_at:
        await asyncio.sleep(settings.event_poll_s)
        try:
            events = await runtime.run(functools.partial(runtime.dispatcher.events, cursor, 1000))
            if events:
                cursor = events[-1].seq
            ours = any(e.order_id == order_id for e in events)
            moving = last_sent.courier is not None and loop.time() - sent_at >= _POSITION_EVERY_S
            if not (ours or moving):
                continue
            state = await _state(runtime, order_id)
        except (StoreUnavailable, ApiError):
            return  # the page reconnects
        if state.model_dump(exclude={"now"}) != last_sent.model_dump(exclude={"now"}):
            yield ServerSentEvent(raw_data=state.model_dump_json(), event="state")
            last_sent = state
        sent_at = loop.time()


@router.get(
    "/track/{token}",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {"example": "<!doctype html>..."}}},
        **problem_responses(404, 422),
    },
    summary="The tracking page of an order (public HTML)",
    description=(
        "A small page for the customer: status, ETA, and a map drawn without tiles of the pickup, the "
        "drop-off and the courier, updated live from the tracking stream. It loads nothing from "
        "elsewhere."
    ),
)
async def tracking_page(token: _Token, order_id: _TrackedOrder, runtime: RuntimeDep) -> HTMLResponse:
    state = await _state(runtime, order_id)
    return HTMLResponse(
        _PAGE.replace("__STATE__", html.escape(state.model_dump_json(), quote=True)).replace(
            "__STREAM__", html.escape(f"/v1/tracking/{token}/stream", quote=True)
        ),
        headers={
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>Your delivery</title>
<style>
 body { font: 16px/1.4 system-ui, sans-serif; margin: 0 auto; max-width: 560px; padding: 16px;
        color: #1d2330; }
 h1 { font-size: 1.4em; margin: 0 0 4px; }
 #eta { font-size: 1.1em; margin: 0 0 12px; color: #374151; }
 #map { width: 100%; height: auto; border: 1px solid #d1d5db; border-radius: 8px; background: #f3f6f9; }
 .legend { font-size: .85em; color: #4b5563; margin-top: 6px; }
 .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin: 0 4px 0 10px; }
</style></head>
<body data-state="__STATE__" data-stream="__STREAM__">
<h1 id="status">Loading…</h1>
<p id="eta"></p>
<svg id="map" viewBox="0 0 400 300" role="img" aria-label="map of the delivery">
 <g id="grid" stroke="#e2e8f0" stroke-width="1"></g>
 <line id="leg" stroke="#2563eb" stroke-width="2" stroke-dasharray="6 4" visibility="hidden"></line>
 <circle id="pickup" r="8" fill="#f59e0b"></circle>
 <circle id="dropoff" r="8" fill="#16a34a"></circle>
 <circle id="courier" r="7" fill="#2563eb" stroke="#fff" stroke-width="2" visibility="hidden"></circle>
</svg>
<div class="legend"><span class="dot" style="background:#f59e0b"></span>restaurant
<span class="dot" style="background:#16a34a"></span>you
<span class="dot" style="background:#2563eb"></span>courier</div>
<script>
"use strict";
const LABELS = {placed: "Order received", created: "Order received", confirmed: "Order confirmed",
  assigned: "A courier is on the way to the restaurant",
  enroute_to_pickup: "A courier is on the way to the restaurant",
  arrived_at_pickup: "The courier is at the restaurant", picked_up: "Your order is on its way",
  enroute_to_dropoff: "Your order is on its way", arrived_at_dropoff: "The courier is at your door",
  delivered: "Delivered", cancelled: "Cancelled", returned: "Returned to the restaurant"};
function clock(t) { return new Date(t * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"}); }
function draw(s) {
  document.getElementById("status").textContent = LABELS[s.status] || s.status;
  const eta = document.getElementById("eta");
  eta.dataset.dropoffAt = s.dropoff_at ?? "";
  if (s.status === "delivered" && s.dropoff_at) eta.textContent = "Delivered at " + clock(s.dropoff_at);
  else if (s.status === "cancelled") eta.textContent = "";
  else if (s.dropoff_at) {
    const min = Math.max(1, Math.round((s.dropoff_at - s.now) / 60));
    eta.textContent = "Arrives in about " + min + " min (" + clock(s.dropoff_at) + ")";
  } else eta.textContent = "Arrives by " + clock(s.promised_by);
  const pts = [s.pickup, s.dropoff].concat(s.courier ? [s.courier] : []);
  const lat0 = Math.min(...pts.map(p => p.lat)), lat1 = Math.max(...pts.map(p => p.lat));
  const lng0 = Math.min(...pts.map(p => p.lng)), lng1 = Math.max(...pts.map(p => p.lng));
  const k = Math.cos((lat0 + lat1) / 2 * Math.PI / 180);  // metres per degree of longitude shrink
  const span = Math.max((lng1 - lng0) * k / 360, (lat1 - lat0) / 270, 1e-4);
  const cx = (lng0 + lng1) / 2, cy = (lat0 + lat1) / 2;
  const xy = p => [200 + (p.lng - cx) * k / span, 150 - (p.lat - cy) / span];
  const put = (id, p) => { const [x, y] = xy(p); const c = document.getElementById(id);
    c.setAttribute("cx", x.toFixed(1)); c.setAttribute("cy", y.toFixed(1)); return [x, y]; };
  put("pickup", s.pickup);
  const home = put("dropoff", s.dropoff);
  const courier = document.getElementById("courier"), leg = document.getElementById("leg");
  if (s.courier) {
    const at = put("courier", s.courier);
    const to = s.status === "assigned" ? xy(s.pickup) : home;
    leg.setAttribute("x1", at[0]); leg.setAttribute("y1", at[1]);
    leg.setAttribute("x2", to[0]); leg.setAttribute("y2", to[1]);
    courier.setAttribute("visibility", "visible"); leg.setAttribute("visibility", "visible");
  } else { courier.setAttribute("visibility", "hidden"); leg.setAttribute("visibility", "hidden"); }
  document.body.dataset.status = s.status;
}
const grid = document.getElementById("grid");
const line = (x1, y1, x2, y2) => `<line x1="${x1}" y1="${y1}" x2="${x2}" y2="${y2}"/>`;
for (let i = 0; i <= 400; i += 40) grid.insertAdjacentHTML("beforeend", line(i, 0, i, 300));
for (let j = 0; j <= 300; j += 40) grid.insertAdjacentHTML("beforeend", line(0, j, 400, j));
draw(JSON.parse(document.body.dataset.state));
const stream = new EventSource(document.body.dataset.stream);
stream.addEventListener("state", e => draw(JSON.parse(e.data)));
</script>
</body></html>
"""
