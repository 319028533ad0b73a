"""The report's charts: the day over time and the distributions, as inline SVG (matplotlib)."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MultipleLocator

from simulations.report.data import _SLOT_H, _STATUS_COLOURS, _STATUS_LABELS, FloatArray, _Run, _Variant


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
