"""``dispatch simulate``: variants of one scenario (policies x ``--set`` values), run in
parallel processes with a live progress bar each, written to one folder.

The folder holds ``kpis.json``, ``orders.csv``, ``couriers.csv`` and ``timeline.csv`` (the
columns are in :mod:`simulations.kpis`); the HTML report is made from those files alone.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import multiprocessing
import queue
import time
import tomllib
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from dispatch.engine import Dispatcher
from dispatch.matching import DispatchPolicy, GreedyPolicy, OptimizingPolicy
from simulations.day import build_day
from simulations.kpis import (
    COURIER_COLUMNS,
    ORDER_COLUMNS,
    TIMELINE_COLUMNS,
    Row,
    compute_kpis,
    courier_rows,
    order_rows,
    timeline_rows,
)
from simulations.scenario import POLICIES, Scenario, ScenarioError, load_scenario, resolve_key
from simulations.world import ReplayReport, World

__all__ = ["Variant", "VariantResult", "parse_set", "run_variant", "simulate", "variants_of", "write_outputs"]

#: shown in the printed table (all KPIs are in kpis.json)
TABLE_KPIS = (
    "orders_accepted", "orders_refused", "orders_delivered", "orders_cancelled", "orders_undelivered",
    "click_to_door_mean_min", "click_to_door_p90_min", "on_time_share", "late_mean_min",
    "ready_to_pickup_mean_min", "courier_wait_for_food_mean_min", "orders_per_courier_hour",
    "utilization", "orders_per_bundle", "pickup_eta_mae_min", "dropoff_eta_mae_min", "dropoff_eta_bias_min",
    "decision_s_p99",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    policy: str
    overrides: tuple[tuple[str, Any], ...]

    @property
    def params(self) -> dict[str, Any]:
        return {"policy": self.policy, **dict(self.overrides)}


@dataclass(frozen=True, slots=True)
class VariantResult:
    variant: Variant
    orders: list[Row]
    couriers: list[Row]
    timeline: list[Row]
    tick_seconds: list[float]
    wall_s: float


def parse_set(text: str) -> tuple[str, list[Any]]:
    """``"fleet.scale=0.8,1.0"`` -> ``("fleet.scale", [0.8, 1.0])`` (values read as TOML
    values, else as strings)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or not raw.strip():
        raise ScenarioError(f"--set {text!r}: write key=value or key=v1,v2,...", field="--set")
    resolve_key(key)
    values = []
    for part in raw.split(","):
        part = part.strip()
        try:
            values.append(tomllib.loads(f"v = {part}")["v"])
        except tomllib.TOMLDecodeError:
            values.append(part)
    return key, values


def variants_of(
    default_policy: str, policies: Sequence[str], sets: Sequence[tuple[str, list[Any]]]
) -> list[Variant]:
    """Every policy with every combination of the ``--set`` values, policies first."""
    names = list(dict.fromkeys(policies)) or [default_policy]
    for p in names:
        if p not in POLICIES:
            raise ScenarioError(f"--policy {p!r}: must be one of {', '.join(POLICIES)}", field="--policy")
    out = []
    for policy in names:
        for combo in itertools.product(*[[(k, v) for v in values] for k, values in sets]):
            label = [policy] if len(names) > 1 or not combo else []
            label += [f"{k}={v}" for k, v in combo]
            out.append(Variant(" ".join(label), policy, tuple(combo)))
    return out


def _policy(name: str) -> DispatchPolicy:
    return GreedyPolicy() if name == "greedy" else OptimizingPolicy()


def _scenario_for(source: str, variant: Variant) -> Scenario:
    return load_scenario(source, [*variant.overrides, ("rules.policy", variant.policy)])


def run_variant(
    source: str,
    variant: Variant,
    seed: int,
    progress: Callable[[int, int, int, int], None] | None = None,
) -> VariantResult:
    """Play one variant; ``progress(now, placed, delivered, on_time)`` after each tick."""
    started = time.perf_counter()
    scenario = _scenario_for(source, variant)
    day = build_day(scenario, seed)
    dispatcher = Dispatcher(config=day.config, policy=_policy(variant.policy))
    world = World(dispatcher, day.plan, tick_s=scenario.rules.tick_seconds, truth=day.truth)

    def on_progress(now: int, report: ReplayReport) -> None:
        if progress is not None:
            progress(now, report.placed, len(report.delivered), report.on_time)

    report = world.run(on_progress=on_progress)
    merchants = {m.id: (m.location.lat, m.location.lng) for m in day.plan.merchants}
    orders = order_rows(variant.name, report, merchants)
    return VariantResult(
        variant,
        orders,
        courier_rows(variant.name, report, day.vehicle_of),
        timeline_rows(variant.name, report, orders),
        report.tick_seconds,
        time.perf_counter() - started,
    )


def _worker(source: str, variant: Variant, seed: int, index: int, channel: Any) -> VariantResult:
    last = [0.0]

    def progress(now: int, placed: int, delivered: int, on_time: int) -> None:
        t = time.monotonic()
        if t - last[0] >= 0.25:
            last[0] = t
            channel.put((index, now, placed, delivered, on_time))

    result = run_variant(source, variant, seed, progress)
    channel.put((index, None, 0, 0, 0))
    return result


