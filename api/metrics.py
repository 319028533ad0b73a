"""Prometheus metrics with prometheus_client: counters and histograms of requests and ticks.

Request metrics are labelled by route template (``/v1/orders/{order_id}``), never by raw path,
so their number stays bounded whatever clients send.

With several worker processes (``dispatch serve --workers N``), prometheus_client's multiprocess
mode adds up every worker's counts: ``PROMETHEUS_MULTIPROC_DIR`` names a directory where each
process keeps its values (``dispatch serve`` makes a fresh one when it is unset), and a scrape
answered by any worker shows the totals of all of them. It must be set before a process imports
prometheus_client, which is why ``dispatch serve`` sets it before it starts the workers. Gauges of the
city's state (open orders, couriers) are computed at scrape time from the shared state, so any
worker gives the same answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Labels", "MetricsMiddleware", "Registry", "RequestsInFlight", "multiprocess"]

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
TICK_BUCKETS_S = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# a *_created series per counter doubles the output and tells a scraper nothing it needs here
prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]


def multiprocess() -> bool:
    """Whether this process keeps its metrics in files for a multiprocess scrape: decided when
    prometheus_client was imported (``PROMETHEUS_MULTIPROC_DIR`` set then), not by the variable now."""
    return values.ValueClass is not values.MutexValue


class _Labelled:
    """A counter or histogram that takes the project's ``(("name", "value"), ...)`` labels."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self.metric = metric

    def _child(self, labels: Labels) -> Counter | Histogram:
        return self.metric.labels(**dict(labels)) if labels else self.metric


class _Counter(_Labelled):
    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        child = self._child(labels)
        assert isinstance(child, Counter)
        child.inc(amount)


class _Histogram(_Labelled):
    def observe(self, value: float, labels: Labels = ()) -> None:
        child = self._child(labels)
        assert isinstance(child, Histogram)
        child.observe(value)


class Registry:
    """The service's metrics; the city's gauges are computed by the caller at scrape time."""

    def __init__(self) -> None:
        self.shared = multiprocess()
        # In multiprocess mode the values live in files, and a scrape reads every process's; the
        # metric objects are registered nowhere (one set per app: tests build many apps).
        self.registry = CollectorRegistry(auto_describe=True)
        into = None if self.shared else self.registry
        self.requests = _Counter(
            Counter(
                "dispatch_http_requests",
                "HTTP requests by method, route and status.",
                ("method", "route", "status"),
                registry=into,
            )
        )
        self.latency = _Histogram(
            Histogram(
                "dispatch_http_request_duration_seconds",
                "HTTP request latency by route.",
                ("method", "route"),
                buckets=LATENCY_BUCKETS_S,
                registry=into,
            )
        )
        self.ticks = _Counter(
            Counter(
                "dispatch_ticks",
                "Dispatch ticks by trigger (background, admin) and outcome.",
                ("trigger", "outcome"),
                registry=into,
            )
        )
        self.tick_duration = _Histogram(
            Histogram(
                "dispatch_tick_duration_seconds",
                "Time one dispatch tick took.",
                buckets=TICK_BUCKETS_S,
                registry=into,
            )
        )
        self.assignments = _Counter(
            Counter("dispatch_assignments", "Orders assigned to couriers by ticks.", registry=into)
        )
        self.skipped_records = _Counter(
            Counter(
                "dispatch_tick_skipped_records",
                "Courier or order records a tick left out because they failed on their own, by kind.",
                ("kind",),
                registry=into,
            )
        )
        #: ticks failed in a row; across workers the largest (only the lease holder ticks)
        self.failing_ticks = Gauge(
            "dispatch_tick_failures_in_a_row",
            "Dispatch ticks failed in a row; not 0 means /healthz is degraded.",
            registry=into,
            multiprocess_mode="livemax",
        )
        if self.shared:
            MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]

    def render(self, gauges: Iterable[tuple[str, str, Labels, float]]) -> str:
        """Prometheus text format 0.0.4: the metrics (all workers' in multiprocess mode), then
        the scrape-time gauges."""
        lines = [generate_latest(self.registry).decode().rstrip("\n")]
        seen: set[str] = set()
        for name, help_text, labels, value in gauges:
            if name not in seen:
                seen.add(name)
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name}{_fmt_labels(labels)} {_num(value)}")
        return "\n".join(lines) + "\n"


def _fmt_labels(labels: Labels) -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class RequestsInFlight:
    """Requests being worked on now: from their arrival to the start of their answer (a streamed
    answer, such as an event stream, counts no longer once it has started). Background work that
    should not delay requests (the webhook delivery loop) waits for none to be in flight."""

    def __init__(self) -> None:
        self.count = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    def enter(self) -> None:
        self.count += 1
        self._quiet.clear()

    def leave(self) -> None:
        self.count -= 1
        if self.count <= 0:
            self.count = 0
            self._quiet.set()

    async def quiet(self, max_wait_s: float) -> None:
        """Return once no request is in flight, or after ``max_wait_s`` whatever the load (so
        that background work is deferred under load, never starved)."""
        if self.count:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max_wait_s):  # not wait_for: it can swallow a cancel
                    await self._quiet.wait()


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: no per-request task or body copy), and
    keeps :class:`RequestsInFlight`."""

    def __init__(self, app: ASGIApp, registry: Registry, in_flight: RequestsInFlight | None = None) -> None:
        self.app = app
        self.registry = registry
        self.in_flight = in_flight or RequestsInFlight()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        in_flight = self.in_flight
        in_flight.enter()
        answering = True

        async def send_status(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                status = message["status"]
                if answering:
                    answering = False
                    in_flight.leave()
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if answering:
                in_flight.leave()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.registry.requests.inc((("method", method), ("route", template), ("status", str(status))))
            self.registry.latency.observe(
                time.perf_counter() - start, (("method", method), ("route", template))
            )
