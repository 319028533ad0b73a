"""The HTML report: built from a run's four files, opened in a real headless Chromium, offline.

``tests/data/report`` is a small made-up city day of two variants that follows the interface
``dispatch simulate`` writes (``make_fixture.py`` there made it); the Grubhub replay's report
comes from the tiny instances of ``tests/data/mdrp``.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
from pathlib import Path

import h3
import pytest

from dispatch.cli import main
from dispatch.errors import InvalidInput
from simulations.mdrp_bench import bench
from simulations.report import h3_resolution_for, write_report
from tests.browser import ink_share, open_page

DATA = Path(__file__).resolve().parents[1] / "data"
CHARTS = {
    "chart-orders-placed",
    "chart-open-orders",
    "chart-couriers",
    "chart-click-to-door-hourly",
    "chart-on-time-hourly",
    "chart-dist-click-to-door",
    "chart-dist-lateness",
    "chart-dist-pickup-eta",
    "chart-dist-dropoff-eta",
}
LAYERS = ("click-to-door", "on-time", "refusals", "idle")
HEADER = (
    "JSON.stringify([document.querySelector('header').innerText,"
    " document.querySelectorAll('table.kpis tbody tr').length])"
)


def _copy_day(out: Path) -> Path:
    out.mkdir()
    for name in ("kpis.json", "orders.csv", "couriers.csv", "timeline.csv"):
        shutil.copy(DATA / "report" / name, out)
    return out


@pytest.fixture
def city_day(tmp_path: Path) -> Path:
    return _copy_day(tmp_path / "day")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture day's report, written once for the tests that only read it."""
    return write_report(_copy_day(tmp_path_factory.mktemp("report") / "day"))


def _figure_ids(page_html: str) -> set[str]:
    return set(re.findall(r'<figure class="chart" id="([^"]+)"', page_html))


def test_report_opens_offline_in_chromium_with_every_chart_and_map(report: Path) -> None:
    page = open_page(report, expression=HEADER)
    assert page.console_errors == [] and page.exceptions == []
    assert page.requests == []  # nothing fetched: the page is whole without a network
    # the demand is the same in both variants (one map); the rest differ (one map per variant)
    maps = {"map-demand"} | {f"map-{layer}-{v}" for layer in LAYERS for v in ("optimizing", "greedy")}
    assert set(page.figures) == CHARTS | maps
    blank = {fid: round(ink_share(img), 4) for fid, img in page.figures.items() if ink_share(img) < 0.01}
    assert blank == {}, "figures drawn without ink"
    assert all(img.width > 300 and img.height > 200 for img in page.figures.values())
    assert page.screenshot is not None and ink_share(page.screenshot) > 0.03
    header, kpi_rows = json.loads(page.evaluated)
    assert "report-fixture" in header and "seed 7" in header and "version 0.1.0" in header
    assert "optimizing" in header and "greedy" in header
    assert "dispatch simulate report-fixture --policy optimizing greedy" in header
    kpis = json.loads((report.parent / "kpis.json").read_text())
    assert kpi_rows == len(kpis["variants"][0]["kpis"])  # every KPI has its row


