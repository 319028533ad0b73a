"""The HTML report of a simulated city day: one self-contained file, made to be looked at.

:func:`write_report` reads only the four files a run writes (``kpis.json``, ``orders.csv``,
``couriers.csv``, ``timeline.csv``; see ``notes/sim_interface.md``) and writes
``report.html`` beside them: a header saying what was run, headline numbers per variant, the
KPI table with each variant's difference to the first, the day over time, distributions, and
maps. Every chart is an inline SVG drawn by matplotlib (no JavaScript, no CDN, no map tiles),
so the file opens anywhere with no network, and the same files give the same bytes.

Maps of a live city (``"coordinates": "latlng"``) are H3 hexagons at a resolution that suits
the city's size and the number of orders, over the city's outline (a circle of its radius).
Maps of the Grubhub replay (``"planar_m"``) are drawn in the instance's own metres on a square
grid, over its bounding box.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, cast

import h3
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import Colormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Rectangle
from matplotlib.ticker import FuncFormatter, MultipleLocator

from dispatch.errors import InvalidInput

__all__ = ["KPI_LABELS", "h3_resolution_for", "write_report"]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

#: label, unit and which way is better (+1 higher, -1 lower, 0 neither, 2 closer to zero)
KPI_LABELS: dict[str, tuple[str, str, int]] = {
    "orders_requested": ("Orders requested", "", 0),
    "orders_accepted": ("Orders accepted", "", 1),
    "orders_refused": ("Orders refused", "", -1),
    "orders_delivered": ("Orders delivered", "", 1),
    "orders_cancelled": ("Orders cancelled", "", -1),
    "orders_undelivered": ("Accepted, never delivered", "", -1),
    "click_to_door_mean_min": ("Click-to-door, mean", "min", -1),
    "click_to_door_p50_min": ("Click-to-door, median", "min", -1),
    "click_to_door_p90_min": ("Click-to-door, 90th percentile", "min", -1),
    "on_time_share": ("Delivered within the promise", "share", 1),
    "late_mean_min": ("Lateness of the late ones, mean", "min", -1),
    "ready_to_pickup_mean_min": ("Food waiting for a courier, mean", "min", -1),
    "courier_wait_for_food_mean_min": ("Courier waiting for food, mean", "min", -1),
    "orders_per_courier_hour": ("Orders per courier-hour", "", 1),
    "utilization": ("Courier utilization", "share", 1),
    "orders_per_bundle": ("Orders per bundle", "", 0),
    "pickup_eta_mae_min": ("Pickup ETA error, mean absolute", "min", -1),
    "pickup_eta_p90_min": ("Pickup ETA error, 90th percentile", "min", -1),
    "pickup_eta_bias_min": ("Pickup ETA bias (actual - ETA)", "min", 2),
    "dropoff_eta_mae_min": ("Drop-off ETA error, mean absolute", "min", -1),
    "dropoff_eta_p90_min": ("Drop-off ETA error, 90th percentile", "min", -1),
    "dropoff_eta_bias_min": ("Drop-off ETA bias (actual - ETA)", "min", 2),
    "decision_s_mean": ("Decision time per tick, mean", "s", -1),
    "decision_s_p99": ("Decision time per tick, p99", "s", -1),
    # the Grubhub replay's own measures
    "target_overage_mean_min": ("Click-to-door past the 40-min target, mean", "min", -1),
    "cost_per_order_usd": ("Courier pay per order", "$", -1),
    "couriers_paid_guarantee_share": ("Couriers paid the hourly guarantee", "share", 0),
}
_PALETTE = ("#1f77b4", "#e6550d", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")
_STATUS_COLOURS = {"idle": "#9ecae1", "busy": "#3182bd", "waiting": "#fd8d3c"}
_STATUS_LABELS = {"idle": "idle", "busy": "busy", "waiting": "waiting at a merchant"}
_MAP_CELLS_MAX = 900
_SLOT_H = 0.25  # timeline.csv has a row per 15 minutes
#: a cell's mean or share is drawn from this many delivered orders on (fewer say little)
_MIN_ORDERS_FOR_MEAN = 3


# -- reading -----------------------------------------------------------------------------------


class _Table:
    """A CSV file as columns, one row per line; numbers are read on demand, empty = NaN."""

    def __init__(self, path: Path, required: Iterable[str]) -> None:
        if not path.is_file():
            raise InvalidInput(f"{path}: file is missing", field=path.name)
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InvalidInput(f"{path}: file is empty (a header line is expected)", field=path.name)
            rows = [r for r in reader if r]
        self.path = path
        self.header = header
        missing = [c for c in required if c not in header]
        if missing:
            raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}", field=missing[0])
        for n, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise InvalidInput(
                    f"{path}:{n}: expected {len(header)} columns, got {len(row)}", field=path.name
                )
        self._columns = {name: [r[i] for r in rows] for i, name in enumerate(header)}
        self._lines = list(range(2, len(rows) + 2))  # each row's line in the file, for errors
        self.length = len(rows)

    def text(self, name: str) -> list[str]:
        return self._columns[name]

    def num(self, name: str) -> FloatArray:
        out = np.full(self.length, np.nan)
        for i, value in enumerate(self._columns[name]):
            if value.strip():
                try:
                    out[i] = float(value)
                except ValueError:
                    raise InvalidInput(
                        f"{self.path}:{self._lines[i]}: {name} {value!r} is not a number", field=name
                    ) from None
        return out

    def where(self, column: str, value: str) -> _Table:
        """The rows whose ``column`` equals ``value``, as a table of their own."""
        keep = [i for i, v in enumerate(self._columns[column]) if v == value]
        sub = object.__new__(_Table)
        sub.path, sub.header, sub.length = self.path, self.header, len(keep)
        sub._columns = {name: [values[i] for i in keep] for name, values in self._columns.items()}
        sub._lines = [self._lines[i] for i in keep]
        return sub


@dataclass(frozen=True)
class _Variant:
    name: str
    params: dict[str, Any]
    kpis: dict[str, float]
    colour: str
    orders: _Table
    couriers: _Table
    timeline: _Table


@dataclass(frozen=True)
class _Run:
    meta: dict[str, Any]
    planar: bool
    variants: list[_Variant]


_ORDER_COLUMNS = [
    "variant",
    "order_id",
    "merchant_id",
    "status",
    "refusal_code",
    "placed_at",
    "window_end",
    "picked_up_at",
    "delivered_at",
    "pickup_eta_at_assignment",
    "dropoff_eta_at_placement",
    "click_to_door_s",
    "on_time",
]
_COURIER_COLUMNS = ["variant", "courier_id", "idle_s", "busy_s", "waiting_at_merchant_s"]
_TIMELINE_COLUMNS = [
    "variant",
    "t",
    "orders_placed",
    "open_orders",
    "couriers_idle",
    "couriers_busy",
    "couriers_waiting",
]


def _read(out_dir: Path) -> _Run:
    path = out_dir / "kpis.json"
    if not path.is_file():
        raise InvalidInput(f"{path}: file is missing", field="kpis.json")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not JSON: {exc}", field="kpis.json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict):
        raise InvalidInput(f"{path}: expected an object with 'meta' and 'variants'", field="meta")
    meta: dict[str, Any] = doc["meta"]
    variants = doc.get("variants")
    if not isinstance(variants, list) or not variants:
        raise InvalidInput(f"{path}: 'variants' must be a non-empty list", field="variants")
    coordinates = meta.get("coordinates", "latlng")
    if coordinates not in ("latlng", "planar_m"):
        raise InvalidInput(
            f"{path}: meta.coordinates is {coordinates!r}; allowed: 'latlng', 'planar_m'", field="coordinates"
        )
    planar = coordinates == "planar_m"
    city = meta.get("city")
    key = "bbox_m" if planar else "radius_m"
    if not isinstance(city, dict) or key not in city or (not planar and "center" not in city):
        needs = "city.bbox_m" if planar else "city.center and city.radius_m"
        raise InvalidInput(f"{path}: meta needs {needs}", field="city")
    xy = ("x", "y") if planar else ("lat", "lng")
    orders = _Table(
        out_dir / "orders.csv", [*_ORDER_COLUMNS, *(f"{w}_{a}" for w in ("merchant", "dropoff") for a in xy)]
    )
    couriers = _Table(out_dir / "couriers.csv", [*_COURIER_COLUMNS, *(f"start_{a}" for a in xy)])
    timeline = _Table(out_dir / "timeline.csv", _TIMELINE_COLUMNS)
    runs = []
    for i, v in enumerate(variants):
        if (
            not isinstance(v, dict)
            or not isinstance(v.get("name"), str)
            or not isinstance(v.get("kpis"), dict)
        ):
            raise InvalidInput(f"{path}: variant {i + 1} needs a 'name' and 'kpis'", field="variants")
        name = v["name"]
        runs.append(
            _Variant(
                name,
                dict(v.get("params") or {}),
                dict(v["kpis"]),
                _PALETTE[i % len(_PALETTE)],
                orders.where("variant", name),
                couriers.where("variant", name),
                timeline.where("variant", name),
            )
        )
    return _Run(meta, planar, runs)


# -- drawing -----------------------------------------------------------------------------------


def _style() -> dict[str, Any]:
    return {
        "svg.fonttype": "none",  # text stays text: smaller files, the browser's own fonts
        "svg.hashsalt": "dispatch-report",  # the same ids in every run: byte-for-byte output
        "font.family": "sans-serif",
        "font.sans-serif": ["DejaVu Sans"],  # ships with matplotlib
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.color": "#e6e6e6",
        "grid.linewidth": 0.6,
        "axes.edgecolor": "#888888",
        "axes.titlesize": 10,
        "axes.titleweight": "bold",
        "axes.titlelocation": "left",
        "legend.frameon": False,
        "path.simplify": True,
    }


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.S)
    # scale with the page: drop the fixed size, keep the viewBox
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)


def _clock(hours: float, _pos: object = None) -> str:
    minutes = round(hours * 60)
    return f"{minutes // 60 % 24:02d}:{minutes % 60:02d}"


def _time_axis(ax: Axes, span_h: float) -> None:
    """Clock times on the x axis (hours from midnight), every half hour, hour or two hours."""
    ax.xaxis.set_major_formatter(FuncFormatter(_clock))
    ax.xaxis.set_major_locator(MultipleLocator(0.5 if span_h <= 4 else 1 if span_h <= 10 else 2))


def _figure(width: float = 6.4, height: float = 2.8) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def _line_chart(
    run: _Run,
    title: str,
    ylabel: str,
    series: Callable[[_Variant], tuple[FloatArray, FloatArray]],
    *,
    step: bool = False,
    share: bool = False,
) -> str:
    fig = _figure()
    ax = fig.add_subplot()
    drawn: list[str] = []
    lines = [(v, *series(v)) for v in run.variants]
    if len(lines) > 1 and all(
        np.array_equal(x, lines[0][1], equal_nan=True) and np.array_equal(y, lines[0][2], equal_nan=True)
        for _, x, y in lines
    ):
        lines = [(replace(lines[0][0], name="every variant", colour="#444444"), lines[0][1], lines[0][2])]
    for v, x, y in lines:
        if not len(x):
            continue
        drawn.append(v.name)
        if step:
            ax.step(x, y, where="post", color=v.colour, lw=1.6, label=v.name)
        else:
            ax.plot(x, y, color=v.colour, lw=1.6, marker="o", ms=3, label=v.name)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if not drawn:
        _no_data(ax, "nothing to show")
    else:
        _time_axis(ax, _span_h(run))
        if share:
            ax.set_ylim(-0.02, 1.02)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: f"{y:.0%}"))
        else:
            ax.set_ylim(bottom=0)
        if len(run.variants) > 1:
            ax.legend(loc="best", fontsize=8)
    return _svg(fig)


def _span_h(run: _Run) -> float:
    times = [t for v in run.variants for t in v.timeline.num("t")]
    return (max(times) - min(times)) / 3600 if times else 0.0


def _timeline_series(column: str) -> Callable[[_Variant], tuple[FloatArray, FloatArray]]:
    def series(v: _Variant) -> tuple[FloatArray, FloatArray]:
        t = v.timeline.num("t")
        order = np.argsort(t, kind="stable")
        hours, values = t[order] / 3600, v.timeline.num(column)[order]
        if len(hours):  # the last slot drawn to its end, as the others are
            hours = np.append(hours, hours[-1] + _SLOT_H)
            values = np.append(values, values[-1])
        return hours, values

    return series


def _hourly(v: _Variant, value: Callable[[_Variant], FloatArray]) -> tuple[FloatArray, FloatArray]:
    """Mean of ``value`` over the delivered orders, by the hour they were placed in."""
    placed = v.orders.num("placed_at")
    values = value(v)
    ok = ~np.isnan(values) & (np.array(v.orders.text("status")) == "delivered")
    hours = np.floor(placed[ok] / 3600)
    xs, ys = [], []
    for h in np.unique(hours):
        xs.append(h + 0.5)
        ys.append(float(np.mean(values[ok][hours == h])))
    return np.array(xs, dtype=float), np.array(ys, dtype=float)


def _couriers_chart(run: _Run) -> str:
    n = len(run.variants)
    fig = _figure(6.4, 1.1 + 1.5 * n)
    axes = fig.subplots(n, 1, sharex=True, sharey=True, squeeze=False)[:, 0]
    for ax, v in zip(axes, run.variants, strict=True):
        t = v.timeline.num("t")
        order = np.argsort(t, kind="stable")
        hours = t[order] / 3600
        stacks = [np.nan_to_num(v.timeline.num(f"couriers_{s}")[order]) for s in _STATUS_COLOURS]
        if len(hours):
            ax.stackplot(
                hours,
                *stacks,
                labels=list(_STATUS_LABELS.values()),
                colors=list(_STATUS_COLOURS.values()),
                step="post",
                lw=0,
            )
            _time_axis(ax, _span_h(run))
        else:
            _no_data(ax, "no timeline")
        ax.set_title(v.name, color=v.colour, fontsize=9)
        ax.set_ylabel("couriers")
    fig.suptitle("Couriers on shift", x=0.01, ha="left", weight="bold", size=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper right", fontsize=8, ncols=3)
    return _svg(fig)


def _distribution(
    run: _Run, title: str, xlabel: str, value: Callable[[_Variant], FloatArray], *, mark_zero: bool = False
) -> str:
    fig = _figure()
    ax = fig.add_subplot()
    data = [(v, value(v)) for v in run.variants]
    data = [(v, d[~np.isnan(d)]) for v, d in data]
    everything = np.concatenate([d for _, d in data]) if data else np.array([])
    ax.set_title(title)
    if not len(everything):
        _no_data(ax, "no data in this run")
        return _svg(fig)
    lo, hi = np.percentile(everything, [0.5, 99.5])
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    bins = [float(b) for b in np.linspace(lo, hi, 41)]
    for v, d in data:
        if not len(d):
            continue
        clipped = np.clip(d, lo, hi)
        weights = np.full(len(d), 1 / len(d))
        ax.hist(clipped, bins=bins, weights=weights, histtype="stepfilled", alpha=0.18, color=v.colour)
        ax.hist(clipped, bins=bins, weights=weights, histtype="step", lw=1.6, color=v.colour,
                label=f"{v.name}: median {np.median(d):.1f}, n={len(d)}")  # fmt: skip
    if mark_zero and lo < 0 < hi:
        ax.axvline(0, color="#333333", lw=0.8, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("share of orders")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: f"{y:.0%}"))
    ax.legend(loc="upper right", fontsize=8)
    return _svg(fig)


def _minutes_between(later: str, earlier: str) -> Callable[[_Variant], FloatArray]:
    def value(v: _Variant) -> FloatArray:
        result: FloatArray = (v.orders.num(later) - v.orders.num(earlier)) / 60
        return result

    return value


# -- maps --------------------------------------------------------------------------------------


def h3_resolution_for(radius_m: float, n_orders: int) -> int:
    """The H3 resolution whose cells cover a city of ``radius_m`` in about ``n_orders / 5`` cells.

    Five orders a cell on average, but at least 60 cells (a map, not a blob) and at most 900
    (cells still big enough to see).

    >>> h3_resolution_for(6000, 1000), h3_resolution_for(1500, 1000), h3_resolution_for(30000, 25000)
    (8, 10, 7)
    """
    area_m2 = math.pi * radius_m**2
    target = min(_MAP_CELLS_MAX, max(60.0, n_orders / 5))
    return min(
        range(4, 12), key=lambda r: abs(math.log(area_m2 / h3.average_hexagon_area(r, "m^2") / target))
    )


class _Grid:
    """Cells of the map: H3 hexagons of a live city, or squares in the plane (kilometres)."""

    def __init__(self, run: _Run, n_points: int) -> None:
        city = run.meta["city"]
        self.planar = run.planar
        if run.planar:
            xmin, ymin, xmax, ymax = (float(c) for c in city["bbox_m"])
            self.bbox = (xmin, ymin, xmax, ymax)
            area = max(1.0, (xmax - xmin) * (ymax - ymin))
            target = min(_MAP_CELLS_MAX, max(60.0, n_points / 5))
            raw = math.sqrt(area / target)
            nice = [100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000, 20000]
            self.size_m = float(min(nice, key=lambda s: abs(math.log(s / raw))))
            self.describe = (
                f"squares of {self.size_m:,.0f} m x {self.size_m:,.0f} m in the instance's plane (metres)"
            )
        else:
            self.lat0, self.lng0 = (float(c) for c in city["center"])
            self.radius_m = float(city["radius_m"])
            self.res = h3_resolution_for(self.radius_m, n_points)
            edge = h3.average_hexagon_edge_length(self.res, "m")
            self.describe = f"H3 hexagons of resolution {self.res} (edge about {edge:,.0f} m)"
        self._polygons: dict[Any, FloatArray] = {}

    def km(self, a: FloatArray, b: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Map coordinates in km: planar x/y, or east/north of the city centre."""
        if self.planar:
            return a / 1000, b / 1000
        east = (b - self.lng0) * 111.32 * math.cos(math.radians(self.lat0))
        north = (a - self.lat0) * 110.574
        return east, north

    def cells(self, a: FloatArray, b: FloatArray) -> list[Any]:
        ok = ~(np.isnan(a) | np.isnan(b))
        out: list[Any] = [None] * len(a)
        for i in np.flatnonzero(ok):
            if self.planar:
                out[i] = (math.floor(a[i] / self.size_m), math.floor(b[i] / self.size_m))
            else:
                out[i] = h3.latlng_to_cell(float(a[i]), float(b[i]), self.res)
        return out

    def polygon(self, cell: Any) -> FloatArray:
        if cell not in self._polygons:
            if self.planar:
                i, j = cell
                s = self.size_m
                xs = np.array([i, i + 1, i + 1, i], dtype=float) * s
                ys = np.array([j, j, j + 1, j + 1], dtype=float) * s
            else:
                boundary = np.array(h3.cell_to_boundary(cell), dtype=float)
                xs, ys = boundary[:, 0], boundary[:, 1]
            e, n = self.km(xs, ys)
            self._polygons[cell] = np.column_stack([e, n])
        return self._polygons[cell]

    def outline(self, ax: Axes) -> None:
        if self.planar:
            xmin, ymin, xmax, ymax = (c / 1000 for c in self.bbox)
            ax.add_patch(Rectangle((xmin, ymin), xmax - xmin, ymax - ymin, fill=False, ec="#555555", lw=1))
            # a square view around the box, never thinner than two cells (a day on one street)
            half = 0.53 * max(xmax - xmin, ymax - ymin, 2 * self.size_m / 1000)
            cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
            ax.set_xlim(cx - half, cx + half)
            ax.set_ylim(cy - half, cy + half)
            ax.set_xlabel("x (km)")
            ax.set_ylabel("y (km)")
        else:
            r = self.radius_m / 1000
            ax.add_patch(Circle((0, 0), r, fill=False, ec="#555555", lw=1, ls="-"))
            ax.set_xlim(-1.08 * r, 1.08 * r)
            ax.set_ylim(-1.08 * r, 1.08 * r)
            ax.set_xlabel("km east of the centre")
            ax.set_ylabel("km north")
        ax.set_aspect("equal")
        ax.grid(False)


