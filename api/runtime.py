"""What one running service holds: the dispatcher, the clock, quotes, idempotency records,
metrics, the background tick, and (with shared state) the city's dispatcher lease.

Routes make their engine calls as one block through :meth:`Runtime.run`. Over in-memory state
the engine is not thread-safe: a block runs on the event loop holding :attr:`Runtime.lock`,
with no ``await`` inside (so the check-then-write of a request cannot interleave with another).
The tick, the one call that can take long, runs in a worker thread while the lock is held:
other engine calls wait for it, but the loop keeps accepting connections and answering
``/healthz``.

Over Redis, a block runs in a worker thread without the lock: the store's version checks
already make concurrent blocks safe, exactly as they make other processes' calls safe, and the
loop stays free while Redis answers (so one worker has several Redis calls in flight, and
fsyncs are shared). Only ticks take the lock, so that one process never ticks twice at once.

With the state in Redis, many processes serve one city. Quotes and idempotency records live in
Redis too, so any worker can answer any request. The tick runs in exactly one of them: the one
holding the city's lease (:class:`~dispatch.redis_store.Lease`). Every worker tries to take it
every third of its expiry; the holder renews it as often. The holder ticks through a store fenced
with its token, so a tick that outlives its lease (a stalled or partitioned holder) is refused
whole, and a tick that lost a race with a request (a cancel, a courier event) is retried on the
fresh state.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from api.idempotency import IdempotencyStore, MemoryIdempotencyStore, RedisIdempotencyStore
from api.metrics import Labels, Registry, RequestsInFlight
from api.quote_book import QuoteBook, QuoteStore, RedisQuoteBook
from api.settings import Settings
from api.tracking import TrackingTokens
from api.webhooks.relay import Relay
from api.webhooks.store import MemoryWebhookStore, RedisWebhookStore
from dispatch.engine import Dispatcher, TickResult
from dispatch.errors import LeaseHeld, LeaseLost, StaleWrite, StoreUnavailable
from dispatch.models import CourierStatus
from dispatch.redis_store import Lease, RedisStore

__all__ = ["Backend", "Clock", "Runtime", "TickRecord", "backend_for", "system_clock"]

log = logging.getLogger("api")

Clock = Callable[[], int]
T = TypeVar("T")

#: A claim whose release failed is retried this often, for at most this long (its expiry, and then some).
_RELEASE_EVERY_S = 0.2
_RELEASE_FOR_S = 15.0


def system_clock() -> int:
    """Whole POSIX seconds now: the one place the service reads the wall clock."""
    return int(time.time())


@dataclass(frozen=True, slots=True)
class Backend:
    """What differs between in-memory and shared (Redis) state, chosen once when the app is
    built: where quotes and idempotency records live, and, with shared state, the city's lease
    and how a lease holder's writes are fenced."""

    quotes: QuoteStore
    idempotency: IdempotencyStore
    #: webhook endpoints, pending deliveries and their log
    webhooks: MemoryWebhookStore | RedisWebhookStore
    #: the tracking pages' secret when DISPATCH_TRACKING_SECRET is unset (a call: it may read Redis)
    tracking_secret: Callable[[], bytes]
    lease: Lease | None = None
    fencing: Callable[[int], contextlib.AbstractContextManager[None]] | None = None


def backend_for(
    settings: Settings, dispatcher: Dispatcher, idempotency: IdempotencyStore | None = None
) -> Backend:
    """The backend of ``dispatcher``'s store: the one place that asks which store it is."""
    store = dispatcher.store
    if isinstance(store, RedisStore):
        return Backend(
            quotes=RedisQuoteBook(store.client, store.city),
            idempotency=idempotency
            or RedisIdempotencyStore(
                store.client,
                store.city,
                settings.idempotency_ttl_s,
                max_records=settings.idempotency_max_records,
            ),
            webhooks=RedisWebhookStore(store.client, store.city),
            tracking_secret=functools.partial(TrackingTokens.secret_in_redis, store.client, store.city),
            lease=Lease(store.client, store.city, ttl_s=settings.lease_ttl_s),
            fencing=store.fencing,
        )
    secret = secrets.token_bytes(32)  # this process is the whole city: its own secret will do
    return Backend(
        quotes=QuoteBook(),
        idempotency=idempotency
        or MemoryIdempotencyStore(settings.idempotency_ttl_s, max_records=settings.idempotency_max_records),
        webhooks=MemoryWebhookStore(),
        tracking_secret=lambda: secret,
    )


