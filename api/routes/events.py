"""Events: every state change with a unique id, as a page to poll or a server-sent event stream.

Each event has ``id`` (unique in the city: de-duplicate on it) and ``seq`` (its place in the
log). Read on from where you stopped with ``after=<seq>``; the stream sends ``id: <seq>``, so a
reconnecting ``EventSource`` resumes by itself through ``Last-Event-ID``. Delivery is at least
once: a client that reconnects may see an event again, and drops it by ``id``. A key sees the
events of its own tenant only.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from api.deps import ReaderDep, RuntimeDep
from api.problems import ApiError, problem_responses
from api.runtime import Runtime
from api.schemas.ops import EventPage, EventPublic
from api.settings import Principal, Role
from dispatch.errors import StoreUnavailable
from dispatch.models import Event
from dispatch.ranges import EVENT_SEQ

router = APIRouter(prefix="/v1/events", tags=["events"])

_KEEPALIVE_S = 15.0
_BATCH = 500


def _visible(principal: Principal, event: Event, runtime: Runtime) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.COURIER:
        return event.courier_id is not None and event.courier_id == principal.tenant
    merchant_id = event.merchant_id
    if merchant_id is None and event.order_id is not None:
        order = runtime.dispatcher.store.get_order(event.order_id)
        merchant_id = order.merchant_id if order is not None else None
    return merchant_id is not None and principal.serves_merchant(merchant_id)


def _public(event: Event) -> EventPublic:
    return EventPublic(
        id=event.id,
        seq=event.seq,
        at=event.at,
        kind=event.kind,
        order_id=event.order_id,
        courier_id=event.courier_id,
        merchant_id=event.merchant_id,
        data=event.data,
    )


async def _read(
    runtime: Runtime, principal: Principal, after: int, limit: int
) -> tuple[list[EventPublic], int]:
    """Up to ``limit`` visible events after ``after``, and the seq to read on from."""

    def read() -> tuple[list[EventPublic], int]:
        events = runtime.dispatcher.store.events(after, limit)
        visible = [_public(e) for e in events if _visible(principal, e, runtime)]
        return visible, events[-1].seq if events else after

    return await runtime.run(read)


_SSE_EVENT = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"type": "string"},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}

_After = Annotated[
    int,
    Query(ge=0, le=int(EVENT_SEQ.high), description="read events with seq greater than this"),
]


@router.get(
    "", responses=problem_responses(401, 403, 422), summary="A page of events after a sequence number"
)
async def list_events(
    principal: ReaderDep,
    runtime: RuntimeDep,
    after: _After = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    events, next_after = await _read(runtime, principal, after, limit)
    return EventPage(events=events, next_after=next_after)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "server-sent events: `id` is the seq, `event` the kind, `data` an Event as JSON",
            "content": {"text/event-stream": {"schema": _SSE_EVENT}},
        },
        **problem_responses(401, 403, 422, 429),
    },
    summary="Server-sent events; resumes from Last-Event-ID or after= (a few streams per key at once)",
)
async def stream_events(
    principal: ReaderDep,
    runtime: RuntimeDep,
    after: _After = 0,
    last_event_id: Annotated[str, Header(alias="Last-Event-ID", max_length=18, pattern=r"^[0-9]*$")] = "",
) -> StreamingResponse:
    start = max(after, int(last_event_id)) if last_event_id else after
    settings = runtime.settings
    # the slot is taken now, so that the 429 is an answer; the response gives it back when it ends
    if not runtime.take_stream_slot(principal.key_id):
        raise ApiError(
            "too-many-streams",
            f"this key holds {settings.event_streams_per_key} event streams open, the most it may; "
            "close one, or poll GET /v1/events",
            headers={"Retry-After": "5"},
        )

    async def stream() -> AsyncIterator[str]:
        cursor = start
        loop = asyncio.get_running_loop()
        closes_at = loop.time() + settings.event_stream_max_s
        quiet_since = time.monotonic()
        yield "retry: 1000\n\n"
        while True:
            try:
                events, cursor_next = await _read(runtime, principal, cursor, _BATCH)
            except StoreUnavailable:
                return  # the client reconnects (retry: 1000) and resumes from Last-Event-ID
            for event in events:
                data = json.dumps(event.model_dump(mode="json"))
                yield f"id: {event.seq}\nevent: {event.kind}\ndata: {data}\n\n"
                quiet_since = time.monotonic()
            if cursor_next - cursor >= _BATCH:
                cursor = cursor_next
                continue
            cursor = cursor_next
            if loop.time() >= closes_at:
                return
            if time.monotonic() - quiet_since > _KEEPALIVE_S:
                yield ": keepalive\n\n"
                quiet_since = time.monotonic()
            await asyncio.sleep(min(settings.event_poll_s, max(0.0, closes_at - loop.time())))

    return _SlotResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        on_close=lambda: runtime.give_stream_slot(principal.key_id),
    )


class _SlotResponse(StreamingResponse):
    """A streaming response that calls ``on_close`` once it is over, however it ends (the client
    gone before the first byte too: the route's response is always called)."""

    def __init__(self, content: AsyncIterator[str], *, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