@dataclass(frozen=True)
class _Layer:
    key: str
    title: str
    unit: str
    cmap: str
    #: per variant: cell -> value
    values: dict[str, dict[Any, float]]
    vmin: float | None = None
    vmax: float | None = None
    fmt: str = "{:.0f}"


def _by_cell(cells: Sequence[Any], values: FloatArray, how: str) -> dict[Any, float]:
    """Sum, or mean over cells of at least ``_MIN_ORDERS_FOR_MEAN`` values, of ``values`` per cell."""
    groups: dict[Any, list[float]] = {}
    for cell, value in zip(cells, values, strict=True):
        if cell is not None and not math.isnan(value):
            groups.setdefault(cell, []).append(float(value))
    if how == "sum":
        return {c: float(sum(v)) for c, v in groups.items()}
    return {c: float(np.mean(v)) for c, v in groups.items() if len(v) >= _MIN_ORDERS_FOR_MEAN}


def _map_layers(run: _Run, grid: _Grid) -> list[_Layer]:
    a, b = ("x", "y") if run.planar else ("lat", "lng")
    demand, c2d, on_time, refused, idle = {}, {}, {}, {}, {}
    for v in run.variants:
        cells = grid.cells(v.orders.num(f"dropoff_{a}"), v.orders.num(f"dropoff_{b}"))
        status = np.array(v.orders.text("status"))
        ones = np.ones(v.orders.length)
        delivered = status == "delivered"
        demand[v.name] = _by_cell(cells, ones, "sum")
        c2d[v.name] = _by_cell(
            cells, np.where(delivered, v.orders.num("click_to_door_s") / 60, np.nan), "mean"
        )
        on_time[v.name] = _by_cell(cells, np.where(delivered, v.orders.num("on_time"), np.nan), "mean")
        refused[v.name] = _by_cell(cells, np.where(status == "refused", 1.0, np.nan), "sum")
        start = grid.cells(v.couriers.num(f"start_{a}"), v.couriers.num(f"start_{b}"))
        idle[v.name] = _by_cell(start, v.couriers.num("idle_s") / 3600, "sum")
    return [
        _Layer("demand", "Orders requested", "orders per cell", "Blues", demand),
        _Layer("click-to-door", "Mean click-to-door", "minutes", "YlOrRd", c2d, fmt="{:.1f}"),
        _Layer("on-time", "Delivered within the promise", "share", "RdYlGn", on_time, 0.0, 1.0, "{:.0%}"),
        _Layer("refusals", "Orders refused", "orders per cell", "Reds", refused),
        _Layer("idle", "Courier idle time, by where shifts start", "hours", "Purples", idle, fmt="{:.1f}"),
    ]