def simulate(
    source: str,
    *,
    seed: int = 1,
    policies: Sequence[str] = (),
    sets: Sequence[tuple[str, list[Any]]] = (),
    out: str | Path | None = None,
    jobs: int = 2,
    command: str = "",
    quiet: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Run every variant and write the folder; returns it and the kpis.json data."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    base = load_scenario(source)
    variants = variants_of(base.rules.policy, policies, sets)
    for v in variants:  # a bad --set value fails here, before anything runs
        _scenario_for(source, v)
    out_dir = Path(out) if out is not None else Path("out") / base.name
    span = max(1, base.end_s - base.start_s)
    console = Console(stderr=True, quiet=quiet)
    results: list[VariantResult | None] = [None] * len(variants)
    with Progress(
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=quiet,
    ) as bars:
        tasks = [bars.add_task(v.name, total=span, status="waiting") for v in variants]

        def show(index: int, now: int | None, placed: int, delivered: int, on_time: int) -> None:
            if now is None:
                bars.update(tasks[index], completed=span)
                return
            share = f"{on_time / delivered:.1%}" if delivered else "-"
            clock = f"{now // 3600:02d}:{now % 3600 // 60:02d}"
            bars.update(
                tasks[index],
                completed=min(span, max(0, now - base.start_s)),
                status=f"{clock}  {placed} orders  {delivered} delivered  on time {share}",
            )

        if jobs <= 1 or len(variants) == 1:
            for i, v in enumerate(variants):
                results[i] = run_variant(source, v, seed, lambda *a, i=i: show(i, *a))  # type: ignore[misc]
                show(i, None, 0, 0, 0)
        else:
            ctx = multiprocessing.get_context("spawn")
            with (
                ctx.Manager() as manager,
                ProcessPoolExecutor(min(jobs, len(variants)), mp_context=ctx) as pool,
            ):
                channel = manager.Queue()
                futures: list[Future[VariantResult]] = [
                    pool.submit(_worker, source, v, seed, i, channel) for i, v in enumerate(variants)
                ]
                while not all(f.done() for f in futures):
                    with contextlib.suppress(queue.Empty):
                        show(*channel.get(timeout=0.2))
                while True:
                    try:
                        show(*channel.get_nowait())
                    except queue.Empty:
                        break
                for i, f in enumerate(futures):
                    results[i] = f.result()
    done = [r for r in results if r is not None]
    data = write_outputs(out_dir, base, seed, done, command)
    return out_dir, data


def write_outputs(
    out_dir: Path, scenario: Scenario, seed: int, results: Sequence[VariantResult], command: str
) -> dict[str, Any]:
    """Write kpis.json, orders.csv, couriers.csv and timeline.csv for ``results``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    codes = sorted({r["refusal_code"] for res in results for r in res.orders if r["refusal_code"]})
    day = build_day(scenario, seed)  # the city is the same in every variant but fleet.scale
    data: dict[str, Any] = {
        "meta": {
            "scenario": scenario.name,
            "seed": seed,
            "version": _version(),
            "command": command,
            "coordinates": "latlng",
            "city": {
                "center": [scenario.city.lat, scenario.city.lng],
                "radius_m": scenario.city.radius_km * 1000,
            },
            "merchants": [
                {"id": m.id, "lat": m.location.lat, "lng": m.location.lng} for m in day.plan.merchants
            ],
            "day_start_s": scenario.start_s,
            "day_end_s": scenario.end_s,
        },
        "variants": [
            {
                "name": res.variant.name,
                "params": res.variant.params,
                "kpis": compute_kpis(res.orders, res.couriers, res.tick_seconds, codes),
            }
            for res in results
        ],
    }
    (out_dir / "kpis.json").write_text(json.dumps(data, indent=2) + "\n")
    for name, columns, rows in (
        ("orders.csv", ORDER_COLUMNS, [r for res in results for r in res.orders]),
        ("couriers.csv", COURIER_COLUMNS, [r for res in results for r in res.couriers]),
        ("timeline.csv", TIMELINE_COLUMNS, [r for res in results for r in res.timeline]),
    ):
        with (out_dir / name).open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(columns)
            for row in rows:
                writer.writerow(["" if row[c] is None else row[c] for c in columns])
    return data


def kpi_table(data: dict[str, Any]) -> Any:
    """A rich table: one column per variant, the main KPIs as rows."""
    from rich.table import Table

    table = Table(title=f"{data['meta']['scenario']}, seed {data['meta']['seed']}")
    table.add_column("KPI")
    for v in data["variants"]:
        table.add_column(v["name"], justify="right")
    for key in TABLE_KPIS:
        table.add_row(key, *(f"{v['kpis'].get(key, 0):g}" for v in data["variants"]))
    return table


def _version() -> str:
    try:
        return metadata.version("hyperlocal-dispatch")
    except metadata.PackageNotFoundError:
        return "unknown"
