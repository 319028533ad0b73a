"""What a simulated day produced, as rows (orders, couriers, timeline) and KPIs.

The rows are the files of ``dispatch simulate`` (see ``docs`` in the README, "Simulating a
city day"); the KPIs are computed from the rows alone, so anyone can recompute them from
``orders.csv`` and ``couriers.csv``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from simulations.world import ReplayReport

__all__ = [
    "COURIER_COLUMNS",
    "ORDER_COLUMNS",
    "TIMELINE_COLUMNS",
    "compute_kpis",
    "courier_rows",
    "order_rows",
    "timeline_rows",
]

Row = dict[str, Any]

ORDER_COLUMNS = (
    "variant", "order_id", "merchant_id", "kind", "placed_at", "window_start", "window_end", "status",
    "refusal_code", "refusal_reason", "assigned_at", "courier_id", "bundle_size", "courier_at_merchant_at",
    "ready_stated_at", "ready_actual_at", "picked_up_at", "delivered_at", "cancelled_at",
    "pickup_eta_at_assignment", "dropoff_eta_at_placement", "click_to_door_s", "on_time", "lateness_s",
    "merchant_lat", "merchant_lng", "dropoff_lat", "dropoff_lng",
)  # fmt: skip
COURIER_COLUMNS = (
    "variant", "courier_id", "vehicle", "shift_start", "shift_end", "started_at", "busy_s", "idle_s",
    "waiting_at_merchant_s", "moving_s", "distance_m", "orders", "declines", "start_lat", "start_lng",
)  # fmt: skip
TIMELINE_COLUMNS = (
    "variant", "t", "orders_placed", "open_orders", "couriers_on_shift", "couriers_idle", "couriers_busy",
    "couriers_waiting", "delivered", "on_time_delivered", "click_to_door_mean_s",
)  # fmt: skip
_SLOT_S = 900


def order_rows(variant: str, report: ReplayReport, merchants: Mapping[str, tuple[float, float]]) -> list[Row]:
    """One row per order request, in the order they were placed."""
    rows = []
    for rec in sorted(report.orders.values(), key=lambda r: (r.placed_at, _id_key(r.order_id))):
        delivered = rec.delivered_at
        c2d = delivered - rec.placed_at if delivered is not None else None
        late = (
            max(0, delivered - rec.window_end)
            if delivered is not None and rec.window_end is not None
            else None
        )
        mlat, mlng = merchants[rec.merchant_id]
        rows.append(
            {
                "variant": variant,
                "order_id": rec.order_id,
                "merchant_id": rec.merchant_id,
                "kind": "scheduled" if rec.scheduled else "asap",
                "placed_at": rec.placed_at,
                "window_start": rec.window_start,
                "window_end": rec.window_end,
                "status": rec.status,
                "refusal_code": rec.refusal_code,
                "refusal_reason": rec.refusal_reason,
                "assigned_at": rec.assigned_at,
                "courier_id": rec.courier_id,
                "bundle_size": rec.bundle_size,
                "courier_at_merchant_at": rec.courier_at_merchant_at,
                "ready_stated_at": rec.ready_stated_at,
                "ready_actual_at": rec.ready_actual_at,
                "picked_up_at": rec.picked_up_at,
                "delivered_at": delivered,
                "cancelled_at": rec.cancelled_at,
                "pickup_eta_at_assignment": rec.pickup_eta_at_assignment,
                "dropoff_eta_at_placement": rec.dropoff_eta_at_placement,
                "click_to_door_s": c2d,
                "on_time": None if late is None else int(late == 0),
                "lateness_s": late,
                "merchant_lat": mlat,
                "merchant_lng": mlng,
                "dropoff_lat": rec.dropoff.lat,
                "dropoff_lng": rec.dropoff.lng,
            }
        )
    return rows


def courier_rows(variant: str, report: ReplayReport, vehicle_of: Mapping[str, str]) -> list[Row]:
    return [
        {
            "variant": variant,
            "courier_id": c.courier_id,
            "vehicle": vehicle_of.get(c.courier_id, ""),
            "shift_start": c.shift_start,
            "shift_end": c.shift_end,
            "started_at": c.started_at,
            "busy_s": c.busy_s if c.started_at is not None else 0,
            "idle_s": c.idle_s,
            "waiting_at_merchant_s": c.waiting_at_merchant_s,
            "moving_s": c.moving_s,
            "distance_m": round(c.distance_m),
            "orders": c.orders,
            "declines": c.declines,
            "start_lat": c.start.lat,
            "start_lng": c.start.lng,
        }
        for c in sorted(report.couriers.values(), key=lambda c: _id_key(c.courier_id))
    ]


def timeline_rows(variant: str, report: ReplayReport, orders: Sequence[Row]) -> list[Row]:
    """One row per 15 minutes: the city as sampled then, and what was placed and delivered in it."""
    placed: dict[int, int] = {}
    done: dict[int, list[Row]] = {}
    for row in orders:
        if row["status"] != "refused":
            placed[_slot(row["placed_at"])] = placed.get(_slot(row["placed_at"]), 0) + 1
        if row["delivered_at"] is not None:
            done.setdefault(_slot(row["delivered_at"]), []).append(row)
    rows = []
    for s in report.samples:
        got = done.get(s.t, [])
        rows.append(
            {
                "variant": variant,
                "t": s.t,
                "orders_placed": placed.get(s.t, 0),
                "open_orders": s.open_orders,
                "couriers_on_shift": s.couriers_on_shift,
                "couriers_idle": s.couriers_idle,
                "couriers_busy": s.couriers_busy,
                "couriers_waiting": s.couriers_waiting,
                "delivered": len(got),
                "on_time_delivered": sum(r["on_time"] == 1 for r in got),
                "click_to_door_mean_s": round(statistics.fmean(r["click_to_door_s"] for r in got))
                if got
                else None,
            }
        )
    return rows


def compute_kpis(
    orders: Sequence[Row],
    couriers: Sequence[Row],
    tick_seconds: Sequence[float],
    refusal_codes: Iterable[str] = (),
) -> dict[str, float]:
    """The KPIs of one variant from its rows (values as written: ints, floats or None)."""
    accepted = [r for r in orders if r["status"] != "refused"]
    refused = [r for r in orders if r["status"] == "refused"]
    delivered = [r for r in orders if r["status"] == "delivered"]
    codes = sorted({*refusal_codes, *(r["refusal_code"] for r in refused)})
    c2d = [r["click_to_door_s"] / 60 for r in delivered]
    late = [r["lateness_s"] / 60 for r in delivered if r["lateness_s"] > 0]
    food_wait = [(r["picked_up_at"] - r["ready_actual_at"]) / 60 for r in delivered]
    courier_wait = [
        max(0, r["ready_actual_at"] - r["courier_at_merchant_at"]) / 60
        for r in delivered
        if r["courier_at_merchant_at"] is not None
    ]
    pickup_err = [
        (r["picked_up_at"] - r["pickup_eta_at_assignment"]) / 60
        for r in orders
        if r["picked_up_at"] is not None and r["pickup_eta_at_assignment"] is not None
    ]
    dropoff_err = [
        (r["delivered_at"] - r["dropoff_eta_at_placement"]) / 60
        for r in delivered
        if r["dropoff_eta_at_placement"] is not None
    ]
    pickups = {(r["courier_id"], r["merchant_id"], r["picked_up_at"]) for r in delivered}
    worked_s = sum(c["busy_s"] + c["idle_s"] for c in couriers)
    busy_s = sum(c["busy_s"] for c in couriers)
    kpis: dict[str, float] = {
        "orders_requested": len(orders),
        "orders_accepted": len(accepted),
        "orders_refused": len(refused),
    }
    for code in codes:
        kpis[f"refused_{code}"] = sum(r["refusal_code"] == code for r in refused)
    kpis.update(
        {
            "orders_delivered": len(delivered),
            "orders_cancelled": sum(r["status"] == "cancelled" for r in orders),
            "orders_undelivered": sum(r["status"] == "undelivered" for r in orders),
            "click_to_door_mean_min": _mean(c2d),
            "click_to_door_p50_min": _quantile(c2d, 0.5),
            "click_to_door_p90_min": _quantile(c2d, 0.9),
            "on_time_share": round(sum(r["on_time"] == 1 for r in delivered) / len(delivered), 4)
            if delivered
            else 0.0,
            "late_mean_min": _mean(late),
            "ready_to_pickup_mean_min": _mean(food_wait),
            "courier_wait_for_food_mean_min": _mean(courier_wait),
            "orders_per_courier_hour": round(len(delivered) / (worked_s / 3600), 3) if worked_s else 0.0,
            "utilization": round(busy_s / worked_s, 4) if worked_s else 0.0,
            "orders_per_bundle": round(len(delivered) / len(pickups), 3) if pickups else 0.0,
            "pickup_eta_mae_min": _mean([abs(e) for e in pickup_err]),
            "pickup_eta_p90_min": _quantile([abs(e) for e in pickup_err], 0.9),
            "pickup_eta_bias_min": _mean(pickup_err),
            "dropoff_eta_mae_min": _mean([abs(e) for e in dropoff_err]),
            "dropoff_eta_p90_min": _quantile([abs(e) for e in dropoff_err], 0.9),
            "dropoff_eta_bias_min": _mean(dropoff_err),
            "decision_s_mean": round(statistics.fmean(tick_seconds), 4) if tick_seconds else 0.0,
            "decision_s_p99": _quantile(list(tick_seconds), 0.99, digits=4),
        }
    )
    return kpis


def _mean(values: Sequence[float]) -> float:
    return round(statistics.fmean(values), 2) if values else 0.0


def _quantile(values: Sequence[float], q: float, digits: int = 2) -> float:
    """The ``q`` quantile by the nearest-rank rule (a value that occurred)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], digits)


def _slot(t: int) -> int:
    return t - t % _SLOT_S


def _id_key(value: str) -> tuple[str, int]:
    """``o-12`` after ``o-9``: ids sort by prefix, then number."""
    head, _, tail = value.rpartition("-")
    return (head, int(tail)) if tail.isdigit() else (value, -1)
