"""The Grubhub replay as the city simulator's four files, so it gets the same HTML report.

:func:`replay_tables` turns one replay (a :class:`~simulations.world.ReplayReport` of one
instance and policy) into rows of ``orders.csv``, ``couriers.csv`` and ``timeline.csv`` and the
KPIs of ``kpis.json`` (the interface of ``simulations.report``), with the instance's planar
metres as coordinates (``"coordinates": "planar_m"``). :func:`write_replay_report` writes the
files of one instance, its policies as variants, and the report beside them.

A courier's time is split into three states that add up to its time on shift: *waiting* at a
restaurant (from when it is there and has the order, to the pickup), *busy* (from an
assignment to the last drop-off of it, waiting excluded) and *idle* (the rest of its shift).
Work after the shift's end counts as busy. ``courier_wait_for_food_mean_min`` is the part of a
pickup's waiting before the food is ready, per pickup. Times in the replay are whole minutes.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulations.mdrp import MdrpInstance
from simulations.report import write_report
from simulations.world import ReplayReport

__all__ = ["ReplayTables", "mdrp_kpis", "replay_tables", "write_replay_report"]

_SLOT_S = 900


def _columns(names: str) -> tuple[str, ...]:
    return tuple(names.split())


_ORDER_COLUMNS = _columns(
    "variant order_id merchant_id kind placed_at window_start window_end status refusal_code refusal_reason "
    "assigned_at courier_id bundle_size courier_at_merchant_at ready_stated_at ready_actual_at picked_up_at "
    "delivered_at cancelled_at pickup_eta_at_assignment dropoff_eta_at_placement click_to_door_s on_time "
    "lateness_s merchant_x merchant_y dropoff_x dropoff_y"
)
_COURIER_COLUMNS = _columns(
    "variant courier_id vehicle shift_start shift_end started_at busy_s idle_s waiting_at_merchant_s "
    "moving_s distance_m orders declines start_x start_y"
)
_TIMELINE_COLUMNS = _columns(
    "variant t orders_placed open_orders couriers_on_shift couriers_idle couriers_busy couriers_waiting "
    "delivered on_time_delivered click_to_door_mean_s"
)


@dataclass(frozen=True)
class ReplayTables:
    """One variant's rows and KPIs (plain values, so a worker process can send them back)."""

    name: str
    params: dict[str, Any]
    kpis: dict[str, float]
    orders: list[dict[str, Any]]
    couriers: list[dict[str, Any]]
    timeline: list[dict[str, Any]]


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def replay_tables(
    instance: MdrpInstance,
    report: ReplayReport,
    name: str,
    *,
    params: dict[str, Any] | None = None,
    extra_kpis: dict[str, float] | None = None,
) -> ReplayTables:
    """The tables and KPIs of one replay of ``instance`` (see the module docstring)."""
    p = instance.params
    first_assigned: dict[str, tuple[int, str]] = {}
    for at, assignment in report.assignments:
        for oid in assignment.order_ids:
            first_assigned.setdefault(oid, (at, assignment.courier_id))
    moves_of: dict[str, list[tuple[int, str]]] = {}
    for m in report.moves:
        moves_of.setdefault(m.courier_id, []).append((m.depart_at + m.travel_s, m.destination))
    # each pickup carried out: when the courier was there with the order, and its orders
    log_of: dict[str, tuple[int, int, int, int]] = {}  # order -> (arrival, wait start, pickup, bundle)
    waits: dict[str, list[tuple[int, int]]] = {}
    busy: dict[str, list[tuple[int, int]]] = {}
    #: per pickup, how long the courier (there, with the order) waited for the food to be ready
    food_waits: list[float] = []
    ready_of = {o.id: o.ready_min * 60 for o in instance.orders}
    for log in report.pickups:
        done = [o for o in log.order_ids if report.delivered.get(o, ("",))[0] == log.courier_id]
        if log.pickup_at is None or not done:
            continue
        arrivals = [
            t
            for t, node in moves_of.get(log.courier_id, [])
            if node == log.merchant_id and t <= log.pickup_at
        ]
        arrival = max(arrivals, default=log.assigned_at)
        start = min(log.pickup_at, max(arrival, log.assigned_at))
        waits.setdefault(log.courier_id, []).append((start, log.pickup_at))
        food_waits.append(max(0, max(ready_of[o] for o in done) - start) / 60)
        last_drop = max(report.delivered[o][4] for o in done)
        busy.setdefault(log.courier_id, []).append((log.assigned_at, last_drop))
        for o in done:
            log_of[o] = (arrival, start, log.pickup_at, len(done))
    refused = {r.order_id: r for r in report.refusals}
    orders: list[dict[str, Any]] = []
    for order in sorted(instance.orders, key=lambda x: (x.placement_min, x.id)):
        placed, ready = order.placement_min * 60, order.ready_min * 60
        mx, my = instance.restaurants[order.restaurant]
        deadline = report.deadlines.get(order.id, placed + p.max_click_to_door_min * 60)
        row: dict[str, Any] = dict.fromkeys(_ORDER_COLUMNS, "")
        row.update(
            variant=name, order_id=order.id, merchant_id=order.restaurant, kind="asap", placed_at=placed,
            window_start=placed, window_end=deadline, ready_stated_at=ready, ready_actual_at=ready,
            merchant_x=mx, merchant_y=my, dropoff_x=order.x, dropoff_y=order.y,
        )  # fmt: skip
        if order.id in refused:
            row.update(
                status="refused", refusal_code=refused[order.id].code, refusal_reason=refused[order.id].reason
            )
            orders.append(row)
            continue
        if order.id in first_assigned:
            row.update(assigned_at=first_assigned[order.id][0], courier_id=first_assigned[order.id][1])
        if order.id in report.promised_pickup:
            row["pickup_eta_at_assignment"] = report.promised_pickup[order.id]
        if order.id in report.delivered:
            courier, _, _, picked, delivered = report.delivered[order.id]
            arrival, _, _, bundle = log_of[order.id]
            late = delivered - deadline
            row.update(
                status="delivered", courier_id=courier, bundle_size=bundle, courier_at_merchant_at=arrival,
                picked_up_at=picked, delivered_at=delivered, click_to_door_s=delivered - placed,
                on_time=int(late <= 0), lateness_s=max(0, late),
            )  # fmt: skip
        else:
            row["status"] = "undelivered"
        orders.append(row)
    # courier states minute by minute, from the first shift start to the last thing done
    day_start = min(
        [c.on_min * 60 for c in instance.couriers] + [o.placement_min * 60 for o in instance.orders]
    )
    day_start -= day_start % _SLOT_S
    ends = [c.off_min * 60 for c in instance.couriers] + [d[4] for d in report.delivered.values()]
    day_end = max(ends, default=day_start + _SLOT_S)
    minutes = (day_end - day_start) // 60 + 1
    off, idle, busy_state, waiting = 0, 1, 2, 3
    counts = np.zeros((4, minutes), dtype=np.int64)
    couriers: list[dict[str, Any]] = []
    delivered_by: dict[str, int] = {}
    for d in report.delivered.values():
        delivered_by[d[0]] = delivered_by.get(d[0], 0) + 1
    moves_by: dict[str, list[Any]] = {}
    for m in report.moves:
        moves_by.setdefault(m.courier_id, []).append(m)
    for c in instance.couriers:
        state = np.full(minutes, off, dtype=np.int8)

        def span(a: int, b: int) -> slice:
            return slice(max(0, (a - day_start) // 60), max(0, (b - day_start) // 60))

        state[span(c.on_min * 60, c.off_min * 60)] = idle
        for a, b in busy.get(c.id, []):
            state[span(a, b)] = busy_state
        for a, b in waits.get(c.id, []):
            state[span(a, b)] = waiting
        for s in (off, idle, busy_state, waiting):
            counts[s] += state == s
        here = (c.x, c.y)
        distance = 0.0
        for m in moves_by.get(c.id, []):
            there = instance.point(m.destination)
            distance += math.dist(here, there)
            here = there
        couriers.append(
            {
                "variant": name, "courier_id": c.id, "vehicle": "mdrp", "shift_start": c.on_min * 60,
                "shift_end": c.off_min * 60, "started_at": c.on_min * 60,
                "busy_s": int(np.sum(state == busy_state)) * 60, "idle_s": int(np.sum(state == idle)) * 60,
                "waiting_at_merchant_s": int(np.sum(state == waiting)) * 60,
                "moving_s": sum(m.travel_s for m in moves_by.get(c.id, [])), "distance_m": round(distance),
                "orders": delivered_by.get(c.id, 0), "declines": 0, "start_x": c.x, "start_y": c.y,
            }
        )  # fmt: skip
    timeline: list[dict[str, Any]] = []
    placed_at = np.array([r["placed_at"] for r in orders], dtype=float)
    done_at = np.array(
        [r["delivered_at"] if r["delivered_at"] != "" else np.inf for r in orders], dtype=float
    )
    accepted = np.array([r["status"] != "refused" for r in orders])
    c2d = np.array(
        [r["click_to_door_s"] if r["click_to_door_s"] != "" else np.nan for r in orders], dtype=float
    )
    in_time = np.array([r["on_time"] == 1 for r in orders])
    for t in range(day_start, day_end + 1, _SLOT_S):
        window = slice((t - day_start) // 60, (t + _SLOT_S - day_start) // 60)
        in_slot = (done_at >= t) & (done_at < t + _SLOT_S)

        def avg(*states: int) -> float:
            """Mean number of couriers in ``states`` over the slot."""
            chunk = counts[list(states), window]  # noqa: B023 - used at once, in this iteration
            return round(float(chunk.sum()) / chunk.shape[1], 2) if chunk.shape[1] else 0.0

        timeline.append(
            {
                "variant": name, "t": t,
                "orders_placed": int(np.sum((placed_at >= t) & (placed_at < t + _SLOT_S))),
                "open_orders": int(np.sum(accepted & (placed_at <= t) & (done_at > t))),
                "couriers_on_shift": avg(idle, busy_state, waiting),
                "couriers_idle": avg(idle), "couriers_busy": avg(busy_state),
                "couriers_waiting": avg(waiting),
                "delivered": int(np.sum(in_slot)), "on_time_delivered": int(np.sum(in_slot & in_time)),
                "click_to_door_mean_s": round(float(np.mean(c2d[in_slot]))) if np.any(in_slot) else "",
            }
        )  # fmt: skip
    kpis = _kpis(report, orders, couriers, food_waits)
    kpis.update(extra_kpis or {})
    return ReplayTables(name, dict(params or {}), kpis, orders, couriers, timeline)


def _kpis(
    report: ReplayReport,
    orders: list[dict[str, Any]],
    couriers: list[dict[str, Any]],
    food_waits: list[float],
) -> dict[str, float]:
    delivered = [r for r in orders if r["status"] == "delivered"]
    c2d = [r["click_to_door_s"] / 60 for r in delivered]
    late = [r["lateness_s"] / 60 for r in delivered if r["lateness_s"] > 0]
    eta = [(r["picked_up_at"] - r["pickup_eta_at_assignment"]) / 60 for r in delivered
           if r["pickup_eta_at_assignment"] != ""]  # fmt: skip
    food_wait = [(r["picked_up_at"] - r["ready_actual_at"]) / 60 for r in delivered]
    shift_h = sum(c["shift_end"] - c["shift_start"] for c in couriers) / 3600
    worked = sum(c["busy_s"] + c["waiting_at_merchant_s"] for c in couriers)
    on_shift = sum(c["busy_s"] + c["waiting_at_merchant_s"] + c["idle_s"] for c in couriers)
    refusals: dict[str, int] = {}
    for r in report.refusals:
        refusals[f"refused_{r.code}"] = refusals.get(f"refused_{r.code}", 0) + 1
    ticks = report.tick_seconds
    return {
        "orders_requested": len(orders),
        "orders_accepted": len(orders) - len(report.refusals),
        "orders_refused": len(report.refusals),
        **refusals,
        "orders_delivered": len(delivered),
        "orders_cancelled": 0,
        "orders_undelivered": sum(r["status"] == "undelivered" for r in orders),
        "click_to_door_mean_min": round(_mean(c2d), 2),
        "click_to_door_p50_min": round(_pct(c2d, 0.5), 2),
        "click_to_door_p90_min": round(_pct(c2d, 0.9), 2),
        "on_time_share": round(_mean([r["on_time"] for r in delivered]), 3),
        "late_mean_min": round(_mean(late), 2),
        "ready_to_pickup_mean_min": round(_mean(food_wait), 2),
        "courier_wait_for_food_mean_min": round(_mean(food_waits), 2),
        "orders_per_courier_hour": round(len(delivered) / shift_h, 3) if shift_h else 0.0,
        "utilization": round(worked / on_shift, 3) if on_shift else 0.0,
        "orders_per_bundle": round(len(delivered) / len(food_waits), 3) if food_waits else 0.0,
        "pickup_eta_mae_min": round(_mean([abs(e) for e in eta]), 2),
        "pickup_eta_p90_min": round(_pct([abs(e) for e in eta], 0.9), 2),
        "pickup_eta_bias_min": round(_mean(eta), 2),
        "decision_s_mean": round(_mean(ticks), 4),
        "decision_s_p99": round(_pct(ticks, 0.99), 4),
    }  # fmt: skip


def write_replay_report(
    out_dir: str | Path,
    instance: MdrpInstance,
    variants: Sequence[ReplayTables],
    *,
    command: str,
    version: str = "",
) -> Path:
    """Write ``kpis.json``, the three CSV files and ``report.html`` of ``instance`` to ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    points = [
        *instance.restaurants.values(),
        *instance.dropoffs.values(),
        *((c.x, c.y) for c in instance.couriers),
    ]
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    starts = [r["placed_at"] for v in variants for r in v.orders]
    ends = [r["shift_end"] for v in variants for r in v.couriers]
    meta = {
        "scenario": f"Grubhub MDRP instance {instance.name}",
        "seed": None,  # a recorded day: nothing random
        "version": version or _version(),
        "command": command,
        "coordinates": "planar_m",
        "city": {"bbox_m": [min(xs, default=0), min(ys, default=0), max(xs, default=1), max(ys, default=1)]},
        "merchants": [{"id": rid, "x": x, "y": y} for rid, (x, y) in instance.restaurants.items()],
        "day_start_s": min(starts, default=0),
        "day_end_s": max(ends, default=0),
    }
    doc = {"meta": meta, "variants": [{"name": v.name, "params": v.params, "kpis": v.kpis} for v in variants]}
    (out / "kpis.json").write_text(json.dumps(doc, indent=2) + "\n")
    for filename, columns, attr in (
        ("orders.csv", _ORDER_COLUMNS, "orders"),
        ("couriers.csv", _COURIER_COLUMNS, "couriers"),
        ("timeline.csv", _TIMELINE_COLUMNS, "timeline"),
    ):
        with (out / filename).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for v in variants:
                writer.writerows(getattr(v, attr))
    return write_report(out)


def mdrp_kpis(kpis: dict[str, Any]) -> dict[str, float]:
    """The papers' own measures from :func:`simulations.mdrp.compute_kpis`, named for the report."""
    names = {
        "click_to_door_overage_mean": "target_overage_mean_min",
        "cost_per_order": "cost_per_order_usd",
        "couriers_paid_guarantee_share": "couriers_paid_guarantee_share",
    }
    return {new: float(kpis[old]) for old, new in names.items() if old in kpis}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hyperlocal-dispatch")
    except PackageNotFoundError:
        return "unknown"
