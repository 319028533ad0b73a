"""Scenarios: a city day described in TOML, read with the standard library and checked whole.

A scenario names the city (centre, radius, merchants, customer hotspots), the demand (orders,
hourly profile, scheduled share), the fleet (shifts, vehicles), the rules (promise, window,
tick, policy, ``DispatchConfig`` overrides) and the uncertainty: the truth the engine is not
told. Presets ship in ``simulations/scenarios``. Every value is checked when the file is read;
a broken file raises one :class:`ScenarioError` naming the key, the value and what is allowed.

>>> s = load_scenario("demo")
>>> s.name, s.demand.orders, len(s.city.hotspots) > 0
('demo', 40, True)
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

from dispatch.config import DispatchConfig
from dispatch.errors import InvalidInput

__all__ = [
    "PRESETS",
    "CitySpec",
    "DemandSpec",
    "FleetSpec",
    "Hotspot",
    "MerchantSpec",
    "RulesSpec",
    "Scenario",
    "ScenarioError",
    "ShiftSpec",
    "UncertaintySpec",
    "VehicleSpec",
    "apply_overrides",
    "load_scenario",
    "parse_scenario",
    "read_scenario_data",
]

PRESETS = ("demo", "lunch-rush", "metro-day")
POLICIES = ("optimizing", "greedy")
_MAX_WINDOW_MIN = 30


class ScenarioError(InvalidInput):
    """A scenario file that cannot be run: names the key, the value and what is allowed."""

    code = "invalid-scenario"


@dataclass(frozen=True, slots=True)
class Hotspot:
    lat: float
    lng: float
    spread_km: float
    weight: float


@dataclass(frozen=True, slots=True)
class MerchantSpec:
    count: int
    clusters: int
    cluster_spread_km: float
    delivery_radius_m: tuple[float, ...]
    delivery_polygon: dict[str, Any] | None
    prep_minutes: tuple[float, ...]
    popularity_sigma: float
    radius_within_promise: bool


@dataclass(frozen=True, slots=True)
class CitySpec:
    lat: float
    lng: float
    radius_km: float
    merchants: MerchantSpec
    hotspots: tuple[Hotspot, ...]
    uniform_share: float


@dataclass(frozen=True, slots=True)
class DemandSpec:
    orders: int
    hourly_profile: tuple[float, ...]
    scheduled_share: float
    scheduled_lead_minutes: tuple[float, float]


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    name: str
    speed_kmh: float
    capacity: int
    share: float


@dataclass(frozen=True, slots=True)
class ShiftSpec:
    start_s: int
    end_s: int
    couriers: int


@dataclass(frozen=True, slots=True)
class FleetSpec:
    scale: float
    vehicles: tuple[VehicleSpec, ...]
    shifts: tuple[ShiftSpec, ...]


@dataclass(frozen=True, slots=True)
class RulesSpec:
    promise_minutes: float
    window_minutes: float
    tick_seconds: int
    policy: str
    config: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class UncertaintySpec:
    enabled: bool
    prep_median: float
    prep_bias_sigma: float
    prep_noise_sigma: float
    ride_sigma: float
    ride_hour_factor: tuple[float, ...]
    decline_probability: float
    cancel_probability: float
    cancel_after_minutes: tuple[float, float]
    late_start_probability: float
    late_start_mean_minutes: float
    no_show_probability: float


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    start_s: int
    end_s: int
    city: CitySpec
    demand: DemandSpec
    fleet: FleetSpec
    rules: RulesSpec
    uncertainty: UncertaintySpec
    #: the checked TOML data it was read from (after any overrides)
    data: Mapping[str, Any]

    def dispatch_config(self) -> DispatchConfig:
        """The engine's rules for this city (promise and window from ``rules``, then overrides)."""
        values: dict[str, Any] = {
            "city": self.name,
            "promise_s": round(self.rules.promise_minutes * 60),
            "max_window_s": _MAX_WINDOW_MIN * 60,
        }
        if self.uncertainty.decline_probability > 0:
            # couriers who may decline answer offers (the world answers each at once)
            values["auto_accept"] = False
        values.update(self.rules.config)
        return DispatchConfig(**values)


