"""Events: every state change with a unique id, as a page to poll or a server-sent event stream.

Each event has ``id`` (unique in the city: de-duplicate on it) and ``seq`` (its place in the
log). Read on from where you stopped with ``after=<seq>``; the stream sends ``id: <seq>``, so a
reconnecting ``EventSource`` resumes by itself through ``Last-Event-ID``. Delivery is at least
once: a client that reconnects may see an event again, and drops it by ``id``. A key sees the
events of its own tenant only.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import ReaderDep, RuntimeDep
from api.problems import ApiError, problem_responses
from api.runtime import Runtime
from api.schemas.ops import EventPage, EventPublic
from api.settings import Principal, Role
from dispatch.errors import StoreUnavailable
from dispatch.models import Event
from dispatch.ranges import EVENT_SEQ

router = APIRouter(prefix="/v1/events", tags=["events"])

_BATCH = 500


def _visible(principal: Principal, event: Event, runtime: Runtime) -> bool:
    if principal.role is Role.ADMIN:
        return True
    if principal.role is Role.COURIER:
        return event.courier_id is not None and event.courier_id == principal.tenant
    merchant_id = event.merchant_id
    if merchant_id is None and event.order_id is not None:
        order = runtime.dispatcher.find_order(event.order_id)
        merchant_id = order.merchant_id if order is not None else None
    return merchant_id is not None and principal.serves_merchant(merchant_id)


async def _read(
    runtime: Runtime, principal: Principal, after: int, limit: int
) -> tuple[list[EventPublic], int]:
    """Up to ``limit`` visible events after ``after``, and the seq to read on from."""

    def read() -> tuple[list[EventPublic], int]:
        events = runtime.dispatcher.events(after, limit)
        visible = [EventPublic.of(e) for e in events if _visible(principal, e, runtime)]
        return visible, events[-1].seq if events else after

    return await runtime.run(read)


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


async def _stream_slot(principal: ReaderDep, runtime: RuntimeDep) -> AsyncIterator[None]:
    """Holds one of the key's event-stream slots while its stream is open (429 when none is free).

    A dependency with ``yield``: it runs before the stream's first byte, so the 429 is an answer,
    and its exit runs after the stream ends, however it ends.
    """
    if not runtime.take_stream_slot(principal.key_id):
        raise ApiError(
            "too-many-streams",
            f"this key holds {runtime.settings.event_streams_per_key} event streams open, the most it "
            "may; close one, or poll GET /v1/events",
            headers={"Retry-After": "5"},
        )
    try:
        yield
    finally:
        runtime.give_stream_slot(principal.key_id)


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses=problem_responses(401, 403, 422, 429),
    summary="Server-sent events; resumes from Last-Event-ID or after= (a few streams per key at once)",
    description=(
        "Each event is `id: <seq>`, `event: <kind>`, `data: <the event as JSON>`; a `: ping` comment "
        "keeps a quiet connection open. The stream closes after `DISPATCH_EVENT_STREAM_MAX_S`; "
        "`EventSource` reconnects by itself (`retry: 1000`) and resumes through `Last-Event-ID`."
    ),
    dependencies=[Depends(_stream_slot)],
)
async def stream_events(
    principal: ReaderDep,
    runtime: RuntimeDep,
    after: _After = 0,
    last_event_id: Annotated[str, Header(alias="Last-Event-ID", max_length=18, pattern=r"^[0-9]*$")] = "",
) -> AsyncIterator[ServerSentEvent]:
    cursor = max(after, int(last_event_id)) if last_event_id else after
    settings = runtime.settings
    loop = asyncio.get_running_loop()
    closes_at = loop.time() + settings.event_stream_max_s
    yield ServerSentEvent(retry=1000)
    while True:
        try:
            events, cursor_next = await _read(runtime, principal, cursor, _BATCH)
        except StoreUnavailable:
            return  # the client reconnects (retry: 1000) and resumes from Last-Event-ID
        for event in events:
            yield ServerSentEvent(raw_data=event.model_dump_json(), event=event.kind, id=str(event.seq))
        if cursor_next - cursor >= _BATCH:
            cursor = cursor_next
            continue
        cursor = cursor_next
        if loop.time() >= closes_at:
            return
        await asyncio.sleep(min(settings.event_poll_s, max(0.0, closes_at - loop.time())))
