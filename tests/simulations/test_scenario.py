"""Scenario files: the presets load, and each kind of broken file gets its own clear error."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from dispatch.cli import main
from simulations.scenario import PRESETS, ScenarioError, load_scenario
from simulations.simulate import parse_set, variants_of


def _demo_text() -> str:
    return resources.files("simulations.scenarios").joinpath("demo.toml").read_text()


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_loads(name: str) -> None:
    s = load_scenario(name)
    assert s.name == name
    assert s.end_s > s.start_s
    assert s.demand.orders > 0 and sum(sh.couriers for sh in s.fleet.shifts) > 0
    assert s.dispatch_config().promise_s == round(s.rules.promise_minutes * 60)


def test_metro_day_is_the_size_the_issue_names() -> None:
    s = load_scenario("metro-day")
    assert (s.start_s, s.end_s) == (6 * 3600, 24 * 3600)
    assert s.demand.orders == 25_000 and s.city.merchants.count == 400
    assert sum(sh.couriers for sh in s.fleet.shifts) == 2_000


BROKEN = [
    # an unknown key inside [city]
    ("[city]\n", '[city]\ncolour = "red"\n', "city.colour", "unknown key"),
    # a negative merchant count
    ("count = 6\n", "count = -6\n", "city.merchants.count", "whole number >= 1"),
    # a scheduled window longer than 30 minutes
    ("window_minutes = 30", "window_minutes = 45", "rules.window_minutes", "<= 30"),
    # a latitude beyond the pole
    ("center = [52.5200, 13.4050]   # Berlin", "center = [95.0, 13.4050]   # Berlin", "city.center",
     "lat in -90..90"),
    # a shift that ends before it starts
    ('end = "14:30"                 # long', 'end = "11:00"                 # long', "fleet.shifts[0].end",
     "after the shift's start"),
]  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field", "allowed"), BROKEN)
def test_a_broken_file_names_key_value_and_what_is_allowed(
    tmp_path: Path, old: str, new: str, field: str, allowed: str
) -> None:
    text = _demo_text()
    assert old in text
    path = tmp_path / "broken.toml"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert err.value.field == field
    assert field in str(err.value) and allowed in str(err.value)


@pytest.mark.parametrize(("old", "new", "field", "allowed"), BROKEN)
def test_the_command_says_it_in_one_line_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], old: str, new: str, field: str, allowed: str
) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(_demo_text().replace(old, new, 1))
    assert main(["simulate", str(path), "--quiet", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("dispatch: error:") and field in err and "Traceback" not in err
    assert err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_not_toml_and_missing_file_are_clear(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text("name = \n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="give a TOML file or one of the presets"):
        load_scenario(tmp_path / "nope.toml")


def test_overrides_by_full_or_short_key() -> None:
    assert parse_set("fleet.scale=0.8,1.2") == ("fleet.scale", [0.8, 1.2])
    s = load_scenario("demo", [("promise_minutes", 40), ("max_bundle_size", 2)])
    assert s.rules.promise_minutes == 40
    assert s.dispatch_config().promise_s == 2400 and s.dispatch_config().max_bundle_size == 2
    with pytest.raises(ScenarioError, match="no such scenario key"):
        parse_set("fleet.colour=1")
    with pytest.raises(ScenarioError, match=r"rules\.window_minutes = 45"):
        load_scenario("demo", [("window_minutes", 45)])


def test_variants_are_policies_times_values() -> None:
    vs = variants_of("optimizing", ["optimizing", "greedy"], [("fleet.scale", [0.8, 1.0])])
    assert [v.name for v in vs] == [
        "optimizing fleet.scale=0.8",
        "optimizing fleet.scale=1.0",
        "greedy fleet.scale=0.8",
        "greedy fleet.scale=1.0",
    ]
    assert [v.name for v in variants_of("greedy", [], [])] == ["greedy"]


def test_a_delivery_zone_from_a_geojson_file(tmp_path: Path) -> None:
    zone = {
        "type": "Polygon",
        "coordinates": [[[13.35, 52.49], [13.46, 52.49], [13.46, 52.55], [13.35, 52.55], [13.35, 52.49]]],
    }
    (tmp_path / "zone.geojson").write_text(json.dumps(zone))
    text = _demo_text().replace(
        "delivery_radius_m = [2000, 2500, 3000, 3500]", 'delivery_polygon = "zone.geojson"'
    )
    (tmp_path / "city.toml").write_text(text)
    s = load_scenario(tmp_path / "city.toml")
    assert s.city.merchants.delivery_polygon == zone
    (tmp_path / "zone.geojson").write_text('{"type": "Point", "coordinates": [13.4, 52.5]}')
    with pytest.raises(ScenarioError, match=r"city\.merchants\.delivery_polygon = 'zone.geojson'.*Polygon"):
        load_scenario(tmp_path / "city.toml")