def _colormap(name: str) -> Colormap:
    """The named colormap; a sequential one without its palest sixth, so small values show on white."""
    cmap = matplotlib.colormaps[name]
    if name == "RdYlGn":
        return cmap
    return ListedColormap(cmap(np.linspace(0.17, 1.0, 256)), name=f"{name}_visible")


def _draw_map(
    run: _Run, grid: _Grid, layer: _Layer, variant: _Variant | None, vmin: float, vmax: float
) -> str:
    values = layer.values[(variant or run.variants[0]).name]
    fig = _figure(4.2, 4.3)
    ax = fig.add_subplot()
    grid.outline(ax)
    cells = sorted(values, key=str)
    if cells:
        norm = Normalize(vmin=vmin, vmax=vmax)
        collection = PolyCollection(
            [grid.polygon(c) for c in cells],
            array=np.array([values[c] for c in cells]),
            cmap=_colormap(layer.cmap),
            norm=norm,
            edgecolors="white",
            linewidths=0.3,
        )
        collection.set_gid("cells")
        ax.add_collection(collection)
        corners = np.concatenate([grid.polygon(c) for c in cells])
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        ax.set_xlim(min(x0, corners[:, 0].min()), max(x1, corners[:, 0].max()))
        ax.set_ylim(min(y0, corners[:, 1].min()), max(y1, corners[:, 1].max()))
        over = any(values[c] > vmax for c in cells)
        bar = fig.colorbar(collection, ax=ax, shrink=0.75, pad=0.02, extend="max" if over else "neither")
        bar.set_label(layer.unit)
        if layer.fmt == "{:.0%}":
            bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _p: f"{y:.0%}"))
    else:
        ax.text(0.5, 0.5, "none", ha="center", va="center", color="#777777", transform=ax.transAxes)
    a, b = ("x", "y") if run.planar else ("lat", "lng")
    merchants = run.meta.get("merchants") or []
    if merchants:
        mx = np.array([float(m.get(a, np.nan)) for m in merchants])
        my = np.array([float(m.get(b, np.nan)) for m in merchants])
        e, n = grid.km(mx, my)
        ax.scatter(e, n, s=9, marker="s", c="#222222", linewidths=0, label="merchants", zorder=3)
    title = "every variant" if variant is None else variant.name
    ax.set_title(title, color="#444444" if variant is None else variant.colour)
    tips = [f"{layer.fmt.format(values[c])} {'' if layer.fmt == '{:.0%}' else layer.unit}" for c in cells]
    return _with_tooltips(_svg(fig), "cells", tips)


