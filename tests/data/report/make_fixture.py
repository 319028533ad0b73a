"""Writes the small city day in this folder (``python tests/data/report/make_fixture.py``).

Made up, not simulated: two variants of a 2-hour day in a 3 km city of 5 merchants, with a
few refusals (of two reasons), cancellations and an undelivered order, following
``notes/sim_interface.md`` (the files ``dispatch simulate`` writes). The report test reads
the files; this script only documents how they were made.
"""

from __future__ import annotations

import csv
import json
import math
import random
from pathlib import Path

HERE = Path(__file__).parent
CENTER = (52.52, 13.405)
RADIUS_M = 3000
DAY = (39600, 46800)  # 11:00 - 13:00
MERCHANTS = [(f"m-{i}", *CENTER) for i in range(1, 6)]


def _offset(rng: random.Random, lat: float, lng: float, max_m: float) -> tuple[float, float]:
    r, a = max_m * math.sqrt(rng.random()), rng.random() * 2 * math.pi
    dlat = r * math.cos(a) / 111_320
    dlng = r * math.sin(a) / (111_320 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lng + dlng, 6)


def main() -> None:
    rng = random.Random(7)
    merchants = [(mid, *_offset(rng, lat, lng, 2000)) for mid, lat, lng in MERCHANTS]
    requests = []
    for n in range(90):
        placed = DAY[0] + int(rng.triangular(0, DAY[1] - DAY[0] - 1800, 2400))
        m = rng.choice(merchants)
        requests.append((f"o-{n + 1}", m, placed, _offset(rng, m[1], m[2], 2500)))
    requests.sort(key=lambda r: (r[2], r[0]))
    variants = [("optimizing", 1.0, 0.0), ("greedy", 1.25, 0.06)]
    orders, couriers, timeline, kpis = [], [], [], []
    for name, slow, refuse in variants:
        vrng = random.Random(f"{name}-7")
        rows = []
        for oid, (mid, mlat, mlng), placed, (dlat, dlng) in requests:
            row = dict.fromkeys(ORDER_COLUMNS, "")
            row.update(
                variant=name,
                order_id=oid,
                merchant_id=mid,
                kind="asap",
                placed_at=placed,
                window_start=placed,
                window_end=placed + 1800,
                merchant_lat=mlat,
                merchant_lng=mlng,
                dropoff_lat=dlat,
                dropoff_lng=dlng,
            )
            draw = vrng.random()
            if draw < refuse:
                reason = (
                    ("no-courier", "no courier can keep the promise")
                    if draw < refuse / 2
                    else ("outside-delivery-area", "drop-off is outside the delivery radius")
                )
                row.update(status="refused", refusal_code=reason[0], refusal_reason=reason[1])
            elif draw < refuse + 0.04:
                row.update(status="cancelled", assigned_at=placed + 60, cancelled_at=placed + 400)
            else:
                assigned = placed + vrng.randint(30, 240)
                ready_stated = placed + 600
                ready = ready_stated + int(vrng.gauss(60, 120))
                at_merchant = assigned + int(vrng.uniform(120, 600) * slow)
                picked = max(ready, at_merchant) + 30
                ride = int(vrng.uniform(240, 900) * slow)
                eta_pick = assigned + int(vrng.uniform(200, 700))
                eta_drop = placed + 1500
                row.update(
                    assigned_at=assigned,
                    courier_id=f"c-{vrng.randint(1, 6)}",
                    bundle_size=1 if name == "greedy" else vrng.choice([1, 1, 2]),
                    courier_at_merchant_at=at_merchant,
                    ready_stated_at=ready_stated,
                    ready_actual_at=ready,
                    picked_up_at=picked,
                    pickup_eta_at_assignment=eta_pick,
                    dropoff_eta_at_placement=eta_drop,
                )
                if oid == "o-90":
                    row.update(status="undelivered")
                else:
                    delivered = picked + ride
                    late = delivered - (placed + 1800)
                    row.update(
                        status="delivered",
                        delivered_at=delivered,
                        click_to_door_s=delivered - placed,
                        on_time=int(late <= 0),
                        lateness_s=max(0, late),
                    )
            rows.append(row)
        orders += rows
        for c in range(1, 7):
            start = _offset(vrng, *CENTER, 2500)
            busy = vrng.randint(2400, 5400)
            wait = vrng.randint(200, 900)
            couriers.append(
                {
                    "variant": name,
                    "courier_id": f"c-{c}",
                    "vehicle": "bike",
                    "shift_start": DAY[0],
                    "shift_end": DAY[1],
                    "started_at": "" if (name, c) == ("greedy", 6) else DAY[0],
                    "busy_s": busy,
                    "idle_s": DAY[1] - DAY[0] - busy - wait,
                    "waiting_at_merchant_s": wait,
                    "moving_s": busy - 600,
                    "distance_m": (busy - 600) * 4,
                    "orders": vrng.randint(8, 16),
                    "declines": vrng.randint(0, 2),
                    "start_lat": start[0],
                    "start_lng": start[1],
                }
            )
        for t in range(DAY[0], DAY[1] + 1800, 900):
            placed_n = sum(1 for r in rows if t <= r["placed_at"] < t + 900)
            open_n = sum(
                1
                for r in rows
                if r["status"] not in ("refused",)
                and r["placed_at"] <= t
                and (r["delivered_at"] or r["cancelled_at"] or DAY[1] + 3600) > t
            )
            done = [r for r in rows if r["delivered_at"] != "" and t <= r["delivered_at"] < t + 900]
            busy = min(6, open_n // 2)
            waiting = min(6 - busy, busy // 3)
            timeline.append(
                {
                    "variant": name,
                    "t": t,
                    "orders_placed": placed_n,
                    "open_orders": open_n,
                    "couriers_on_shift": 6,
                    "couriers_idle": 6 - busy - waiting,
                    "couriers_busy": busy,
                    "couriers_waiting": waiting,
                    "delivered": len(done),
                    "on_time_delivered": sum(r["on_time"] for r in done),
                    "click_to_door_mean_s": round(sum(r["click_to_door_s"] for r in done) / len(done))
                    if done
                    else "",
                }
            )
        done = [r for r in rows if r["status"] == "delivered"]
        c2d = sorted(r["click_to_door_s"] / 60 for r in done)
        late = [r["lateness_s"] / 60 for r in done if r["lateness_s"] > 0]
        k = {
            "orders_requested": len(rows),
            "orders_accepted": sum(r["status"] != "refused" for r in rows),
            "orders_refused": sum(r["status"] == "refused" for r in rows),
            "refused_no-courier": sum(r["refusal_code"] == "no-courier" for r in rows),
            "refused_outside-delivery-area": sum(r["refusal_code"] == "outside-delivery-area" for r in rows),
            "orders_delivered": len(done),
            "orders_cancelled": sum(r["status"] == "cancelled" for r in rows),
            "orders_undelivered": sum(r["status"] == "undelivered" for r in rows),
            "click_to_door_mean_min": round(sum(c2d) / len(c2d), 2),
            "click_to_door_p50_min": round(c2d[len(c2d) // 2], 2),
            "click_to_door_p90_min": round(c2d[int(0.9 * len(c2d))], 2),
            "on_time_share": round(sum(r["on_time"] for r in done) / len(done), 3),
            "late_mean_min": round(sum(late) / len(late), 2) if late else 0.0,
            "pickup_eta_mae_min": round(
                sum(abs(r["picked_up_at"] - r["pickup_eta_at_assignment"]) for r in done) / len(done) / 60, 2
            ),
            "dropoff_eta_bias_min": round(
                sum(r["delivered_at"] - r["dropoff_eta_at_placement"] for r in done) / len(done) / 60, 2
            ),
            "decision_s_p99": 0.05 * slow,
        }
        kpis.append({"name": name, "params": {"policy": name}, "kpis": k})
    meta = {
        "scenario": "report-fixture",
        "seed": 7,
        "version": "0.1.0",
        "command": "dispatch simulate report-fixture --policy optimizing greedy --out tests/data/report",
        "coordinates": "latlng",
        "city": {"center": list(CENTER), "radius_m": RADIUS_M},
        "merchants": [{"id": m, "lat": lat, "lng": lng} for m, lat, lng in merchants],
        "day_start_s": DAY[0],
        "day_end_s": DAY[1],
    }
    (HERE / "kpis.json").write_text(json.dumps({"meta": meta, "variants": kpis}, indent=2) + "\n")
    for name, rows, columns in (
        ("orders.csv", orders, ORDER_COLUMNS),
        ("couriers.csv", couriers, None),
        ("timeline.csv", timeline, None),
    ):
        with (HERE / name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns or list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


ORDER_COLUMNS = [
    "variant",
    "order_id",
    "merchant_id",
    "kind",
    "placed_at",
    "window_start",
    "window_end",
    "status",
    "refusal_code",
    "refusal_reason",
    "assigned_at",
    "courier_id",
    "bundle_size",
    "courier_at_merchant_at",
    "ready_stated_at",
    "ready_actual_at",
    "picked_up_at",
    "delivered_at",
    "cancelled_at",
    "pickup_eta_at_assignment",
    "dropoff_eta_at_placement",
    "click_to_door_s",
    "on_time",
    "lateness_s",
    "merchant_lat",
    "merchant_lng",
    "dropoff_lat",
    "dropoff_lng",
]

if __name__ == "__main__":
    main()
