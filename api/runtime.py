"""What one running service holds: the dispatcher behind one lock, the clock, quotes, idempotency
records, metrics, and the background tick.

The engine is synchronous and not thread-safe. Every engine call is made while holding
:attr:`Runtime.lock`, on the event loop, with no ``await`` in between (so the check-then-write
of a request cannot interleave with another). The tick, the one call that can take long, runs in
a worker thread while the lock is held: other engine calls wait for it, but the loop keeps
accepting connections and answering ``/healthz``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from api.idempotency import IdempotencyStore, MemoryIdempotencyStore
from api.metrics import Labels, Registry
from api.quote_book import QuoteBook
from api.settings import Settings
from dispatch.engine import Dispatcher, TickResult
from dispatch.models import CourierStatus, OrderStatus

__all__ = ["Clock", "Runtime", "TickRecord", "system_clock"]

log = logging.getLogger("api")

Clock = Callable[[], int]


def system_clock() -> int:
    """Whole POSIX seconds now: the one place the service reads the wall clock."""
    return int(time.time())


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
        self.quotes = QuoteBook()
        self.idempotency: IdempotencyStore = idempotency or MemoryIdempotencyStore(settings.idempotency_ttl_s)
        self.metrics = Registry()
        self.last_tick: TickRecord | None = None
        self.ticks = 0
        self.background: asyncio.Task[None] | None = None
        self._events_seen = 0

    def event_count(self) -> int:
        """Events in the log so far; call it holding the lock. Reads only the tail since last time."""
        tail = self.dispatcher.store.events(self._events_seen)
        if tail:
            self._events_seen = tail[-1].seq
        return self._events_seen

    def now(self) -> int:
        return self.clock()

    async def tick(self, trigger: str) -> TickRecord:
        """One dispatch tick at the clock's now; waits for the engine like every other call."""
        async with self.lock:
            now = self.clock()
            start = time.perf_counter()
            try:
                result = await asyncio.to_thread(self.dispatcher.tick, now)
            except Exception:
                self.metrics.ticks.inc((("trigger", trigger), ("outcome", "error")))
                raise
            duration = time.perf_counter() - start
            record = TickRecord(result, duration)
            self.last_tick = record
            self.ticks += 1
        self.metrics.ticks.inc((("trigger", trigger), ("outcome", "ok")))
        self.metrics.tick_duration.observe(duration)
        self.metrics.assignments.inc(amount=sum(len(a.order_ids) for a in result.assignments))
        return record

    async def run_background_ticks(self) -> None:
        """Tick every ``tick_interval_s`` until cancelled; a failed tick is logged, the next one runs."""
        interval = self.settings.tick_interval_s
        while True:
            await asyncio.sleep(interval)
            try:
                await self.tick("background")
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background dispatch tick failed")

    async def start(self) -> None:
        if self.settings.tick_interval_s > 0 and self.background is None:
            self.background = asyncio.create_task(self.run_background_ticks(), name="dispatch-tick")

    async def stop(self) -> None:
        task, self.background = self.background, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def gauges(self) -> list[tuple[str, str, Labels, float]]:
        """Scrape-time gauges, read under the lock like any engine state."""
        async with self.lock:
            store = self.dispatcher.store
            open_orders = {s: len(store.orders_with_status(s)) for s in OrderStatus if s.is_open}
            couriers = store.couriers_on_shift()
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