def _with_tooltips(svg: str, gid: str, tips: Sequence[str]) -> str:
    """Give the n-th shape of group ``gid`` the n-th tip (shown when the pointer rests on it)."""
    start = svg.find(f'<g id="{gid}">')
    if start < 0 or not tips:
        return svg
    end = svg.index("</g>", start)
    shapes = iter(tips)

    def tip(match: re.Match[str]) -> str:
        text = next(shapes, None)
        if text is None:
            return match.group(0)
        return f"{match.group(1)}><title>{html.escape(text.strip())}</title></path>"

    body = re.sub(r"(<path\b[^>]*?)\s*/>", tip, svg[start:end])
    return svg[:start] + body + svg[end:]


def _maps(run: _Run) -> tuple[str, list[tuple[str, str, list[tuple[str, str]]]]]:
    """The grid's description, and per layer: key, title, [(figure id, svg)]."""
    slugs: dict[str, str] = {}
    for i, v in enumerate(run.variants):  # ids for the page: unique even if two names slug alike
        slug = _slug(v.name)
        slugs[v.name] = slug if slug not in slugs.values() else f"{slug}-{i + 1}"
    n_points = max((v.orders.length for v in run.variants), default=0)
    grid = _Grid(run, n_points)
    out = []
    for layer in _map_layers(run, grid):
        per_variant = [layer.values[v.name] for v in run.variants]
        everything = [x for values in per_variant for x in values.values()]
        vmin = (
            layer.vmin
            if layer.vmin is not None
            else (min(everything, default=0.0) if layer.key in ("click-to-door",) else 0.0)
        )
        vmax = layer.vmax if layer.vmax is not None else max(everything, default=1.0)
        if layer.key == "click-to-door" and everything:
            # a few slow cells of few orders would wash the rest out: the scale ends at the 95th
            # percentile and the colour bar's arrow says there is more
            vmax = float(np.percentile(everything, 95))
        if vmax <= vmin:
            vmax = vmin + 1
        same = all(p == per_variant[0] for p in per_variant)
        if same:
            figures = [(f"map-{layer.key}", _draw_map(run, grid, layer, None, vmin, vmax))]
        else:
            figures = [
                (f"map-{layer.key}-{slugs[v.name]}", _draw_map(run, grid, layer, v, vmin, vmax))
                for v in run.variants
            ]
        out.append((layer.key, layer.title, figures))
    return grid.describe, out