@dataclass(frozen=True, slots=True)
class TickRecord:
    result: TickResult
    duration_s: float


class Runtime:
    def __init__(
        self,
        settings: Settings,
        dispatcher: Dispatcher,
        clock: Clock,
        idempotency: IdempotencyStore | None = None,
    ) -> None:
        self.settings = settings
        self.dispatcher = dispatcher
        self.clock = clock
        self.lock = asyncio.Lock()
        backend = backend_for(settings, dispatcher, idempotency)
        self.lease: Lease | None = backend.lease
        self.quotes: QuoteStore = backend.quotes
        self.idempotency: IdempotencyStore = backend.idempotency
        self.webhooks: MemoryWebhookStore | RedisWebhookStore = backend.webhooks
        self._fence = backend.fencing
        self._tracking_secret = backend.tracking_secret
        self.metrics = Registry()
        #: requests being worked on (kept by the metrics middleware); webhook delivery yields to them
        self.requests = RequestsInFlight()
        self.last_tick: TickRecord | None = None
        self.ticks = 0
        self.background: asyncio.Task[None] | None = None
        self.leasing: asyncio.Task[None] | None = None
        #: ticks failed in a row (background or admin); /healthz is degraded while it is not 0
        self.failing_ticks = 0
        self._streams: dict[str, int] = {}
        self._releases: set[asyncio.Task[None]] = set()
        self.relay = Relay(
            settings, dispatcher, self.webhooks, self.run, self._delivers_webhooks, self.requests
        )
        self.relaying: asyncio.Task[None] | None = None
        self._tracking: TrackingTokens | None = None
        if settings.tracking_secret is not None:
            self._tracking = TrackingTokens(settings.tracking_secret.get_secret_value().encode())

    @property
    def shared(self) -> bool:
        """Whether the state is shared with other processes (Redis)."""
        return self.lease is not None

    async def run(self, block: Callable[[], T]) -> T:
        """Run a block of engine calls: holding the lock on the loop (in-memory state), or in a
        worker thread (shared state). See the module docstring."""
        if not self.shared:
            async with self.lock:
                return block()
        return await asyncio.to_thread(block)

    def take_stream_slot(self, key_id: str) -> bool:
        """Whether ``key_id`` may open one more event stream now; if so it holds one more slot
        until :meth:`give_stream_slot` (per process: N workers allow N times as many)."""
        held = self._streams.get(key_id, 0)
        if held >= self.settings.event_streams_per_key:
            return False
        self._streams[key_id] = held + 1
        return True

    def give_stream_slot(self, key_id: str) -> None:
        left = self._streams.get(key_id, 0) - 1
        if left > 0:
            self._streams[key_id] = left
        else:
            self._streams.pop(key_id, None)

    async def webhook_call(self, fn: Callable[..., T], *args: object) -> T:
        """A call to the webhook state: on the loop (in-memory), in a worker thread (Redis)."""
        if isinstance(self.webhooks, RedisWebhookStore):
            return await asyncio.to_thread(fn, *args)
        return fn(*args)

    async def tracking_tokens(self) -> TrackingTokens:
        """The city's tracking-token signer (over Redis, its secret is read there once)."""
        if self._tracking is None:
            return await asyncio.to_thread(self.tracking_tokens_now)
        return self._tracking

    def tracking_tokens_now(self) -> TrackingTokens:
        """:meth:`tracking_tokens` in a :meth:`run` block (over Redis, blocks run in a thread)."""
        if self._tracking is None:
            self._tracking = TrackingTokens(self._tracking_secret())
        return self._tracking

    def tracking_url(self, order_id: str) -> str:
        """The public tracking page of an order (in a :meth:`run` block)."""
        token = self.tracking_tokens_now().token_for(order_id)
        return f"{self.settings.public_url or ''}/track/{token}"

    def _delivers_webhooks(self) -> bool:
        """The lease holder delivers; so does every process that runs no lease loop (no ticks)."""
        return self.lease is None or self.leasing is None or self.lease.held

    async def release_claim(self, scope: str, key: str, *, background: bool = False) -> None:
        """Give an ``Idempotency-Key`` claim back. With shared state out of reach (or with
        ``background``), it is given back by a task that retries until the state answers."""
        if not background:
            try:
                await self.idempotency.abandon(scope, key)
                return
            except StoreUnavailable:
                pass
        task = asyncio.create_task(self._release_retrying(scope, key), name="idempotency-release")
        self._releases.add(task)
        task.add_done_callback(self._releases.discard)

    async def _release_retrying(self, scope: str, key: str) -> None:
        loop = asyncio.get_running_loop()
        # past this the claim has expired by itself (RedisIdempotencyStore.in_flight_ttl_s)
        give_up_at = loop.time() + _RELEASE_FOR_S
        while True:
            try:
                await self.idempotency.abandon(scope, key)
                return
            except StoreUnavailable:
                if loop.time() >= give_up_at:
                    log.warning("an Idempotency-Key claim was not given back; it expires by itself")
                    return
            await asyncio.sleep(_RELEASE_EVERY_S)

    @property
    def role(self) -> str:
        """``embedded`` (in-memory state), ``leader`` (holds the city's lease) or ``standby``."""
        if self.lease is None:
            return "embedded"
        return "leader" if self.lease.held else "standby"

    def event_count(self) -> int:
        """Events in the log so far; call it in a :meth:`run` block (one read, not the log)."""
        return self.dispatcher.last_event_seq()

    def now(self) -> int:
        return self.clock()

    async def tick(self, trigger: str) -> TickRecord:
        """One dispatch tick at the clock's now; waits for the engine like every other call.

        With shared state, only the lease holder ticks: a process without the lease takes it if
        it is free (and gives it back afterwards when it runs no background tick), else raises
        :class:`LeaseHeld`.
        """
        async with self.lock:
            try:
                fencing, borrowed = self._fencing()
                now = self.clock()
                start = time.perf_counter()
                try:
                    with fencing:  # the tick's thread inherits this context: its writes are fenced
                        result = await asyncio.to_thread(_tick_retrying, self.dispatcher, now)
                finally:
                    if borrowed and self.lease is not None:
                        with contextlib.suppress(StoreUnavailable):
                            self.lease.release()
            except Exception as exc:
                self.metrics.ticks.inc((("trigger", trigger), ("outcome", "error")))
                if not isinstance(exc, LeaseHeld):  # not a failure: another process ticks
                    self.failing_ticks += 1
                    self.metrics.failing_ticks.set(self.failing_ticks)
                raise
            duration = time.perf_counter() - start
            record = TickRecord(result, duration)
            self.last_tick = record
            self.ticks += 1
            self.failing_ticks = 0
            self.metrics.failing_ticks.set(0)
        self.metrics.ticks.inc((("trigger", trigger), ("outcome", "ok")))
        for skipped in result.skipped:
            self.metrics.skipped_records.inc((("kind", skipped.kind),))
        self.metrics.tick_duration.observe(duration)
        self.metrics.assignments.inc(amount=sum(len(a.order_ids) for a in result.assignments))
        return record

    def _fencing(self) -> tuple[contextlib.AbstractContextManager[None], bool]:
        """A context in which the store's writes are fenced with this process's lease token, and
        whether the lease was taken just for this tick (raises LeaseHeld when another has it)."""
        lease, fence = self.lease, self._fence
        if lease is None or fence is None:
            return contextlib.nullcontext(), False
        borrowed = False
        if not lease.held:
            if not lease.acquire():
                holder = lease.holder()
                who = f" ({holder[1]}, token {holder[0]})" if holder else ""
                raise LeaseHeld(
                    f"another process{who} holds the dispatcher lease of city {lease.city!r}; "
                    "it runs the tick",
                )
            borrowed = self.leasing is None  # no lease loop here to keep it
            self.dispatcher.recall_demand()  # another process may have dispatched meanwhile
        assert lease.token is not None
        return fence(lease.token), borrowed

    async def run_background_ticks(self) -> None:
        """Tick every ``tick_interval_s`` until cancelled; a failed tick is logged, the next one runs.

        With shared state, only while this process holds the lease.
        """
        interval = self.settings.tick_interval_s
        while True:
            await asyncio.sleep(interval)
            if self.lease is not None and not self.lease.held:
                continue
            try:
                await self.tick("background")
            except asyncio.CancelledError:
                raise
            except (StoreUnavailable, LeaseLost, LeaseHeld) as exc:
                log.warning("background dispatch tick skipped: %s", exc)
            except Exception:
                log.exception("background dispatch tick failed")

    async def run_lease(self) -> None:
        """Hold the city's lease, or wait for it: every third of its expiry, renew or try to take it."""
        lease = self.lease
        assert lease is not None
        while True:
            try:
                if lease.token is not None and not lease.renew():
                    log.warning("lost the dispatcher lease of city %r", lease.city)
                if lease.token is None and lease.acquire():
                    log.info("took the dispatcher lease of city %r (token %d)", lease.city, lease.token)
                    self.dispatcher.recall_demand()
            except StoreUnavailable as exc:
                log.warning("dispatcher lease not renewed: %s", exc)
            await asyncio.sleep(lease.ttl_s / 3)

    async def start(self) -> None:
        if self.settings.tick_interval_s > 0 and self.background is None:
            if self.lease is not None:
                self.leasing = asyncio.create_task(self.run_lease(), name="dispatch-lease")
            self.background = asyncio.create_task(self.run_background_ticks(), name="dispatch-tick")
        if self.relaying is None:
            self.relaying = asyncio.create_task(self.relay.run_forever(), name="webhook-delivery")

    async def stop(self) -> None:
        tasks = [self.background, self.leasing, self.relaying, *self._releases]
        self.background = self.leasing = self.relaying = None
        for task in tasks:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.lease is not None and self.lease.token is not None:
            with contextlib.suppress(StoreUnavailable):
                self.lease.release()  # a clean shutdown hands over at once, not after the expiry

    async def gauges(self) -> list[tuple[str, str, Labels, float]]:
        """Scrape-time gauges, read under the lock like any engine state."""
        counts = await self.run(lambda: self.dispatcher.counts(open_only=True))
        open_orders, couriers = counts.orders, counts.couriers_on_shift
        by_status = {s: 0 for s in (CourierStatus.IDLE, CourierStatus.BUSY)}
        for courier in couriers:
            by_status[courier.status] = by_status.get(courier.status, 0) + 1
        gauges: list[tuple[str, str, Labels, float]] = [
            (
                "dispatch_open_orders",
                "Orders not yet delivered or cancelled, by status.",
                (("status", s.value),),
                n,
            )
            for s, n in open_orders.items()
        ]
        gauges += [
            ("dispatch_couriers_on_shift", "Couriers on shift, by status.", (("status", s.value),), n)
            for s, n in by_status.items()
        ]
        if isinstance(self.idempotency, MemoryIdempotencyStore):
            gauges.append(
                ("dispatch_idempotency_records", "Idempotency records held.", (), len(self.idempotency))
            )
        if self.last_tick is not None:
            gauges.append(
                (
                    "dispatch_last_tick_timestamp_seconds",
                    "When the last tick ran (engine clock).",
                    (),
                    self.last_tick.result.now,
                )
            )
        return gauges


def _tick_retrying(dispatcher: Dispatcher, now: int, attempts: int = 3) -> TickResult:
    """A tick; again on fresh state when a request changed one of its records meanwhile."""
    for attempt in range(1, attempts + 1):
        try:
            return dispatcher.tick(now)
        except StaleWrite:
            if attempt == attempts:
                raise
            log.info("dispatch tick raced with a request (attempt %d); ticking again", attempt)
    raise AssertionError("unreachable")
