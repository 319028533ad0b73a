"""The delivery loop: the city's events to its webhook endpoints, signed, retried, logged.

One loop per process, active while the process runs the city's dispatch (over in-memory state,
always; over Redis, while it holds the dispatcher lease), so one loop per city delivers. Each
step it

1. reads new events (over Redis through the stream's consumer group ``webhooks``, taking over
   with ``XAUTOCLAIM`` what a dead worker had read and not acknowledged), and schedules one
   delivery per event and endpoint that wants it: an endpoint gets the events of its tenant's
   orders and merchants only (an admin's endpoint gets every event);
2. claims the deliveries that are due and POSTs them at once (at most ``webhook_concurrency``
   in flight). A 2xx answer is a success; any other answer, a timeout or a refused connection
   is retried after ``base * factor^(n-1)`` seconds, +-20 % jitter, up to ``webhook_attempts``
   attempts. An endpoint that has failed for ``webhook_disable_after_s`` without one success is
   disabled, and says so. POSTs go through :class:`~api.webhooks.sender.Sender` (connections
   kept alive, the address checked on each connection).

Deliveries share the process with the requests, at a lower priority: a step, and each POST it
starts, waits while requests are in flight (from their arrival to the start of their answer, see
:class:`~api.metrics.RequestsInFlight`), for at most ``webhook_poll_s`` per step in all, and the
event loop turns between two starts. So deliveries fill the gaps between requests, a request
waits for at most about one POST's work, and under a steady load deliveries still go out every
poll interval. A finished delivery is recorded at the next step (in a batch), unless every slot
was taken: then it wakes the loop at once to start the next one.

Delivery is at least once and not in order: a receiver de-duplicates on the event ``id``. The
loop reads the wall clock (when to retry is I/O timing, not a dispatch decision).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from api.metrics import RequestsInFlight
from api.settings import Principal, Role, Settings
from api.webhooks.sender import Sender, SendFailed
from api.webhooks.signing import HEADER, sign
from api.webhooks.store import Attempt, Endpoint, Job, MemoryWebhookStore, RedisWebhookStore, disabled
from api.webhooks.urls import UnsafeUrl
from dispatch.engine import Dispatcher
from dispatch.errors import StoreUnavailable
from dispatch.models import Event

__all__ = ["Relay", "event_body"]

log = logging.getLogger("api.webhooks")

T = TypeVar("T")
_BATCH = 500
_MERCHANTS_CACHED = 100_000
#: events (and their bodies) kept from reading them to sending them: a first attempt reads none again
_EVENTS_CACHED = 4096


def event_body(event: Event) -> bytes:
    """What is POSTed: the event as the event API shows it (``id`` is the de-duplication key)."""
    from api.schemas.ops import EventPublic

    public = EventPublic.of(event)
    return public.model_dump_json().encode()


def _sees(endpoint: Endpoint, merchant_id: str | None) -> bool:
    role = Role(endpoint.role)
    if role is Role.ADMIN:
        return True
    if merchant_id is None:
        return False
    return Principal(role, frozenset(endpoint.tenants), "").serves_merchant(merchant_id)


class Relay:
    def __init__(
        self,
        settings: Settings,
        dispatcher: Dispatcher,
        store: MemoryWebhookStore | RedisWebhookStore,
        run: Callable[[Callable[[], Any]], Awaitable[Any]],
        active: Callable[[], bool],
        requests: RequestsInFlight | None = None,
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.store = store
        self._run_engine = run
        self._active = active
        #: the process's requests in flight: delivery work waits for none (lower priority)
        self._requests = requests or RequestsInFlight()
        self._events: OrderedDict[int, tuple[Event, bytes | None]] = OrderedDict()
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._cursor = 0  # over in-memory state: the last event seq read
        self._merchant_of: OrderedDict[str, str | None] = OrderedDict()
        #: deliveries in flight, and the attempts finished since the last step (settled in a batch)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._finished: list[tuple[Job, Attempt | None]] = []
        self._wake = asyncio.Event()
        #: all delivery slots were taken: a delivery that finishes wakes the loop to fill its slot
        self._saturated = False
        #: when the current step stops waiting for requests in flight (event loop time)
        self._defer_until = 0.0
        self._random = random.Random()
        self.delivered = 0
        self.failed = 0

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if isinstance(self.store, RedisWebhookStore):
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def run_forever(self) -> None:
        """Step until cancelled; a step that fails is logged and the next one runs."""
        settings = self.settings
        async with Sender(
            timeout_s=settings.webhook_timeout_s,
            allow_private=settings.webhook_allow_private,
            max_idle_per_origin=settings.webhook_concurrency,
        ) as client:
            if isinstance(self.store, RedisWebhookStore):
                with contextlib.suppress(StoreUnavailable):
                    await self._call(self.store.ensure_group)
            try:
                while True:
                    busy = False
                    try:
                        if self._active():
                            busy = await self.step(client)
                    except asyncio.CancelledError:
                        raise
                    except StoreUnavailable as exc:
                        log.warning("webhook delivery step skipped: %s", exc)
                    except Exception:
                        log.exception("webhook delivery step failed")
                    if not busy:
                        # until the poll interval passes, or a delivery finishes
                        # asyncio.timeout, not wait_for: in Python 3.11 wait_for can turn the
                        # task's own cancellation into a TimeoutError (and the loop would go on)
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(self.settings.webhook_poll_s):
                                await self._wake.wait()
                        self._wake.clear()
            finally:
                for task in self._in_flight:
                    task.cancel()

    def nudge(self) -> None:
        """Look for work now rather than at the next poll (events were just written, say)."""
        self._wake.set()

    async def step(self, client: Sender) -> bool:
        """Record the attempts finished meanwhile, schedule the new events' deliveries, and start
        the due ones (as many as there are free slots); whether there was work."""
        # lower priority than requests: work while none is in flight, but defer a step by at most
        # a poll interval in all (so that deliveries keep up under a steady load)
        loop = asyncio.get_running_loop()
        self._defer_until = loop.time() + self.settings.webhook_poll_s
        await self._yield_to_requests()
        endpoints = {e.id: e for e in await self._call(self.store.endpoints)}
        finished, self._finished = self._finished, []
        if finished:
            await self._settle(finished, endpoints)
        read = await self._fan_out(endpoints)
        sent = await self._send_due(client, endpoints)
        return bool(finished) or read or sent

    async def _new_events(self) -> tuple[list[Event], list[int]]:
        """New events, and what to acknowledge once their deliveries are scheduled."""
        dispatcher = self.dispatcher
        if isinstance(self.store, RedisWebhookStore):
            idle_ms = int(self.settings.webhook_claim_s * 1000)
            seqs = await self._call(self.store.read_events, self.consumer, _BATCH, idle_ms=idle_ms)
            if not seqs:
                return [], []
            wanted = set(seqs)
            # one range read for the batch (a taken-over entry may be far behind: then two)
            events = await asyncio.to_thread(dispatcher.events, seqs[0] - 1, seqs[-1] - seqs[0] + 1)
            return [e for e in events if e.seq in wanted], seqs
        cursor = self._cursor
        if cursor == dispatcher.last_event_seq():  # nothing new: no engine call (one read, no lock)
            return [], []
        events = await self._run_engine(lambda: dispatcher.events(cursor, _BATCH))
        if events:
            self._cursor = events[-1].seq
        return events, []

    async def _fan_out(self, endpoints: dict[str, Endpoint]) -> bool:
        events, to_ack = await self._new_events()
        if not events and not to_ack:
            return False
        active = [e for e in endpoints.values() if e.disabled_at is None]
        jobs: list[Job] = []
        if active:
            await self._learn_merchants(events)
            for event in events:
                merchant_id = event.merchant_id or self._merchant_of.get(event.order_id or "")
                jobs += [
                    Job(e.id, event.seq, 0)
                    for e in active
                    if e.after_seq < event.seq and e.wants(event.kind) and _sees(e, merchant_id)
                ]
        await self._call(self.store.schedule, jobs, time.time())
        wanted = {job.seq for job in jobs}
        for event in events:
            if event.seq in wanted:
                self._events[event.seq] = (event, None)
        while len(self._events) > _EVENTS_CACHED:
            self._events.popitem(last=False)
        if to_ack:
            await self._call(self.store.ack, to_ack)  # type: ignore[union-attr]
        return True

    async def _learn_merchants(self, events: list[Event]) -> None:
        """The merchant of each order the events name (an order event names only the order)."""
        missing = {e.order_id for e in events if e.order_id and e.merchant_id is None} - set(
            self._merchant_of
        )
        if not missing:
            return
        dispatcher = self.dispatcher

        def read() -> dict[str, str | None]:
            found: dict[str, str | None] = {}
            for oid in missing:
                order = dispatcher.find_order(oid)
                found[oid] = order.merchant_id if order is not None else None
            return found

        self._merchant_of.update(await self._run_engine(read))
        while len(self._merchant_of) > _MERCHANTS_CACHED:
            self._merchant_of.popitem(last=False)

    async def _send_due(self, client: Sender, endpoints: dict[str, Endpoint]) -> bool:
        now = time.time()
        limit = self.settings.webhook_concurrency - len(self._in_flight)
        if limit <= 0:
            return False
        jobs = await self._call(self.store.claim, now, now + self.settings.webhook_claim_s, limit)
        self._saturated = len(jobs) == limit
        if not jobs:
            return False
        dispatcher = self.dispatcher
        cached = self._events
        seqs = sorted({j.seq for j in jobs if j.seq not in cached})  # retries, another worker's events

        def read() -> dict[int, Event]:
            found: dict[int, Event] = {}
            for seq in seqs:
                if seq not in found:
                    for event in dispatcher.events(seq - 1, 1 + max(0, min(64, seqs[-1] - seq))):
                        found.setdefault(event.seq, event)
            return found

        if seqs:
            for seq, event in (await self._run_engine(read)).items():
                cached[seq] = (event, None)
        for job in jobs:
            # start each POST when no request is in flight, and let the loop look for new ones
            # between two starts
            await self._yield_to_requests()
            task = asyncio.create_task(self._deliver(client, job, endpoints.get(job.endpoint_id)))
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            await asyncio.sleep(0)
        return True

    async def _yield_to_requests(self) -> None:
        """Wait while requests are in flight, until the step's deferral runs out."""
        if self._requests.count:
            left = self._defer_until - asyncio.get_running_loop().time()
            if left > 0:
                await self._requests.quiet(left)

    def _body(self, seq: int) -> tuple[Event, bytes] | None:
        """The event of ``seq`` and what is POSTed for it (made once for all its endpoints)."""
        found = self._events.get(seq)
        if found is None:
            return None
        event, body = found
        if body is None:
            body = event_body(event)
            self._events[seq] = (event, body)
        return event, body

    async def _deliver(self, client: Sender, job: Job, endpoint: Endpoint | None) -> None:
        try:
            attempt = await self._post(client, job, endpoint, self._body(job.seq))
            self._finished.append((job, attempt))  # the list of now: the step swaps it meanwhile
        except Exception:  # not a failed delivery but a bug: the claim expires and it is tried again
            log.exception("webhook delivery of event %s failed unexpectedly", job.seq)
        if self._saturated:  # a slot is free for a due delivery; else the next poll settles this one
            self._saturated = False
            self._wake.set()

    async def _post(
        self, client: Sender, job: Job, endpoint: Endpoint | None, found: tuple[Event, bytes] | None
    ) -> Attempt | None:
        """One POST and what came of it (outcome ``delivered`` or ``failed``); None: nothing to send
        (the endpoint was deleted or disabled, or the event is gone)."""
        if endpoint is None or endpoint.disabled_at is not None or found is None:
            return None
        event, body = found
        status: int | None = None
        error: str | None = None
        start = time.perf_counter()
        try:
            # the sender checks the address it connects to (private ones refused unless allowed)
            t = int(time.time())
            headers = (
                ("Content-Type", "application/json"),
                (HEADER, sign(endpoint.secret, t, body)),
                ("Dispatch-Event-Id", event.id),
            )
            status = await client.post(endpoint.url, body, headers)
            if not 200 <= status < 300:
                error = f"answered {status}"
        except (UnsafeUrl, SendFailed) as exc:  # SendTimeout: "no answer within ... s"
            error = str(exc)
        duration_ms = round((time.perf_counter() - start) * 1000)
        outcome = "delivered" if error is None else "failed"
        return Attempt(
            event.id, event.kind, job.attempts + 1, int(time.time()), outcome, status, error, duration_ms
        )

    async def _settle(
        self, results: list[tuple[Job, Attempt | None]], endpoints: dict[str, Endpoint]
    ) -> None:
        """Record a batch of attempts: done, retried later or given up, in one write to the store;
        and what they say about their endpoints (failing since when, disabled)."""
        settings = self.settings
        now = time.time()
        done: list[Job] = []
        retries: list[tuple[Job, float]] = []
        logs: list[tuple[str, Attempt]] = []
        changed: dict[str, Endpoint] = {}
        for job, attempt in results:
            if attempt is None:
                done.append(job)
                continue
            endpoint = changed.get(job.endpoint_id) or endpoints.get(job.endpoint_id)
            if endpoint is None:  # deleted while its delivery was in flight
                done.append(job)
                continue
            if attempt.error is None:
                self.delivered += 1
                done.append(job)
                logs.append((endpoint.id, attempt))
                if endpoint.failing_since is not None and endpoint.disabled_at is None:
                    changed[endpoint.id] = replace(endpoint, failing_since=None)
                continue
            self.failed += 1
            since = endpoint.failing_since if endpoint.failing_since is not None else attempt.at
            if endpoint.disabled_at is not None or (
                endpoint.failing_since is not None and now - since >= settings.webhook_disable_after_s
            ):
                if endpoint.disabled_at is None:
                    reason = (
                        f"every delivery failed for {(now - since) / 3600:.1f} h (since {since}); "
                        f"the last: {attempt.error}. Fix the receiver, then delete this endpoint and "
                        "create it again"
                    )
                    changed[endpoint.id] = disabled(endpoint, int(now), reason)
                    log.warning("webhook endpoint %s disabled: %s", endpoint.id, reason)
                done.append(job)
                logs.append((endpoint.id, replace(attempt, outcome="gave-up")))
                continue
            if endpoint.failing_since is None:
                changed[endpoint.id] = replace(endpoint, failing_since=since)
            if attempt.attempt >= settings.webhook_attempts:
                done.append(job)
                logs.append((endpoint.id, replace(attempt, outcome="gave-up")))
                continue
            delay = settings.webhook_retry_base_s * settings.webhook_retry_factor ** (attempt.attempt - 1)
            due = now + delay * self._random.uniform(0.8, 1.2)
            retries.append((job, due))
            logs.append((endpoint.id, replace(attempt, outcome="retrying", next_attempt_at=int(due) + 1)))
        await self._call(self.store.settle, done, retries, logs)
        for endpoint in changed.values():
            await self._call(self.store.put_endpoint, endpoint)