# -- the page ----------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "variant"


def _fmt(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value:.1%}"
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 0.1 or value == 0:
        return f"{value:,.2f}"
    return f"{value:.4f}"


def _delta(value: float, base: float, unit: str, better: int) -> str:
    diff = value - base
    if diff == 0:
        return '<span class="delta same">=</span>'
    if unit == "share":
        text = f"{diff * 100:+.1f} pt"
    else:
        text = ("+" if diff > 0 else "-") + _fmt(abs(diff), unit)
        if base:
            text += f" ({diff / abs(base):+.0%})"
    good = abs(value) < abs(base) if better == 2 else diff * better > 0
    kind = "neutral" if better == 0 else ("good" if good else "bad")
    return f'<span class="delta {kind}">{html.escape(text)}</span>'


def _kpi_table(run: _Run) -> str:
    keys: list[str] = []
    for v in run.variants:
        keys += [k for k in v.kpis if k not in keys]
    known = [k for k in KPI_LABELS if k in keys]
    refusal_keys = [k for k in keys if k.startswith("refused_")]
    others = [k for k in keys if k not in KPI_LABELS and k not in refusal_keys]
    order = []
    for k in known:
        order.append(k)
        if k == "orders_refused":
            order += refusal_keys
    if "orders_refused" not in known:
        order += refusal_keys
    order += others
    base = run.variants[0]
    head = "".join(
        f'<th style="border-bottom-color:{v.colour}">{html.escape(v.name)}</th>' for v in run.variants
    )
    rows = []
    for k in order:
        if k.startswith("refused_"):
            label, unit, better = f"&nbsp;&nbsp;refused: {html.escape(k[len('refused_') :])}", "", -1
        else:
            name, unit, better = KPI_LABELS.get(k, (k.replace("_", " "), "", 0))
            label = html.escape(name) + (
                f' <span class="unit">{unit}</span>' if unit and unit != "share" else ""
            )
        cells = []
        for v in run.variants:
            value = v.kpis.get(k)
            if not isinstance(value, int | float) or isinstance(value, bool):
                cells.append("<td>-</td>" if value is None else f"<td>{html.escape(str(value))}</td>")
                continue
            text = _fmt(float(value), unit)
            b = base.kpis.get(k)
            if v is not base and isinstance(b, int | float) and not isinstance(b, bool):
                text += " " + _delta(float(value), float(b), unit, better)
            cells.append(f"<td>{text}</td>")
        rows.append(f'<tr><th scope="row" title="{html.escape(k)}">{label}</th>{"".join(cells)}</tr>')
    return (
        f'<table class="kpis" id="kpi-table"><thead><tr><th>KPI</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _cards(run: _Run) -> str:
    picks = [
        ("on_time_share", "on time", "share"),
        ("click_to_door_mean_min", "click-to-door, min", ""),
        ("orders_delivered", "delivered", ""),
        ("orders_refused", "refused", ""),
    ]
    out = []
    for v in run.variants:
        items = []
        for key, label, unit in picks:
            value = v.kpis.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool):
                items.append(
                    f'<div class="big">{_fmt(float(value), unit)}</div><div class="small">{label}</div>'
                )
        out.append(
            f'<div class="card" style="border-top-color:{v.colour}"><h3 style="color:{v.colour}">'
            f'{html.escape(v.name)}</h3><div class="nums">'
            + "".join(f"<div>{i}</div>" for i in items)
            + "</div></div>"
        )
    return f'<div class="cards">{"".join(out)}</div>'


