"""Prometheus text-format metrics, kept by hand: a few counters and histograms, no dependency.

Request metrics are labelled by route template (``/v1/orders/{order_id}``), never by raw path,
so their number stays bounded whatever clients send.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["Counter", "Histogram", "MetricsMiddleware", "Registry"]

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _fmt_labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self.values: dict[Labels, float] = {}

    def inc(self, labels: Labels = (), amount: float = 1.0) -> None:
        self.values[labels] = self.values.get(labels, 0.0) + amount

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for labels, value in sorted(self.values.items()):
            yield f"{self.name}{_fmt_labels(labels)} {_num(value)}"


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: tuple[float, ...] = LATENCY_BUCKETS_S) -> None:
        self.name, self.help, self.buckets = name, help_text, buckets
        # per label set: counts per bucket (non-cumulative, +Inf last), sum, count
        self.series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, labels: Labels = ()) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = ([0] * (len(self.buckets) + 1), [0.0, 0.0])
        series[0][bisect_left(self.buckets, value)] += 1
        series[1][0] += value
        series[1][1] += 1

    def render(self) -> Iterable[str]:
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for labels, (counts, (total, n)) in sorted(self.series.items()):
            running = 0
            for bound, count in zip((*self.buckets, float("inf")), counts, strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else _num(bound)
                le_label = 'le="' + le + '"'
                yield f"{self.name}_bucket{_fmt_labels(labels, le_label)} {running}"
            yield f"{self.name}_sum{_fmt_labels(labels)} {total!r}"
            yield f"{self.name}_count{_fmt_labels(labels)} {int(n)}"


class Registry:
    """The service's metrics; gauges are computed by the caller at scrape time."""

    def __init__(self) -> None:
        self.requests = Counter("dispatch_http_requests_total", "HTTP requests by method, route and status.")
        self.latency = Histogram("dispatch_http_request_duration_seconds", "HTTP request latency by route.")
        self.ticks = Counter(
            "dispatch_ticks_total", "Dispatch ticks by trigger (background, admin) and outcome."
        )
        self.tick_duration = Histogram(
            "dispatch_tick_duration_seconds",
            "Time one dispatch tick took.",
            (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
        )
        self.assignments = Counter("dispatch_assignments_total", "Orders assigned to couriers by ticks.")
        self.skipped_records = Counter(
            "dispatch_tick_skipped_records_total",
            "Courier or order records a tick left out because they failed on their own, by kind.",
        )

    def render(self, gauges: Iterable[tuple[str, str, Labels, float]]) -> str:
        lines: list[str] = []
        metrics = (
            self.requests,
            self.latency,
            self.ticks,
            self.tick_duration,
            self.assignments,
            self.skipped_records,
        )
        for metric in metrics:
            lines.extend(metric.render())
        seen: set[str] = set()
        for name, help_text, labels, value in gauges:
            if name not in seen:
                seen.add(name)
                lines.append(f"# HELP {name} {help_text}")
                lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name}{_fmt_labels(labels)} {_num(value)}")
        return "\n".join(lines) + "\n"


class MetricsMiddleware:
    """Counts and times every HTTP request (pure ASGI: no per-request task or body copy)."""

    def __init__(self, app: ASGIApp, registry: Registry) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.registry.requests.inc((("method", method), ("route", template), ("status", str(status))))
            self.registry.latency.observe(
                time.perf_counter() - start, (("method", method), ("route", template))
            )
