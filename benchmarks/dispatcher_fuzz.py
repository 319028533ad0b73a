"""The engine's stateful fuzz (tests/dispatcher_machine.py), run longer than the suite does.

Fresh randomness on every run, ``--examples`` runs of up to ``--steps`` steps each, once with
the optimizing policy and once with the greedy baseline on the same settings. Prints JSON: per
policy, the runs, seconds, and how far the runs went (orders accepted, assigned by ticks,
delivered by couriers following their plans). A failing invariant stops the run with hypothesis'
shrunk example and a non-zero exit.

    .venv/bin/python benchmarks/dispatcher_fuzz.py --examples 300 --steps 100
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests/

from dispatch import DispatchPolicy, GreedyPolicy, OptimizingPolicy
from tests.dispatcher_machine import DispatcherMachine


def run(policy: type[DispatchPolicy], examples: int, steps: int) -> dict[str, Any]:
    totals = {"runs": 0, "accepted": 0, "assigned": 0, "delivered": 0}

    class Counted(DispatcherMachine):
        policy_factory = policy

        def teardown(self) -> None:
            totals["runs"] += 1
            totals["accepted"] += len(self.accepted)
            totals["assigned"] += self.assigned
            totals["delivered"] += self.delivered

    start = time.perf_counter()
    run_state_machine_as_test(
        Counted,
        settings=settings(
            max_examples=examples,
            stateful_step_count=steps,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
    return {"policy": policy.__name__, **totals, "seconds": round(time.perf_counter() - start, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--steps", type=int, default=80)
    args = parser.parse_args()
    results = [run(p, args.examples, args.steps) for p in (OptimizingPolicy, GreedyPolicy)]
    print(
        json.dumps(
            {
                "benchmark": "dispatcher_fuzz",
                "examples": args.examples,
                "steps": args.steps,
                "python": platform.python_version(),
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
