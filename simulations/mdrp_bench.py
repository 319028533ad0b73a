"""Many MDRP instances in parallel, optimizing policy next to the greedy baseline.

Every solution is written, checked by :func:`simulations.mdrp.check_solution` and scored;
the results go to ``results.csv`` and ``results.md`` (one row per instance, a mean row,
and the paper's instance families: size, travel, shifts, preparation).
"""

from __future__ import annotations

import csv
import re
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, TextIO

__all__ = ["POLICIES", "bench", "family_of", "markdown"]

POLICIES = ("optimizing", "greedy")
#: the columns of the table, with their headings
COLUMNS = (
    ("undelivered_pct", "undeliv. %"),
    ("click_to_door_mean", "CtD"),
    ("click_to_door_p90", "CtD p90"),
    ("click_to_door_overage_mean", "overage"),
    ("ready_to_pickup_mean", "R2P"),
    ("ready_to_door_mean", "R2D"),
    ("courier_utilization", "util."),
    ("cost_per_order", "$/order"),
    ("couriers_paid_guarantee_share", "guar. share"),
    ("orders_per_bundle", "orders/bundle"),
    ("decision_s_p99", "decision p99 s"),
    ("pickup_eta_abs_error_mean", "ETA err"),
)
_NAME = re.compile(r"^(?P<seed>\d+)(?P<size>[or]\d+)(?P<travel>t\d+)(?P<shifts>s\d+)(?P<prep>p\d+)$")


def family_of(name: str) -> dict[str, str]:
    """The paper's instance families from a name like ``0o50t100s2p125``.

    >>> family_of("0o50t100s2p125")
    {'seed': '0', 'size': 'o50', 'travel': 't100', 'shifts': 's2', 'prep': 'p125'}
    """
    match = _NAME.match(name)
    return match.groupdict() if match else {}


def _one(instance_dir: str, policy: str, out_dir: str, tick_s: int, tables: bool = False) -> dict[str, Any]:
    from dispatch.matching import GreedyPolicy, OptimizingPolicy
    from simulations import mdrp

    started = time.perf_counter()
    instance = mdrp.read_instance(instance_dir)
    report = mdrp.replay(
        instance, GreedyPolicy() if policy == "greedy" else OptimizingPolicy(), tick_s=tick_s
    )
    target = Path(out_dir) / policy / instance.name
    mdrp.write_solution(target, report)
    solution = mdrp.read_solution(target)
    violations = mdrp.check_solution(instance, solution)
    kpis = mdrp.compute_kpis(instance, solution, report)
    kpis.update(policy=policy, feasible=not violations, violations=len(violations))
    kpis["replay_s"] = round(time.perf_counter() - started, 2)
    if tables:  # the report's rows, built here where the replay is (they travel back as plain values)
        from simulations.mdrp_report import mdrp_kpis, replay_tables

        kpis["_tables"] = replay_tables(
            instance, report, policy, params={"policy": policy}, extra_kpis=mdrp_kpis(kpis)
        )
    return kpis


def bench(
    instance_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    jobs: int = 2,
    tick_s: int = 60,
    policies: Sequence[str] = POLICIES,
    progress: TextIO | None = sys.stderr,
    report_command: str | None = None,
) -> list[dict[str, Any]]:
    """Replay every instance with every policy; write CSV and markdown; return the rows.

    With ``report_command`` (the command line to name in it), each instance also gets the HTML
    report of :mod:`simulations.report` in ``out_dir/reports/<instance>/``, its policies side by side.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = [(str(d), p) for d in sorted(map(str, instance_dirs)) for p in policies]
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(_one, d, p, str(out), tick_s, report_command is not None) for d, p in tasks]
        waiting: dict[str, list[Any]] = {}
        for done, future in enumerate(as_completed(futures), start=1):
            rows.append(future.result())
            if report_command is not None:
                name = rows[-1]["instance"]
                waiting.setdefault(name, []).append(rows[-1].pop("_tables"))
                if len(waiting[name]) == len(policies):
                    _write_report(out, instance_dirs, name, waiting.pop(name), report_command)
            if progress is not None:
                width = 30
                filled = width * done // len(tasks)
                elapsed = time.perf_counter() - started
                progress.write(
                    f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{len(tasks)} {elapsed:5.0f}s "
                    f"{rows[-1]['instance']} {rows[-1]['policy']:<10}"
                )
                progress.flush()
    if progress is not None:
        progress.write("\n")
    rows.sort(key=lambda r: (r["instance"], POLICIES.index(r["policy"]) if r["policy"] in POLICIES else 9))
    fields = ["instance", "policy", "feasible", "violations", "orders", "orders_delivered"]
    fields += [k for k, _ in COLUMNS if k not in fields] + ["decision_s_mean", "decision_s_max", "replay_s"]
    with (out / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.md").write_text(markdown(rows))
    return rows


def _write_report(
    out: Path, instance_dirs: Sequence[str | Path], name: str, tables: list[Any], command: str
) -> None:
    from simulations import mdrp
    from simulations.mdrp_report import write_replay_report

    directory = next(d for d in instance_dirs if Path(d).name == name)
    tables.sort(key=lambda t: POLICIES.index(t.name) if t.name in POLICIES else 9)
    write_replay_report(out / "reports" / name, mdrp.read_instance(directory), tables, command=command)


def _mean(rows: Sequence[dict[str, Any]], key: str) -> float:
    return statistics.fmean(float(r[key]) for r in rows) if rows else float("nan")


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    """Means per policy overall and by family, then one row per instance and policy."""
    policies = [p for p in POLICIES if any(r["policy"] == p for r in rows)]
    lines = [f"Instances: {len({r['instance'] for r in rows})}; every instance weighted equally.", ""]
    head = "| group | policy | n | feasible | " + " | ".join(h for _, h in COLUMNS) + " |"
    rule = "|" + "---|" * (4 + len(COLUMNS))
    lines += [head, rule]

    def add(group: str, subset: Sequence[dict[str, Any]]) -> None:
        for p in policies:
            mine = [r for r in subset if r["policy"] == p]
            if not mine:
                continue
            cells = " | ".join(f"{_mean(mine, k):.3f}".rstrip("0").rstrip(".") for k, _ in COLUMNS)
            feasible = sum(bool(r["feasible"]) for r in mine)
            lines.append(f"| {group} | {p} | {len(mine)} | {feasible}/{len(mine)} | {cells} |")

    add("**all**", rows)
    for family in ("size", "travel", "shifts", "prep", "seed"):
        values = sorted({family_of(r["instance"]).get(family, "?") for r in rows})
        for value in values:
            add(f"{family} {value}", [r for r in rows if family_of(r["instance"]).get(family) == value])
    half_seed0 = [
        r
        for r in rows
        if family_of(r["instance"]).get("seed") == "0" and family_of(r["instance"]).get("size") != "o100"
    ]
    if half_seed0:
        add("half-size seed 0 (16)", half_seed0)
    lines += ["", "| instance | policy | feasible | " + " | ".join(h for _, h in COLUMNS) + " |"]
    lines.append("|" + "---|" * (3 + len(COLUMNS)))
    for r in rows:
        cells = " | ".join(str(r[k]) for k, _ in COLUMNS)
        lines.append(f"| {r['instance']} | {r['policy']} | {r['feasible']} | {cells} |")
    return "\n".join(lines) + "\n"