def _figure_html(fig_id: str, svg: str, caption: str = "") -> str:
    # matplotlib names the parts of every figure alike (figure_1, clip paths): one page, unique ids
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{fig_id}-\1"', svg)
    svg = svg.replace("url(#", f"url(#{fig_id}-").replace('href="#', f'href="#{fig_id}-')
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="chart" id="{html.escape(fig_id)}">{svg}{cap}</figure>'


_CSS = """
:root { color-scheme: light; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; margin: 0; color: #222;
       background: #f6f7f9; }
header { background: #1d2b3a; color: #fff; padding: 18px 28px 14px; }
header h1 { margin: 0 0 6px; font-size: 22px; font-weight: 600; }
header .meta { font-size: 13px; opacity: 0.9; }
header .meta span { margin-right: 18px; }
header code { display: inline-block; margin-top: 8px; background: #0f1822; color: #d7e3f0;
              padding: 4px 8px; border-radius: 4px; font-size: 12px; }
header nav { margin-top: 8px; font-size: 13px; }
header nav a { color: #9fc5ec; text-decoration: none; }
.chip { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 0; }
.split { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
.split > #kpis { flex: 0 0 auto; max-width: 100%; overflow-x: auto; }
.split > #kpis p.note { max-width: 520px; }
table.kpis td { white-space: nowrap; }
.split > #day { flex: 1 1 560px; min-width: 0; }
main { padding: 10px 28px 40px; max-width: 1500px; }
section { margin-top: 22px; }
h2 { font-size: 17px; margin: 0 0 4px; border-bottom: 2px solid #d5d9df; padding-bottom: 4px; }
p.note { font-size: 12.5px; color: #555; margin: 4px 0 10px; max-width: 1000px; }
.cards { display: flex; flex-wrap: wrap; gap: 14px; }
.card { background: #fff; border-top: 4px solid #888; border-radius: 6px; padding: 8px 16px 10px;
        box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
.card h3 { margin: 0 0 4px; font-size: 14px; }
.card .nums { display: flex; gap: 22px; }
.card .big { font-size: 24px; font-weight: 600; }
.card .small { font-size: 11px; color: #666; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(520px, 1fr)); gap: 12px; }
.layers { display: flex; flex-wrap: wrap; gap: 8px 26px; }
.layer h3 { font-size: 14px; margin: 10px 0 6px; }
.maps { display: flex; flex-wrap: wrap; gap: 10px; }
.maps figure.chart { width: 330px; }
figure.chart { margin: 0; background: #fff; border-radius: 6px; padding: 6px;
               box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
figure.chart svg { width: 100%; height: auto; display: block; }
figcaption { font-size: 11.5px; color: #555; padding: 2px 6px 4px; }
table.kpis { border-collapse: collapse; background: #fff; font-size: 13px;
             box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
table.kpis th, table.kpis td { padding: 4px 12px; text-align: right; border-bottom: 1px solid #eee; }
table.kpis thead th { border-bottom: 3px solid #888; }
table.kpis th[scope=row], table.kpis thead th:first-child { text-align: left; font-weight: normal; }
table.kpis .unit { color: #888; font-size: 11px; }
.delta { font-size: 11.5px; margin-left: 4px; }
.delta.good { color: #1a7f37; } .delta.bad { color: #c62828; }
.delta.neutral, .delta.same { color: #777; }
"""


