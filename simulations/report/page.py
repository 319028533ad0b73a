"""The report page: header, headline cards, the KPI table with each variant's difference to the
first, the charts and the maps, in one self-contained HTML file."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, cast

import matplotlib

from simulations.report.charts import (
    _clock,
    _couriers_chart,
    _distribution,
    _hourly,
    _line_chart,
    _minutes_between,
    _style,
    _timeline_series,
)
from simulations.report.data import _MIN_ORDERS_FOR_MEAN, _read, _Run
from simulations.report.maps import _maps

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
