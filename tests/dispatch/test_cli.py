"""The ``dispatch`` command: what each subcommand prints and returns, and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from dispatch.cli import main

ROOT = Path(__file__).resolve().parents[2]
MDRP = ROOT / "tests" / "data" / "mdrp"


def test_demo_prints_assignments_and_a_summary_and_delivers_everything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo", "--orders", "12", "--couriers", "3", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("City ") and "policy optimizing, seed 5" in out
    assert " <- " in out  # at least one courier took orders
    summary = json.loads(out[out.index("Summary:") + len("Summary:") :])
    assert summary["orders_requested"] == 12
    assert summary["orders_accepted"] + summary["orders_refused"] == 12
    assert summary["orders_delivered"] == summary["orders_accepted"] and summary["orders_undelivered"] == 0


def test_demo_same_seed_same_output(capsys: pytest.CaptureFixture[str]) -> None:
    outputs = []
    for _ in range(2):
        assert main(["demo", "--orders", "10", "--couriers", "3", "--policy", "greedy", "--quiet"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert " <- " not in outputs[0]  # --quiet: only refusals and the summary


def test_mdrp_solve_writes_a_feasible_solution(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "solution"
    assert main(["mdrp", "solve", str(MDRP / "bundle_one_courier"), "--out", str(out)]) == 0
    kpis = json.loads(capsys.readouterr().out)
    assert kpis["feasible"] is True and kpis["policy"] == "optimizing"
    assert json.loads((out / "kpis.json").read_text()) == kpis
    assert main(["mdrp", "check", str(MDRP / "bundle_one_courier"), str(out)]) == 0
    assert capsys.readouterr().out.strip() == "0 violations: feasible"


def test_a_refused_input_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mdrp", "solve", str(MDRP / "broken_unknown_restaurant"), "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dispatch: error: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_tsppd_solve_prints_the_optimal_tour(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # nodes on a line at their index; the path runs from +0 (0) out to -2 (5) and back to -0
    # (1): at least 5 + 4 = 9, by two tours
    edges = [[abs(a - b) for b in range(6)] for a in range(6)]
    instance = {
        "name": "line",
        "nodes": ["+0", "-0", "+1", "-1", "+2", "-2"],
        "precedence": {"+0": "-0", "+1": "-1", "+2": "-2"},
        "edges": edges,
    }
    path = tmp_path / "line.json"
    path.write_text(json.dumps(instance))
    assert main(["tsppd", "solve", str(path), "--time-limit", "0.5"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["cost"], result["optimal"]) == (9, True)
    assert result["tour"] in (["+0", "+1", "-1", "+2", "-2", "-0"], ["+0", "+1", "+2", "-2", "-1", "-0"])


def test_unknown_options_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["demo", "--bogus"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_serve_refuses_to_start_without_api_keys(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DISPATCH_API_KEYS", "DISPATCH_API_KEYS_FILE", "DISPATCH_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert "configuration refused" in capsys.readouterr().err


# The engine, and the commands that do not serve, need neither the web stack nor Redis.
_WEB_AND_REDIS = ("fastapi", "starlette", "uvicorn", "pydantic", "pydantic_settings", "redis", "api")
_BLOCKER = f"""
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {_WEB_AND_REDIS!r}:
            raise ImportError("the engine imported " + name)
sys.meta_path.insert(0, Block())
"""


def test_the_engine_and_the_cli_run_without_the_web_and_redis_stacks() -> None:
    code = _BLOCKER + (
        "import dispatch, dispatch.cli\n"
        "from dispatch import Dispatcher, DeliveryArea, Location, Merchant\n"
        "d = Dispatcher()\n"
        "d.add_merchant(Merchant('m', Location(52.52, 13.405), DeliveryArea(radius_m=3000)), now=0)\n"
        "d.start_shift('c', Location(52.521, 13.41), now=0, shift_end=3600)\n"
        "d.place_order('o', 'm', Location(52.53, 13.415), now=60)\n"
        "assert [a.order_ids for a in d.tick(600).assignments] == [('o',)]\n"
        "sys.exit(dispatch.cli.main(['demo', '--orders', '5', '--couriers', '2', '--quiet']))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Summary:" in done.stdout


def test_the_engine_depends_on_neither_the_web_nor_the_redis_packages() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = {dep.split("[")[0].split(">")[0].split("<")[0].strip() for dep in project["dependencies"]}
    assert {"ortools", "h3", "shapely", "numpy"} <= required
    assert not required & {
        "fastapi",
        "uvicorn",
        "pydantic",
        "pydantic-settings",
        "redis",
        "prometheus-client",
    }
    assert {"api", "redis", "bench", "dev"} <= set(project["optional-dependencies"])
