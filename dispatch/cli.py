"""The ``dispatch`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from dispatch.errors import DispatchError

__all__ = ["main"]


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _demo(args: argparse.Namespace) -> int:
    # imported here so that `dispatch --help` stays fast
    from dispatch.config import DispatchConfig
    from dispatch.engine import Dispatcher
    from dispatch.matching import GreedyPolicy, OptimizingPolicy
    from simulations.city import synthetic_city
    from simulations.world import World

    plan = synthetic_city(seed=args.seed, n_couriers=args.couriers, n_orders=args.orders)
    policy = GreedyPolicy() if args.policy == "greedy" else OptimizingPolicy()
    dispatcher = Dispatcher(config=DispatchConfig(city=plan.name), policy=policy)
    out = sys.stdout
    print(
        f"City {plan.name}: {len(plan.merchants)} merchants, {len(plan.shifts)} couriers, "
        f"{len(plan.requests)} order requests over {plan.requests[-1].placed_at // 60} min; "
        f"policy {policy.name}, seed {args.seed}",
        file=out,
    )

    def show(now: int, assignments: list) -> None:  # type: ignore[type-arg]
        if args.quiet:
            return
        for a in assignments:
            if not a.order_ids:  # an idle courier sent to wait where orders are expected
                stop = a.route.stops[0]
                print(
                    f"[{_clock(now)}] {a.courier_id} -> waits at {stop.merchant_id} "
                    f"from {_clock(stop.arrive_at)}",
                    file=out,
                )
                continue
            stops = [s for s in a.route.stops if set(s.order_ids) & set(a.order_ids)]
            pickup = next(s for s in stops if s.kind.value == "pickup")
            drops = ", ".join(
                f"{s.order_ids[0]} at {_clock(s.service_at)}" for s in stops if s.kind.value == "dropoff"
            )
            print(
                f"[{_clock(now)}] {a.courier_id} <- {', '.join(a.order_ids)} at {pickup.merchant_id}: "
                f"arrives {_clock(pickup.arrive_at)}, picks up {_clock(pickup.service_at)}; delivers {drops}",
                file=out,
            )

    report = World(dispatcher, plan, tick_s=args.tick).run(on_tick=show)
    if report.refusals:
        print("\nRefused orders:", file=out)
        for r in report.refusals:
            print(f"  [{_clock(r.at)}] {r.order_id}: {r.code}: {r.reason}", file=out)
    summary = report.summary()
    print("\nSummary:", file=out)
    print(json.dumps(summary, indent=2), file=out)
    return 0 if summary["orders_undelivered"] == 0 else 1


def _simulate(args: argparse.Namespace) -> int:
    import shlex

    from rich.console import Console

    from simulations.report import write_report
    from simulations.simulate import kpi_table, parse_set, simulate

    sets = [parse_set(text) for text in args.set]
    command = shlex.join(["dispatch", *(args.argv or [])])
    out, data = simulate(
        args.scenario,
        seed=args.seed,
        policies=args.policy,
        sets=sets,
        out=args.out,
        jobs=args.jobs,
        command=command,
        quiet=args.quiet,
    )
    console = Console()
    console.print(kpi_table(data))
    console.print(f"Files: {out}/kpis.json, orders.csv, couriers.csv, timeline.csv")
    console.print(f"Report: {write_report(out)}")
    return 0


def _policy(name: str) -> object:
    from dispatch.matching import GreedyPolicy, OptimizingPolicy

    return GreedyPolicy() if name == "greedy" else OptimizingPolicy()


def _mdrp_solve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulations import mdrp

    instance = mdrp.read_instance(args.instance)
    report = mdrp.replay(instance, _policy(args.policy), tick_s=args.tick)  # type: ignore[arg-type]
    out = Path(args.out)
    mdrp.write_solution(out, report)
    solution = mdrp.read_solution(out)
    violations = mdrp.check_solution(instance, solution)
    kpis = mdrp.compute_kpis(instance, solution, report)
    kpis["policy"] = args.policy
    kpis["feasible"] = not violations
    (out / "kpis.json").write_text(json.dumps(kpis, indent=2) + "\n")
    print(json.dumps(kpis, indent=2))
    if args.report:
        from simulations.mdrp_report import mdrp_kpis, replay_tables, write_replay_report

        tables = replay_tables(
            instance, report, args.policy, params={"policy": args.policy}, extra_kpis=mdrp_kpis(kpis)
        )
        page = write_replay_report(out / "report", instance, [tables], command=_command(args))
        print(f"report: {page}", file=sys.stderr)
    for v in violations[:20]:
        print(f"dispatch: infeasible: {v}", file=sys.stderr)
    return 0 if not violations else 1


def _command(args: argparse.Namespace) -> str:
    import shlex

    return shlex.join(["dispatch", *args.argv])


def _mdrp_check(args: argparse.Namespace) -> int:
    from simulations import mdrp

    instance = mdrp.read_instance(args.instance)
    violations = mdrp.check_solution(instance, mdrp.read_solution(args.solution))
    for v in violations:
        print(v)
    print(f"{len(violations)} violations: {'feasible' if not violations else 'INFEASIBLE'}")
    return 0 if not violations else 1


def _mdrp_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulations.mdrp_bench import POLICIES, bench

    policies = POLICIES if args.policy == "both" else (args.policy,)
    rows = bench(
        args.instances, args.out, jobs=args.jobs, tick_s=args.tick, policies=policies,
        report_command=_command(args) if args.report else None,
    )  # fmt: skip
    print(Path(args.out, "results.md").read_text())
    return 0 if all(r["feasible"] for r in rows) else 1


def _serve(args: argparse.Namespace) -> int:
    # the web stack (FastAPI, uvicorn) is imported only here; it parses its own options
    from api.serve import main as serve_main

    return serve_main(args.serve_args)


def _tsppd_solve(args: argparse.Namespace) -> int:
    from simulations.tsppd import solve_file

    print(json.dumps(solve_file(args.file, time_limit_s=args.time_limit_s)))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dispatch", description="Hyperlocal delivery dispatch engine.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="dispatch a small simulated city and print what happens")
    demo.add_argument("--seed", type=int, default=3, help="random seed of the city (default 3)")
    demo.add_argument("--orders", type=int, default=40, help="order requests (default 40)")
    demo.add_argument("--couriers", type=int, default=8, help="couriers (default 8)")
    demo.add_argument("--policy", choices=["optimizing", "greedy"], default="optimizing")
    demo.add_argument("--tick", type=int, default=60, help="seconds between dispatch ticks (default 60)")
    demo.add_argument("--quiet", action="store_true", help="print only refusals and the summary")
    demo.set_defaults(run=_demo)

    sim = sub.add_parser(
        "simulate",
        help="simulate a city day (a preset or a TOML file): variants side by side, files and KPIs",
    )
    sim.add_argument("scenario", help="a preset (demo, lunch-rush, metro-day) or a scenario TOML file")
    sim.add_argument("--seed", type=int, default=1, help="random seed of the day (default 1)")
    sim.add_argument("--out", default=None, help="output folder (default out/<scenario name>)")
    sim.add_argument(
        "--policy",
        nargs="+",
        default=[],
        choices=["optimizing", "greedy"],
        help="one or more policies (default: the scenario's)",
    )
    sim.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="scenario values to vary, e.g. fleet.scale=0.8,1.0 or promise_minutes=30,40 (repeatable)",
    )
    sim.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    sim.add_argument("--quiet", action="store_true", help="no progress bars")
    sim.set_defaults(run=_simulate)

    serve = sub.add_parser(
        "serve",
        help="serve the HTTP API (uvicorn); in-memory state, or Redis (dispatch serve --help)",
        add_help=False,
    )
    serve.set_defaults(run=_serve)  # its options are the API's own (api.serve), parsed there

    tsppd = sub.add_parser("tsppd", help="traveling salesman paths with pickup and delivery").add_subparsers(
        dest="tsppd_command", required=True
    )
    one = tsppd.add_parser("solve", help="solve one tsppdlib JSON instance and print JSON")
    one.add_argument("file", help="instance file (tsppdlib JSON)")
    one.add_argument(
        "--time-limit", dest="time_limit_s", type=float, default=1.0, help="seconds (default 1.0)"
    )
    one.set_defaults(run=_tsppd_solve)

    mdrp = sub.add_parser("mdrp", help="the Grubhub meal-delivery instances").add_subparsers(
        dest="mdrp_command", required=True
    )
    solve = mdrp.add_parser("solve", help="replay one instance, write the solution files and kpis.json")
    solve.add_argument("instance", help="instance directory (restaurants.txt, orders.txt, ...)")
    solve.add_argument("--out", required=True, help="directory for the solution files")
    solve.add_argument("--policy", choices=["optimizing", "greedy"], default="optimizing")
    solve.add_argument("--tick", type=int, default=60, help="seconds between re-optimizations (default 60)")
    solve.add_argument("--report", action="store_true", help="also write the HTML report to OUT/report/")
    solve.set_defaults(run=_mdrp_solve)
    many = mdrp.add_parser("bench", help="replay many instances in parallel; CSV and markdown table")
    many.add_argument("instances", nargs="+", help="instance directories")
    many.add_argument("--out", default="out/mdrp-bench", help="directory for solutions and tables")
    many.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    many.add_argument("--policy", choices=["both", "optimizing", "greedy"], default="both")
    many.add_argument("--tick", type=int, default=60, help="seconds between re-optimizations (default 60)")
    many.add_argument(
        "--report", action="store_true", help="also write an HTML report per instance to OUT/reports/NAME/"
    )
    many.set_defaults(run=_mdrp_bench)
    check = mdrp.add_parser("check", help="check a solution against every MDRP rule")
    check.add_argument("instance")
    check.add_argument("solution")
    check.set_defaults(run=_mdrp_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "serve":
        args.serve_args = rest
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.run(args))
    except DispatchError as exc:
        print(f"dispatch: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
