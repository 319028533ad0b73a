"""The engine's stateful fuzz (tests/dispatcher_machine.py) with a bounded number of examples,
derandomized so the suite runs the same cases every time; benchmarks/dispatcher_fuzz.py runs it
longer with fresh randomness."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.dispatcher_machine import DispatcherMachine

TestDispatcherMachine = DispatcherMachine.TestCase
TestDispatcherMachine.settings = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
