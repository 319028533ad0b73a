"""The report's maps: H3 hexagons over a live city's outline, or a square grid in a replay's metres."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import h3
import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import Colormap, ListedColormap, Normalize
from matplotlib.patches import Circle, Rectangle
from matplotlib.ticker import FuncFormatter

from simulations.report.charts import _figure, _svg
from simulations.report.data import _MAP_CELLS_MAX, _MIN_ORDERS_FOR_MEAN, FloatArray, _Run, _slug, _Variant


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