# -- reading -----------------------------------------------------------------------------------


def read_scenario_data(source: str | Path) -> tuple[dict[str, Any], Path | None]:
    """The TOML data of a preset name or a file path, and the file's folder (None for presets)."""
    text: str
    folder: Path | None
    if isinstance(source, str) and source in PRESETS:
        text = resources.files("simulations.scenarios").joinpath(f"{source}.toml").read_text()
        folder = None
        where = f"preset {source!r}"
    else:
        path = Path(source)
        if not path.is_file():
            raise ScenarioError(
                f"no scenario {str(source)!r}: give a TOML file or one of the presets {', '.join(PRESETS)}",
                field="scenario",
            )
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(f"{path}: cannot be read: {exc}", field="scenario") from exc
        folder = path.parent
        where = str(path)
    try:
        return tomllib.loads(text), folder
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{where}: not valid TOML: {exc}", field="scenario") from exc


def load_scenario(source: str | Path, overrides: Sequence[tuple[str, Any]] = ()) -> Scenario:
    """Read, override (``("fleet.scale", 0.8)``, ...) and check a scenario."""
    data, folder = read_scenario_data(source)
    return parse_scenario(apply_overrides(data, overrides), folder=folder)


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    """A copy of ``data`` with each dotted key set; a key may be just its last part
    (``promise_minutes``) when that names exactly one key of the scenario format."""
    out = _deep_copy(data)
    for key, value in overrides:
        path = resolve_key(key)
        table = out
        for part in path[:-1]:
            nxt = table.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ScenarioError(f"--set {key}: {'.'.join(path[:-1])} is not a table", field=key)
            table = nxt
        table[path[-1]] = value
    return out


def resolve_key(key: str) -> tuple[str, ...]:
    """The full dotted path of an override key (see :func:`apply_overrides`)."""
    if key in _LEAVES or key.startswith("rules.config."):
        return tuple(key.split("."))
    if key in _CONFIG_FIELDS:
        return ("rules", "config", key)
    matches = [leaf for leaf in _LEAVES if leaf.endswith("." + key)]
    if len(matches) == 1:
        return tuple(matches[0].split("."))
    if matches:
        raise ScenarioError(f"--set {key}: ambiguous, say one of {', '.join(matches)}", field=key)
    raise ScenarioError(
        f"--set {key}: no such scenario key; allowed: {', '.join(sorted(_LEAVES))}, "
        "or a DispatchConfig field (rules.config.<field>)",
        field=key,
    )


# -- checking ----------------------------------------------------------------------------------


