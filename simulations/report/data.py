"""What the report reads: the four files a run writes, as columns per variant.

``kpis.json``, ``orders.csv``, ``couriers.csv`` and ``timeline.csv`` (their columns are
documented in the README, "Simulating a city day"); any file missing, malformed or short of a
column is an :class:`~dispatch.errors.InvalidInput` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import InvalidInput

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


_PALETTE = ("#1f77b4", "#e6550d", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf")
_STATUS_COLOURS = {"idle": "#9ecae1", "busy": "#3182bd", "waiting": "#fd8d3c"}
_STATUS_LABELS = {"idle": "idle", "busy": "busy", "waiting": "waiting at a merchant"}
_MAP_CELLS_MAX = 900
_SLOT_H = 0.25  # timeline.csv has a row per 15 minutes
#: a cell's mean or share is drawn from this many delivered orders on (fewer say little)
_MIN_ORDERS_FOR_MEAN = 3


class _Table:
    """A CSV file as columns, one row per line; numbers are read on demand, empty = NaN."""

    def __init__(self, path: Path, required: Iterable[str]) -> None:
        if not path.is_file():
            raise InvalidInput(f"{path}: file is missing", field=path.name)
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise InvalidInput(f"{path}: file is empty (a header line is expected)", field=path.name)
            rows = [r for r in reader if r]
        self.path = path
        self.header = header
        missing = [c for c in required if c not in header]
        if missing:
            raise InvalidInput(f"{path}: missing column(s) {', '.join(missing)}", field=missing[0])
        for n, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise InvalidInput(
                    f"{path}:{n}: expected {len(header)} columns, got {len(row)}", field=path.name
                )
        self._columns = {name: [r[i] for r in rows] for i, name in enumerate(header)}
        self._lines = list(range(2, len(rows) + 2))  # each row's line in the file, for errors
        self.length = len(rows)

    def text(self, name: str) -> list[str]:
        return self._columns[name]

    def num(self, name: str) -> FloatArray:
        out = np.full(self.length, np.nan)
        for i, value in enumerate(self._columns[name]):
            if value.strip():
                try:
                    out[i] = float(value)
                except ValueError:
                    raise InvalidInput(
                        f"{self.path}:{self._lines[i]}: {name} {value!r} is not a number", field=name
                    ) from None
        return out

    def where(self, column: str, value: str) -> _Table:
        """The rows whose ``column`` equals ``value``, as a table of their own."""
        keep = [i for i, v in enumerate(self._columns[column]) if v == value]
        sub = object.__new__(_Table)
        sub.path, sub.header, sub.length = self.path, self.header, len(keep)
        sub._columns = {name: [values[i] for i in keep] for name, values in self._columns.items()}
        sub._lines = [self._lines[i] for i in keep]
        return sub


@dataclass(frozen=True)
class _Variant:
    name: str
    params: dict[str, Any]
    kpis: dict[str, float]
    colour: str
    orders: _Table
    couriers: _Table
    timeline: _Table


@dataclass(frozen=True)
class _Run:
    meta: dict[str, Any]
    planar: bool
    variants: list[_Variant]


_ORDER_COLUMNS = [
    "variant",
    "order_id",
    "merchant_id",
    "status",
    "refusal_code",
    "placed_at",
    "window_end",
    "picked_up_at",
    "delivered_at",
    "pickup_eta_at_assignment",
    "dropoff_eta_at_placement",
    "click_to_door_s",
    "on_time",
]
_COURIER_COLUMNS = ["variant", "courier_id", "idle_s", "busy_s", "waiting_at_merchant_s"]
_TIMELINE_COLUMNS = [
    "variant",
    "t",
    "orders_placed",
    "open_orders",
    "couriers_idle",
    "couriers_busy",
    "couriers_waiting",
]


def _read(out_dir: Path) -> _Run:
    path = out_dir / "kpis.json"
    if not path.is_file():
        raise InvalidInput(f"{path}: file is missing", field="kpis.json")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{path}: not JSON: {exc}", field="kpis.json") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("meta"), dict):
        raise InvalidInput(f"{path}: expected an object with 'meta' and 'variants'", field="meta")
    meta: dict[str, Any] = doc["meta"]
    variants = doc.get("variants")
    if not isinstance(variants, list) or not variants:
        raise InvalidInput(f"{path}: 'variants' must be a non-empty list", field="variants")
    coordinates = meta.get("coordinates", "latlng")
    if coordinates not in ("latlng", "planar_m"):
        raise InvalidInput(
            f"{path}: meta.coordinates is {coordinates!r}; allowed: 'latlng', 'planar_m'", field="coordinates"
        )
    planar = coordinates == "planar_m"
    city = meta.get("city")
    key = "bbox_m" if planar else "radius_m"
    if not isinstance(city, dict) or key not in city or (not planar and "center" not in city):
        needs = "city.bbox_m" if planar else "city.center and city.radius_m"
        raise InvalidInput(f"{path}: meta needs {needs}", field="city")
    xy = ("x", "y") if planar else ("lat", "lng")
    orders = _Table(
        out_dir / "orders.csv", [*_ORDER_COLUMNS, *(f"{w}_{a}" for w in ("merchant", "dropoff") for a in xy)]
    )
    couriers = _Table(out_dir / "couriers.csv", [*_COURIER_COLUMNS, *(f"start_{a}" for a in xy)])
    timeline = _Table(out_dir / "timeline.csv", _TIMELINE_COLUMNS)
    runs = []
    for i, v in enumerate(variants):
        if (
            not isinstance(v, dict)
            or not isinstance(v.get("name"), str)
            or not isinstance(v.get("kpis"), dict)
        ):
            raise InvalidInput(f"{path}: variant {i + 1} needs a 'name' and 'kpis'", field="variants")
        name = v["name"]
        runs.append(
            _Variant(
                name,
                dict(v.get("params") or {}),
                dict(v["kpis"]),
                _PALETTE[i % len(_PALETTE)],
                orders.where("variant", name),
                couriers.where("variant", name),
                timeline.where("variant", name),
            )
        )
    return _Run(meta, planar, runs)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "variant"
