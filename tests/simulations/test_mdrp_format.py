"""The solution files are read by Grubhub's own evaluator rules, and the checker refuses any
file that evaluator would misread.

Grubhub's ``MDRP_code/compute_performance_summary.py`` (public grubhub/mdrplib) reads
``solution_info_orders.txt`` with ``pandas.read_table(path, sep=' ')`` and the other two files
line by line with ``str.split()``, skipping the first line of the assignments file as its header.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dispatch import InvalidInput
from dispatch.cli import main
from simulations import mdrp
from simulations.world import ReplayReport

DAY = Path(__file__).resolve().parents[1] / "data" / "mdrp" / "grubhub" / "4o50t75s1p100"


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, mdrp.MdrpInstance, ReplayReport]:
    instance = mdrp.read_instance(DAY)
    report = mdrp.replay(instance)
    out = tmp_path_factory.mktemp("solution")
    mdrp.write_solution(out, report)
    return out, instance, report


def test_the_orders_file_is_read_by_the_evaluators_pandas_call(
    written: tuple[Path, mdrp.MdrpInstance, ReplayReport],
) -> None:
    out, _, report = written
    table = pd.read_table(out / "solution_info_orders.txt", sep=" ")
    assert list(table.columns) == [
        "order",
        "placement_time",
        "ready_time",
        "pickup_time",
        "dropoff_time",
        "courier",
    ]
    assert len(table) == len(report.delivered) > 0
    # the evaluator's own conversions succeed on every row: nothing is coerced to NaN
    for column in ("placement_time", "ready_time", "pickup_time", "dropoff_time"):
        assert pd.to_numeric(table[column], errors="coerce").notna().all()
    table = table.set_index("order")
    for oid, (courier, placed, ready, picked, dropped) in report.delivered.items():
        row = table.loc[oid]
        assert (row.placement_time, row.ready_time, row.pickup_time, row.dropoff_time, row.courier) == (
            placed // 60,
            ready // 60,
            picked // 60,
            dropped // 60,
            courier,
        )


def test_the_other_files_are_read_line_by_line_as_the_evaluator_does(
    written: tuple[Path, mdrp.MdrpInstance, ReplayReport],
) -> None:
    out, _, report = written
    lines = (out / "solution_info_assignments.txt").read_text().splitlines()
    assert lines[0] == "assignment_time pickup_time courier orders"
    assignments = [line.split() for line in lines[1:]]  # the evaluator skips the first line
    carried = [log for log in report.pickups if log.pickup_at is not None]
    assert len(assignments) == len(carried)
    for fields, log in zip(assignments, carried, strict=True):
        assert int(float(fields[0])) == log.assigned_at // 60
        assert int(float(fields[1])) == log.pickup_at // 60  # type: ignore[operator]
        assert fields[2] == log.courier_id
        assert fields[3:] == log.order_ids
    lines = (out / "solution_info_couriers.txt").read_text().splitlines()
    assert lines[0] == "courier departure_time origin destination"
    moves = [line.split() for line in lines[1:]]
    assert len(moves) == len(report.moves)
    by_courier = sorted(report.moves, key=lambda m: m.courier_id)  # stable: executed order kept
    assert moves == [[m.courier_id, str(m.depart_at // 60), m.origin, m.destination] for m in by_courier]


def test_every_line_has_single_spaces_unix_ends_and_integer_minutes(
    written: tuple[Path, mdrp.MdrpInstance, ReplayReport],
) -> None:
    out, instance, _ = written
    for name in mdrp.SOLUTION_HEADERS:
        raw = (out / name).read_bytes()
        assert b"\t" not in raw and b"\r" not in raw and b"  " not in raw
        assert raw.endswith(b"\n") and not raw.endswith(b"\n\n")
        assert all(line == line.strip() for line in raw.decode().splitlines())
    # and the checker, which refuses anything the evaluator would misread, finds it feasible
    assert mdrp.check_solution(instance, mdrp.read_solution(out)) == []


# Each row: a file, a change that Grubhub's evaluator would misread, and what the refusal says.
MISREAD = [
    # tabs: pandas with sep=' ' sees one column (the crash in the evaluator that started this)
    ("solution_info_orders.txt", lambda t: t.replace(" ", "\t"), ":1: the header must be"),
    ("solution_info_orders.txt", lambda t: _line2(t, lambda line: line.replace(" ", "\t")), ":2: a tab"),
    # two spaces: pandas sees an empty column between them
    ("solution_info_orders.txt", lambda t: _line2(t, lambda line: line.replace(" ", "  ", 1)), ":2: fields"),
    # a space at the end of a line: an extra, empty column
    ("solution_info_couriers.txt", lambda t: _line2(t, lambda line: line + " "), ":2: fields"),
    # Windows line ends
    ("solution_info_assignments.txt", lambda t: t.replace("\n", "\r\n"), ":1: the header must be"),
    ("solution_info_couriers.txt", lambda t: _line2(t, lambda line: line + "\r"), ":2: a carriage return"),
    # no header: the evaluator would drop the first assignment as if it were one
    ("solution_info_assignments.txt", lambda t: t.split("\n", 1)[1], ":1: the header must be"),
    # a blank line: the evaluator indexes an empty split
    ("solution_info_assignments.txt", lambda t: t.replace("\n", "\n\n", 1), ":2: an empty line"),
    # a missing field
    ("solution_info_orders.txt", lambda t: _line2(t, lambda line: line.rsplit(" ", 1)[0]), ":2: 5 fields"),
    # minutes as decimals or text
    ("solution_info_couriers.txt", lambda t: _line2(t, lambda line: line.replace(" ", " x", 1)), ":2: time"),
]


def _line2(text: str, change: object) -> str:
    lines = text.split("\n")
    lines[1] = change(lines[1])  # type: ignore[operator]
    return "\n".join(lines)


@pytest.mark.parametrize(("name", "change", "says"), MISREAD)
def test_the_checker_refuses_what_the_evaluator_would_misread(
    written: tuple[Path, mdrp.MdrpInstance, ReplayReport],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    change: object,
    says: str,
) -> None:
    out, _, _ = written
    for each in mdrp.SOLUTION_HEADERS:
        (tmp_path / each).write_bytes((out / each).read_bytes())
    path = tmp_path / name
    path.write_text(change(path.read_text()), newline="")  # type: ignore[operator]
    with pytest.raises(InvalidInput) as refused:
        mdrp.read_solution(tmp_path)
    assert f"{path}{says}" in str(refused.value)
    # the command says the same in one line, exit 2, no traceback
    assert main(["mdrp", "check", str(DAY), str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dispatch: error: ") and f"{path}{says}" in err and "Traceback" not in err