class _Table:
    """One TOML table being read: every key must be read once, unknown keys are errors."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, dict):
            raise ScenarioError(f"{path or 'scenario'} must be a table, got {data!r}", field=path)
        self.data: dict[str, Any] = data
        self.path = path
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def get(self, name: str, default: Any = ...) -> Any:
        self.seen.add(name)
        if name in self.data:
            return self.data[name]
        if default is ...:
            raise ScenarioError(f"{self.key(name)} is missing", field=self.key(name))
        return default

    def fail(self, name: str, value: Any, allowed: str) -> ScenarioError:
        return ScenarioError(f"{self.key(name)} = {value!r}: {allowed}", field=self.key(name), value=value)

    def number(
        self,
        name: str,
        default: Any = ...,
        *,
        lo: float | None = None,
        hi: float | None = None,
        above: float | None = None,
    ) -> float:
        value = self.get(name, default)
        bounds = []
        if above is not None:
            bounds.append(f"> {above:g}")
        if lo is not None:
            bounds.append(f">= {lo:g}")
        if hi is not None:
            bounds.append(f"<= {hi:g}")
        allowed = "must be a number" + (f" {' and '.join(bounds)}" if bounds else "")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(name, value, allowed)
        if (
            (above is not None and value <= above)
            or (lo is not None and value < lo)
            or (hi is not None and value > hi)
        ):
            raise self.fail(name, value, allowed)
        return float(value)

    def count(self, name: str, default: Any = ..., *, lo: int = 0, hi: int | None = None) -> int:
        value = self.get(name, default)
        allowed = f"must be a whole number >= {lo}" + (f" and <= {hi}" if hi is not None else "")
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value < lo
            or (hi is not None and value > hi)
        ):
            raise self.fail(name, value, allowed)
        return value

    def share(self, name: str, default: Any = ...) -> float:
        return self.number(name, default, lo=0, hi=1)

    def text(self, name: str, default: Any = ..., *, choices: Sequence[str] | None = None) -> str:
        value = self.get(name, default)
        if not isinstance(value, str) or (choices is not None and value not in choices):
            allowed = f"must be one of {', '.join(choices)}" if choices else "must be a string"
            raise self.fail(name, value, allowed)
        return value

    def boolean(self, name: str, default: Any = ...) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, value, "must be true or false")
        return value

    def numbers(
        self,
        name: str,
        default: Any = ...,
        *,
        length: int | None = None,
        lo: float = 0.0,
        positive: bool = False,
        nonempty: bool = True,
    ) -> tuple[float, ...]:
        value = self.get(name, default)
        what = "positive numbers" if positive else f"numbers >= {lo:g}"
        allowed = f"must be a list of {length or 'one or more'} {what}"
        if (
            not isinstance(value, list)
            or (length is not None and len(value) != length)
            or (nonempty and not value)
        ):
            raise self.fail(name, value, allowed)
        for v in value:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise self.fail(name, value, allowed)
            if v < lo or (positive and v <= 0):
                raise self.fail(name, value, allowed)
        return tuple(float(v) for v in value)

    def clock(self, name: str, default: Any = ...) -> int:
        """``"HH:MM"`` from 00:00 to 24:00, as seconds from midnight."""
        value = self.get(name, default)
        allowed = 'must be a time "HH:MM" from "00:00" to "24:00"'
        if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
            raise self.fail(name, value, allowed)
        try:
            h, m = int(value[:2]), int(value[3:])
        except ValueError:
            raise self.fail(name, value, allowed) from None
        if not (0 <= h <= 24 and 0 <= m < 60) or (h == 24 and m):
            raise self.fail(name, value, allowed)
        return h * 3600 + m * 60

    def latlng(self, name: str, default: Any = ...) -> tuple[float, float]:
        value = self.get(name, default)
        allowed = "must be [lat, lng] with lat in -90..90 and lng in -180..180"
        if (
            not isinstance(value, list)
            or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)
        ):
            raise self.fail(name, value, allowed)
        lat, lng = float(value[0]), float(value[1])
        if not (-90 <= lat <= 90 and -180 <= lng <= 180):
            raise self.fail(name, value, allowed)
        return lat, lng

    def table(self, name: str, default: Any = ...) -> _Table:
        return _Table(self.get(name, default), self.key(name))

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            name = unknown[0]
            raise self.fail(
                name, self.data[name], f"unknown key; allowed here: {', '.join(sorted(self.seen))}"
            )


def parse_scenario(data: Mapping[str, Any], *, folder: Path | None = None) -> Scenario:
    """Check ``data`` (a TOML document) and return the scenario it describes."""
    top = _Table(dict(data), "")
    name = top.text("name")
    description = top.text("description", "")
    start_s = top.clock("start")
    end_s = top.clock("end")
    if end_s <= start_s:
        raise top.fail("end", top.data["end"], f"must be after start ({top.data['start']})")
    city = _city(top.table("city"), folder)
    demand = _demand(top.table("demand"), start_s, end_s)
    fleet = _fleet(top.table("fleet"))
    rules = _rules(top.table("rules"))
    uncertainty = _uncertainty(top.table("uncertainty"))
    top.done()
    scenario = Scenario(name, description, start_s, end_s, city, demand, fleet, rules, uncertainty, data)
    scenario.dispatch_config()  # the overrides must make a valid configuration
    return scenario


def _city(t: _Table, folder: Path | None) -> CitySpec:
    lat, lng = t.latlng("center")
    radius_km = t.number("radius_km", above=0, hi=200)
    m = t.table("merchants")
    count = m.count("count", lo=1)
    clusters = m.count("clusters", 1, lo=1)
    spread = m.number("cluster_spread_km", above=0)
    polygon_file = m.get("delivery_polygon", None)
    radius = m.get("delivery_radius_m", None)
    polygon = None
    if (polygon_file is None) == (radius is None):
        raise m.fail(
            "delivery_radius_m",
            radius,
            "give exactly one of delivery_radius_m (a list of radii to draw from) "
            "and delivery_polygon (a GeoJSON file)",
        )
    radii: tuple[float, ...] = ()
    if radius is not None:
        radii = m.numbers("delivery_radius_m", positive=True)
    else:
        polygon = _geojson(m, polygon_file, folder)
    merchants = MerchantSpec(
        count=count,
        clusters=clusters,
        cluster_spread_km=spread,
        delivery_radius_m=radii,
        delivery_polygon=polygon,
        prep_minutes=m.numbers("prep_minutes"),
        popularity_sigma=m.number("popularity_sigma", 0.0, lo=0, hi=3),
        radius_within_promise=m.boolean("radius_within_promise", True),
    )
    m.done()
    spots = t.get("hotspots", [])
    if not isinstance(spots, list):
        raise t.fail("hotspots", spots, "must be an array of tables [[city.hotspots]]")
    hotspots = []
    for i, raw in enumerate(spots):
        h = _Table(raw, f"city.hotspots[{i}]")
        hlat, hlng = h.latlng("center")
        hotspots.append(Hotspot(hlat, hlng, h.number("spread_km", above=0), h.number("weight", 1.0, above=0)))
        h.done()
    uniform = t.share("uniform_share", 0.0 if hotspots else 1.0)
    if not hotspots and uniform < 1:
        raise t.fail("uniform_share", uniform, "must be 1 when there are no hotspots")
    t.done()
    return CitySpec(lat, lng, radius_km, merchants, tuple(hotspots), uniform)


def _geojson(m: _Table, value: object, folder: Path | None) -> dict[str, Any]:
    import json

    if not isinstance(value, str):
        raise m.fail("delivery_polygon", value, "must be the path of a GeoJSON file")
    path = (folder / value) if folder is not None else Path(value)
    try:
        geometry = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise m.fail("delivery_polygon", value, f"must be a readable GeoJSON file ({exc})") from exc
    if isinstance(geometry, dict) and geometry.get("type") == "Feature":
        geometry = geometry.get("geometry")
    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise m.fail("delivery_polygon", value, "must hold a GeoJSON Polygon or MultiPolygon")
    return dict(geometry)


def _demand(t: _Table, start_s: int, end_s: int) -> DemandSpec:
    orders = t.count("orders", lo=0)
    profile = t.numbers("hourly_profile", length=24)
    first, last = start_s // 3600, (end_s - 1) // 3600
    if orders and not any(profile[h] > 0 for h in range(first, last + 1)):
        raise t.fail("hourly_profile", list(profile), "must be above 0 in some hour between start and end")
    lead = t.numbers("scheduled_lead_minutes", [20, 90], length=2)
    if lead[0] > lead[1]:
        raise t.fail("scheduled_lead_minutes", list(lead), "must be [min, max] with min <= max")
    spec = DemandSpec(orders, profile, t.share("scheduled_share", 0.0), (lead[0], lead[1]))
    t.done()
    return spec


def _fleet(t: _Table) -> FleetSpec:
    scale = t.number("scale", 1.0, above=0, hi=100)
    vt = t.table("vehicles")
    vehicles = []
    for name in list(vt.data):
        v = vt.table(name)
        vehicles.append(
            VehicleSpec(
                name,
                v.number("speed_kmh", above=0, hi=150),
                v.count("capacity", lo=1, hi=20),
                v.share("share"),
            )
        )
        v.done()
    vt.done()
    if not vehicles or sum(v.share for v in vehicles) <= 0:
        raise t.fail("vehicles", t.data.get("vehicles"), "must name at least one vehicle with a share > 0")
    raw = t.get("shifts")
    if not isinstance(raw, list) or not raw:
        raise t.fail("shifts", raw, "must be a non-empty array of tables [[fleet.shifts]]")
    shifts = []
    for i, item in enumerate(raw):
        s = _Table(item, f"fleet.shifts[{i}]")
        start, end = s.clock("start"), s.clock("end")
        if end <= start:
            raise s.fail("end", s.data["end"], f"must be after the shift's start ({s.data['start']})")
        shifts.append(ShiftSpec(start, end, s.count("couriers", lo=0)))
        s.done()
    t.done()
    return FleetSpec(scale, tuple(vehicles), tuple(shifts))


_CONFIG_FIELDS = {f.name for f in fields(DispatchConfig)} - {"city"}


def _rules(t: _Table) -> RulesSpec:
    promise = t.number("promise_minutes", 30, above=0, hi=240)
    window = t.number("window_minutes", 30, above=0, hi=_MAX_WINDOW_MIN)
    tick = t.count("tick_seconds", 60, lo=1, hi=3600)
    policy = t.text("policy", "optimizing", choices=POLICIES)
    config = t.table("config", {})
    overrides = {}
    for key in list(config.data):
        if key not in _CONFIG_FIELDS:
            raise config.fail(key, config.data[key], "unknown DispatchConfig field")
        overrides[key] = config.get(key)
    if "promise_s" in overrides:
        raise config.fail("promise_s", overrides["promise_s"], "set rules.promise_minutes instead")
    config.done()
    t.done()
    return RulesSpec(promise, window, tick, policy, overrides)


def _uncertainty(t: _Table) -> UncertaintySpec:
    enabled = t.boolean("enabled", True)
    cancel_after = t.numbers("cancel_after_minutes", [5, 25], length=2)
    if cancel_after[0] > cancel_after[1]:
        raise t.fail("cancel_after_minutes", list(cancel_after), "must be [min, max] with min <= max")
    spec = UncertaintySpec(
        enabled=enabled,
        prep_median=t.number("prep_median", 1.0, above=0, hi=10),
        prep_bias_sigma=t.number("prep_bias_sigma", 0.0, lo=0, hi=3),
        prep_noise_sigma=t.number("prep_noise_sigma", 0.0, lo=0, hi=3),
        ride_sigma=t.number("ride_sigma", 0.0, lo=0, hi=3),
        ride_hour_factor=t.numbers("ride_hour_factor", [1.0] * 24, length=24, positive=True),
        decline_probability=t.number("decline_probability", 0.0, lo=0, hi=0.95),
        cancel_probability=t.share("cancel_probability", 0.0),
        cancel_after_minutes=(cancel_after[0], cancel_after[1]),
        late_start_probability=t.share("late_start_probability", 0.0),
        late_start_mean_minutes=t.number("late_start_mean_minutes", 0.0, lo=0, hi=600),
        no_show_probability=t.share("no_show_probability", 0.0),
    )
    t.done()
    return spec


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    def copy(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: copy(x) for k, x in v.items()}
        if isinstance(v, list):
            return [copy(x) for x in v]
        return v

    return {k: copy(v) for k, v in data.items()}


def _leaves() -> frozenset[str]:
    """Every settable key of the format (arrays of tables are set whole)."""
    return frozenset(
        {
            "name",
            "description",
            "start",
            "end",
            "city.center",
            "city.radius_km",
            "city.uniform_share",
            "city.hotspots",
            "city.merchants.count",
            "city.merchants.clusters",
            "city.merchants.cluster_spread_km",
            "city.merchants.delivery_radius_m",
            "city.merchants.delivery_polygon",
            "city.merchants.prep_minutes",
            "city.merchants.popularity_sigma",
            "city.merchants.radius_within_promise",
            "demand.orders",
            "demand.hourly_profile",
            "demand.scheduled_share",
            "demand.scheduled_lead_minutes",
            "fleet.scale",
            "fleet.shifts",
            "rules.promise_minutes",
            "rules.window_minutes",
            "rules.tick_seconds",
            "rules.policy",
            *(f"uncertainty.{f.name}" for f in fields(UncertaintySpec)),
        }
    )


_LEAVES = _leaves()
