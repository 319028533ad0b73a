"""``dispatch simulate``: the files it writes, KPIs that anyone can recompute, same seed same bytes."""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

import pytest

from dispatch.cli import main
from simulations.simulate import simulate

FILES = ("kpis.json", "orders.csv", "couriers.csv", "timeline.csv", "report.html")


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    rc = main(
        ["simulate", "demo", "--policy", "optimizing", "greedy", "--out", str(out), "--quiet", "--jobs", "1"]
    )
    assert rc == 0
    return out


def _num(text: str) -> float | None:
    return None if text == "" else float(text)


def test_the_files_of_the_interface_are_written(demo_out: Path) -> None:
    for name in FILES:
        assert (demo_out / name).is_file(), name
    data = json.loads((demo_out / "kpis.json").read_text())
    assert [v["name"] for v in data["variants"]] == ["optimizing", "greedy"]
    meta = data["meta"]
    assert meta["scenario"] == "demo" and meta["seed"] == 1 and meta["coordinates"] == "latlng"
    assert meta["command"].startswith("dispatch simulate demo")
    assert len(meta["merchants"]) == 6 and meta["day_start_s"] == 12 * 3600
    with (demo_out / "timeline.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["variant"] for r in rows} == {"optimizing", "greedy"}
    assert all(int(r["t"]) % 900 == 0 for r in rows)


def test_kpis_recomputed_from_orders_csv_equal_kpis_json(demo_out: Path) -> None:
    data = json.loads((demo_out / "kpis.json").read_text())
    with (demo_out / "orders.csv").open() as f:
        orders = list(csv.DictReader(f))
    with (demo_out / "couriers.csv").open() as f:
        couriers = list(csv.DictReader(f))
    for variant in data["variants"]:
        k = variant["kpis"]
        mine = [r for r in orders if r["variant"] == variant["name"]]
        fleet = [r for r in couriers if r["variant"] == variant["name"]]
        done = [r for r in mine if r["status"] == "delivered"]
        assert k["orders_requested"] == len(mine) == 40
        assert k["orders_refused"] == sum(r["status"] == "refused" for r in mine)
        assert k["orders_accepted"] == len(mine) - k["orders_refused"]
        assert k["orders_delivered"] == len(done)
        assert k["orders_cancelled"] == sum(r["status"] == "cancelled" for r in mine)
        for code in {r["refusal_code"] for r in mine if r["refusal_code"]}:
            assert k[f"refused_{code}"] == sum(r["refusal_code"] == code for r in mine)
        c2d = sorted((float(r["delivered_at"]) - float(r["placed_at"])) / 60 for r in done)
        assert k["click_to_door_mean_min"] == round(statistics.fmean(c2d), 2)
        assert k["click_to_door_p90_min"] == round(c2d[math.ceil(0.9 * len(c2d)) - 1], 2)
        on_time = [float(r["delivered_at"]) <= float(r["window_end"]) for r in done]
        assert k["on_time_share"] == round(sum(on_time) / len(on_time), 4)
        food = [(float(r["picked_up_at"]) - float(r["ready_actual_at"])) / 60 for r in done]
        assert k["ready_to_pickup_mean_min"] == round(statistics.fmean(food), 2)
        err = [
            (float(r["delivered_at"]) - float(r["dropoff_eta_at_placement"])) / 60
            for r in done
            if r["dropoff_eta_at_placement"]
        ]
        assert k["dropoff_eta_bias_min"] == round(statistics.fmean(err), 2)
        assert k["dropoff_eta_mae_min"] == round(statistics.fmean(abs(e) for e in err), 2)
        bundles = {(r["courier_id"], r["merchant_id"], r["picked_up_at"]) for r in done}
        assert k["orders_per_bundle"] == round(len(done) / len(bundles), 3)
        worked = sum(float(c["busy_s"]) + float(c["idle_s"]) for c in fleet)
        assert k["orders_per_courier_hour"] == round(len(done) / (worked / 3600), 3)
        assert k["utilization"] == round(sum(float(c["busy_s"]) for c in fleet) / worked, 4)
        # the order and courier files agree with each other
        assert sum(int(c["orders"]) for c in fleet) == len(done)


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    """Two runs of one scenario and seed write the same files, byte for byte (the decision
    times, measured on the wall clock, are the only numbers that differ)."""
    outs = []
    for name in ("a", "b"):
        out, _ = simulate("demo", seed=4, policies=["optimizing"], out=tmp_path / name, jobs=1, quiet=True)
        outs.append(out)
    for name in ("orders.csv", "couriers.csv", "timeline.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name

    def without_clock(path: Path) -> object:
        data = json.loads(path.read_text())
        for v in data["variants"]:
            del v["kpis"]["decision_s_mean"], v["kpis"]["decision_s_p99"]
        return data

    assert without_clock(outs[0] / "kpis.json") == without_clock(outs[1] / "kpis.json")
    other, _ = simulate("demo", seed=5, policies=["optimizing"], out=tmp_path / "c", jobs=1, quiet=True)
    assert (other / "orders.csv").read_bytes() != (outs[0] / "orders.csv").read_bytes()


def test_variants_run_in_parallel_processes_give_the_same_rows(demo_out: Path, tmp_path: Path) -> None:
    main(
        [
            "simulate",
            "demo",
            "--policy",
            "optimizing",
            "greedy",
            "--out",
            str(tmp_path),
            "--quiet",
            "--jobs",
            "2",
        ]
    )
    assert (tmp_path / "orders.csv").read_bytes() == (demo_out / "orders.csv").read_bytes()