def _page(run: _Run) -> str:
    meta = run.meta
    variants = run.variants
    chips = " ".join(
        f'<span class="chip" style="background:{v.colour}"></span>{html.escape(v.name)}'
        + (
            f" <small>({html.escape(', '.join(f'{k}={p}' for k, p in v.params.items()))})</small>"
            if v.params
            else ""
        )
        for v in variants
    )
    day = ""
    if "day_start_s" in meta and "day_end_s" in meta:
        day = f"<span>day {_clock(meta['day_start_s'] / 3600)}-{_clock(meta['day_end_s'] / 3600)}</span>"
    # a recorded day (the Grubhub replay) has no seed
    seed = f"<span>seed {html.escape(str(meta['seed']))}</span>" if meta.get("seed") is not None else ""
    nav = " · ".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (("summary", "at a glance"), ("kpis", "KPIs"), ("day", "the day"),
                     ("distributions", "distributions"), ("maps", "maps"))
    )  # fmt: skip
    header = (
        f"<header><h1>{html.escape(str(meta.get('scenario', 'city day')))}</h1>"
        f'<div class="meta">{seed}'
        f"<span>version {html.escape(str(meta.get('version', '-')))}</span>{day}"
        f"<span>variants: {chips}</span></div>"
        f"<code>{html.escape(str(meta.get('command', '')))}</code><nav>{nav}</nav></header>"
    )
    sections = [
        f'<section id="summary"><h2>At a glance</h2>{_cards(run)}</section>',
        '<section id="kpis"><h2>KPIs</h2><p class="note">Every variant side by side; after each value, '
        f"its difference to the first variant ({html.escape(variants[0].name)}), green where better, "
        "red where worse. Bias is actual minus what the engine said: positive means later than said.</p>"
        f"{_kpi_table(run)}</section>",
    ]
    day_charts = [
        _figure_html(
            "chart-orders-placed",
            _line_chart(
                run, "Orders placed per 15 minutes", "orders", _timeline_series("orders_placed"), step=True
            ),
        ),
        _figure_html(
            "chart-open-orders",
            _line_chart(
                run,
                "Open orders (placed, not yet delivered)",
                "orders",
                _timeline_series("open_orders"),
                step=True,
            ),
        ),
        _figure_html("chart-couriers", _couriers_chart(run)),
        _figure_html(
            "chart-click-to-door-hourly",
            _line_chart(
                run,
                "Mean click-to-door, by hour placed",
                "minutes",
                lambda v: _hourly(v, lambda w: w.orders.num("click_to_door_s") / 60),
            ),
        ),
        _figure_html(
            "chart-on-time-hourly",
            _line_chart(
                run,
                "Delivered within the promise, by hour placed",
                "share",
                lambda v: _hourly(v, lambda w: w.orders.num("on_time")),
                share=True,
            ),
        ),
    ]
    kpi_section = sections.pop()  # the table, and the day beside it where the page is wide enough
    sections.append(
        f'<div class="split">{kpi_section}<section id="day"><h2>The day over time</h2><p class="note">Orders '
        "and couriers per 15 minutes of simulated time; delivery times by the hour the order was placed.</p>"
        f'<div class="grid">{"".join(day_charts)}</div></section></div>'
    )
    dists = [
        _figure_html(
            "chart-dist-click-to-door",
            _distribution(
                run,
                "Click-to-door",
                "minutes from order to door",
                _minutes_between("delivered_at", "placed_at"),
            ),
        ),
        _figure_html(
            "chart-dist-lateness",
            _distribution(
                run,
                "Delivery against the promise",
                "minutes after the deadline (negative = early)",
                _minutes_between("delivered_at", "window_end"),
                mark_zero=True,
            ),
        ),
        _figure_html(
            "chart-dist-pickup-eta",
            _distribution(
                run,
                "Pickup ETA error",
                "minutes, actual pickup - ETA given at assignment",
                _minutes_between("picked_up_at", "pickup_eta_at_assignment"),
                mark_zero=True,
            ),
        ),
        _figure_html(
            "chart-dist-dropoff-eta",
            _distribution(
                run,
                "Drop-off ETA error",
                "minutes, actual drop-off - ETA given at placement",
                _minutes_between("delivered_at", "dropoff_eta_at_placement"),
                mark_zero=True,
            ),
        ),
    ]
    sections.append(
        '<section id="distributions"><h2>Distributions</h2><p class="note">Delivered orders; each variant as '
        "a share of its own orders, so the areas compare. The outer 0.5% on each side are drawn at the "
        "edge.</p>"
        f'<div class="grid">{"".join(dists)}</div></section>'
    )
    describe, layers = _maps(run)
    where = (
        "Drawn in metres of the instance's plane, on a square grid, over its bounding box."
        if run.planar
        else "Over the city's outline (a circle of its radius)."
    )
    maps_html = []
    for _key, layer_title, figures in layers:
        maps_html.append(
            f'<div class="layer"><h3>{html.escape(layer_title)}</h3><div class="maps">'
            + "".join(_figure_html(fid, svg) for fid, svg in figures)
            + "</div></div>"
        )
    sections.append(
        f'<section id="maps"><h2>Maps</h2><p class="note">{html.escape(where)} '
        f"Cells: {html.escape(describe)}. "
        f"Orders by drop-off (means and shares over cells of {_MIN_ORDERS_FOR_MEAN} delivered orders or "
        "more); couriers by where their shift starts; black squares are merchants. A map "
        "drawn once holds for every variant; otherwise each variant has its own, on one colour scale. "
        "Rest the pointer on a cell to read its value.</p>"
        f'<div class="layers">{"".join(maps_html)}</div></section>'
    )
    title = html.escape(f"{meta.get('scenario', 'city day')}: dispatch report")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head>"
        f"<body>{header}<main>{''.join(sections)}</main></body></html>\n"
    )


def write_report(out_dir: str | Path) -> Path:
    """Read a run's four files in ``out_dir`` and write ``out_dir/report.html``; return its path.

    Bad or missing files raise :class:`~dispatch.errors.InvalidInput` naming the file and what is
    wrong, and nothing is written.
    """
    out = Path(out_dir)
    run = _read(out)
    with matplotlib.rc_context(cast(Any, _style())):
        page = _page(run)
    target = out / "report.html"
    target.write_text(page)
    return target