def test_the_browser_check_sees_errors_and_requests(tmp_path: Path) -> None:
    """The check above can fail: a page with a console error, an exception and a fetch."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><figure id="f"><p>x</p></figure>'
        '<img src="http://127.0.0.1:9/tile.png"><script>console.error("boom"); missing();</script>'
        "</body></html>"
    )
    page = open_page(bad)
    assert "boom" in page.console_errors
    assert any("missing is not defined" in e for e in page.exceptions)
    assert page.requests == ["http://127.0.0.1:9/tile.png"]
    assert set(page.figures) == {"f"} and ink_share(page.figures["f"]) < 0.01


def test_report_is_self_contained_and_the_same_every_time(report: Path, city_day: Path) -> None:
    first = report.read_bytes()
    assert write_report(city_day).read_bytes() == first
    text = first.decode()
    assert not re.search(r"<script|<link|<img|<iframe|@import|src=|url\((?!#)", text)
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids))  # the figures' inner ids do not collide
    # the only URLs are XML namespace names, which nothing fetches
    assert set(re.findall(r"https?://[^\"' )]+", text)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    assert "H3 hexagons of resolution" in text


def test_kpi_table_shows_each_variant_against_the_first(report: Path) -> None:
    text = report.read_text()
    row = re.search(r'<tr><th scope="row" title="on_time_share">.*?</tr>', text)
    assert row is not None
    # optimizing delivered 100% on time, greedy 90.4%: 9.6 points worse, drawn as worse
    assert "<td>100.0%</td>" in row.group(0)
    assert '90.4% <span class="delta bad">-9.6 pt</span>' in row.group(0)
    row = re.search(r'<tr><th scope="row" title="click_to_door_mean_min">.*?</tr>', text)
    assert row is not None and '24.06 <span class="delta bad">+2.99 (+14%)</span>' in row.group(0)


def _set_field(text: str, line: int, column: int, value: str) -> str:
    lines = text.splitlines()
    fields = lines[line - 1].split(",")
    fields[column] = value
    lines[line - 1] = ",".join(fields)
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        # a file the run did not write
        ("timeline.csv", None, "timeline.csv: file is missing"),
        # a column the interface has, gone
        (
            "orders.csv",
            lambda t: t.replace("click_to_door_s,", "c2d,", 1),
            "missing column(s) click_to_door_s",
        ),
        # a number that is not one, in the second variant's rows: named by its line in the file
        (
            "orders.csv",
            lambda t: _set_field(t, 96, 4, "soon"),
            "orders.csv:96: placed_at 'soon' is not a number",
        ),
        # coordinates of a kind the report does not know
        ("kpis.json", lambda t: t.replace('"latlng"', '"utm"'), "meta.coordinates is 'utm'"),
    ],
)
def test_bad_files_get_a_clear_error_and_no_report(city_day: Path, file: str, change, message: str) -> None:  # type: ignore[no-untyped-def]
    path = city_day / file
    if change is None:
        path.unlink()
    else:
        path.write_text(change(path.read_text()))
    with pytest.raises(InvalidInput, match=re.escape(message)):
        write_report(city_day)
    assert not (city_day / "report.html").exists()


def test_demand_map_has_one_hexagon_per_cell_with_orders(report: Path) -> None:
    text = report.read_text()
    figure = re.search(r'<figure class="chart" id="map-demand">.*?</figure>', text, flags=re.S)
    assert figure is not None
    counts = [int(n) for n in re.findall(r"<title>(\d+) orders per cell</title>", figure.group(0))]
    with (DATA / "report" / "orders.csv").open(newline="") as fh:
        orders = [r for r in csv.DictReader(fh) if r["variant"] == "optimizing"]
    res = h3_resolution_for(3000, len(orders))
    cells = {h3.latlng_to_cell(float(o["dropoff_lat"]), float(o["dropoff_lng"]), res) for o in orders}
    assert len(counts) == len(cells) and sum(counts) == len(orders) == 90


@pytest.mark.parametrize(
    ("radius_m", "orders"),
    [
        (3000, 90),  # the fixture: a small city, few orders
        (6000, 1000),  # lunch-rush
        (15000, 25000),  # metro-day
        (1500, 5000),  # a dense old town
        (40000, 500),  # a wide region, little demand
    ],
)
def test_h3_resolution_suits_the_city(radius_m: float, orders: int) -> None:
    res = h3_resolution_for(radius_m, orders)
    cells = math.pi * radius_m**2 / h3.average_hexagon_area(res, "m^2")
    # a map of tens to about a thousand cells, never one of a few blobs or of specks
    assert 30 <= cells <= 1500
    # one resolution finer would be too many cells for the orders, or one coarser too few
    finer = math.pi * radius_m**2 / h3.average_hexagon_area(res + 1, "m^2")
    coarser = math.pi * radius_m**2 / h3.average_hexagon_area(res - 1, "m^2")
    target = min(900, max(60, orders / 5))
    assert abs(math.log(cells / target)) <= min(
        abs(math.log(finer / target)), abs(math.log(coarser / target))
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_mdrp_solve_report_in_planar_metres(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    instance = DATA / "mdrp" / "bundle_one_courier"
    out = tmp_path / "solved"
    assert main(["mdrp", "solve", str(instance), "--out", str(out), "--report"]) == 0
    mdrp_kpis = json.loads((out / "kpis.json").read_text())  # the replay's own KPI file, untouched
    doc = json.loads((out / "report" / "kpis.json").read_text())
    assert doc["meta"]["coordinates"] == "planar_m"
    assert doc["meta"]["command"] == f"dispatch mdrp solve {instance} --out {out} --report"
    kpis = doc["variants"][0]["kpis"]
    assert kpis["orders_delivered"] == mdrp_kpis["orders_delivered"] == 2
    assert kpis["click_to_door_mean_min"] == pytest.approx(mdrp_kpis["click_to_door_mean"], abs=0.01)
    # both orders ride together: one pickup of two; the courier, at the restaurant when given them
    # at 7 min, waits 4 min for the later food (ready at 11 min)
    assert (kpis["orders_per_bundle"], kpis["courier_wait_for_food_mean_min"]) == (2.0, 4.0)
    orders = _rows(out / "report" / "orders.csv")
    assert [(o["order_id"], o["bundle_size"], o["status"]) for o in orders] == [
        ("o1", "2", "delivered"),
        ("o2", "2", "delivered"),
    ]
    (courier,) = _rows(out / "report" / "couriers.csv")
    shift_s = int(courier["shift_end"]) - int(courier["shift_start"])
    states_s = int(courier["busy_s"]) + int(courier["idle_s"]) + int(courier["waiting_at_merchant_s"])
    assert states_s == shift_s and int(courier["waiting_at_merchant_s"]) > 0
    timeline = _rows(out / "report" / "timeline.csv")
    assert sum(int(t["orders_placed"]) for t in timeline) == 2
    assert sum(int(t["delivered"]) for t in timeline) == 2
    page = open_page(out / "report" / "report.html")
    assert page.console_errors == [] and page.exceptions == [] and page.requests == []
    # one variant: one map per layer
    assert set(page.figures) == CHARTS | {"map-demand"} | {f"map-{layer}" for layer in LAYERS}
    assert all(ink_share(img) >= 0.01 for img in page.figures.values())
    text = (out / "report" / "report.html").read_text()
    assert "on a square grid" in text and "in the instance&#x27;s plane (metres)" in text


def test_mdrp_bench_report_puts_both_policies_side_by_side(tmp_path: Path) -> None:
    instance = DATA / "mdrp" / "promise_splits_bundle"
    rows = bench([instance], tmp_path, jobs=1, progress=None, report_command="dispatch mdrp bench x --report")
    assert all("_tables" not in r for r in rows)
    doc = json.loads((tmp_path / "reports" / instance.name / "kpis.json").read_text())
    assert [v["name"] for v in doc["variants"]] == ["optimizing", "greedy"]
    for row in rows:
        (variant,) = [v for v in doc["variants"] if v["name"] == row["policy"]]
        assert variant["kpis"]["orders_delivered"] == row["orders_delivered"]
    text = (tmp_path / "reports" / instance.name / "report.html").read_text()
    assert {"chart-couriers", "map-demand"} <= _figure_ids(text)
