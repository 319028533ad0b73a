"""The Grubhub Meal Delivery Routing Problem (MDRP) instances: read, replay, write, check.

Reading is the one place where the instances' minutes and planar metres meet the engine:
times become seconds and points become :class:`Location`s with planar coordinates, once.
The replay drives the real :class:`Dispatcher` through the :class:`World`; the solution
files are written in Grubhub's evaluator format and checked by :func:`check_solution`, an
independent implementation of every rule the evaluator checks.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch.config import DispatchConfig
from dispatch.engine import Dispatcher
from dispatch.errors import InvalidInput
from dispatch.geo import PlanarTravel, planar_to_location
from dispatch.matching import DispatchPolicy
from dispatch.models import DeliveryArea, Merchant
from simulations.city import CityPlan, CourierShift, OrderRequest
from simulations.world import ReplayReport, World

__all__ = [
    "MdrpInstance",
    "MdrpParams",
    "check_solution",
    "compute_kpis",
    "read_instance",
    "replay",
    "write_solution",
]

#: MDRP couriers carry any number of orders of one bundle; the engine needs a number.
_COURIER_CAPACITY = 10
#: MDRP has no delivery radius: every order of the instance is inside the "area".
_NO_AREA_LIMIT_M = 1_000_000.0


@dataclass(frozen=True, slots=True)
class MdrpParams:
    metres_per_minute: int
    pickup_service_min: int
    dropoff_service_min: int
    target_click_to_door_min: int
    max_click_to_door_min: int
    pay_per_order: float
    guaranteed_pay_per_hour: float


@dataclass(frozen=True, slots=True)
class MdrpOrder:
    id: str
    x: float
    y: float
    placement_min: int
    restaurant: str
    ready_min: int


@dataclass(frozen=True, slots=True)
class MdrpCourier:
    id: str
    x: float
    y: float
    on_min: int
    off_min: int


@dataclass(frozen=True, slots=True)
class MdrpInstance:
    name: str
    params: MdrpParams
    restaurants: dict[str, tuple[float, float]]
    orders: tuple[MdrpOrder, ...]
    couriers: tuple[MdrpCourier, ...]
    dropoffs: dict[str, tuple[float, float]]

    def travel_min(self, a: tuple[float, float], b: tuple[float, float]) -> int:
        """The instances' own formula: ceil(Euclidean metres / metres per minute)."""
        return math.ceil(math.sqrt((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) / self.params.metres_per_minute)

    def point(self, node: str) -> tuple[float, float]:
        """Coordinates of a restaurant or an order's drop-off, by id."""
        return self.restaurants[node] if node in self.restaurants else self.dropoffs[node]


# -- reading -----------------------------------------------------------------------------------


def _rows(path: Path, columns: int) -> list[list[str]]:
    if not path.is_file():
        raise InvalidInput(f"{path}: file is missing", field=path.name)
    with path.open(newline="") as fh:
        rows = [r for r in csv.reader(fh, delimiter="\t") if r and any(c.strip() for c in r)]
    if not rows:
        raise InvalidInput(f"{path}: file is empty (a header line is expected)", field=path.name)
    body = rows[1:]
    for n, row in enumerate(body, start=2):
        if len(row) < columns:
            raise InvalidInput(f"{path}:{n}: expected {columns} columns, got {len(row)}", field=path.name)
    return body


def _num(value: str, path: Path, line: int, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise InvalidInput(f"{path}:{line}: {what} {value!r} is not a number", field=what) from None
    if not math.isfinite(number):
        raise InvalidInput(f"{path}:{line}: {what} {value!r} is not finite", field=what)
    return number


def _int(value: str, path: Path, line: int, what: str) -> int:
    number = _num(value, path, line, what)
    if number != int(number):
        raise InvalidInput(f"{path}:{line}: {what} {value!r} is not a whole number", field=what)
    return int(number)


def read_instance(directory: str | Path) -> MdrpInstance:
    """Read one instance directory; bad files raise :class:`InvalidInput` naming file and line."""
    root = Path(directory)
    if not root.is_dir():
        raise InvalidInput(f"{root}: not an instance directory", field="instance")
    p = root / "instance_parameters.txt"
    values = _rows(p, 7)
    if len(values) != 1:
        raise InvalidInput(f"{p}: expected one line of parameters, got {len(values)}", field=p.name)
    v = values[0]
    params = MdrpParams(
        metres_per_minute=_int(v[0], p, 2, "meters_per_minute"),
        pickup_service_min=_int(v[1], p, 2, "pickup service minutes"),
        dropoff_service_min=_int(v[2], p, 2, "dropoff service minutes"),
        target_click_to_door_min=_int(v[3], p, 2, "target click-to-door"),
        max_click_to_door_min=_int(v[4], p, 2, "maximum click-to-door"),
        pay_per_order=_num(v[5], p, 2, "pay per order"),
        guaranteed_pay_per_hour=_num(v[6], p, 2, "guaranteed pay per hour"),
    )
    if params.metres_per_minute <= 0:
        raise InvalidInput(f"{p}:2: meters_per_minute must be positive", field="meters_per_minute")
    p = root / "restaurants.txt"
    restaurants: dict[str, tuple[float, float]] = {}
    for n, r in enumerate(_rows(p, 3), start=2):
        if r[0] in restaurants:
            raise InvalidInput(f"{p}:{n}: restaurant {r[0]!r} appears twice", field="restaurant")
        restaurants[r[0]] = (_num(r[1], p, n, "x"), _num(r[2], p, n, "y"))
    p = root / "orders.txt"
    orders = []
    seen: set[str] = set()
    for n, r in enumerate(_rows(p, 6), start=2):
        if r[0] in seen:
            raise InvalidInput(f"{p}:{n}: order {r[0]!r} appears twice", field="order")
        if r[4] not in restaurants:
            raise InvalidInput(
                f"{p}:{n}: order {r[0]!r} names unknown restaurant {r[4]!r}", field="restaurant"
            )
        seen.add(r[0])
        order = MdrpOrder(
            r[0], _num(r[1], p, n, "x"), _num(r[2], p, n, "y"), _int(r[3], p, n, "placement_time"), r[4],
            _int(r[5], p, n, "ready_time"),
        )  # fmt: skip
        if order.ready_min < order.placement_min:
            raise InvalidInput(f"{p}:{n}: order {r[0]!r} is ready before it is placed", field="ready_time")
        orders.append(order)
    p = root / "couriers.txt"
    couriers = []
    for n, r in enumerate(_rows(p, 5), start=2):
        courier = MdrpCourier(
            r[0],
            _num(r[1], p, n, "x"),
            _num(r[2], p, n, "y"),
            _int(r[3], p, n, "on_time"),
            _int(r[4], p, n, "off_time"),
        )
        if courier.off_min <= courier.on_min:
            raise InvalidInput(
                f"{p}:{n}: courier {r[0]!r} goes off shift before it comes on", field="off_time"
            )
        couriers.append(courier)
    dropoffs = {o.id: (o.x, o.y) for o in orders}
    return MdrpInstance(root.name, params, restaurants, tuple(orders), tuple(couriers), dropoffs)


# -- replay ------------------------------------------------------------------------------------


def city_of(instance: MdrpInstance) -> tuple[CityPlan, DispatchConfig]:
    """The instance as a city for the World, and the city's rules for the Dispatcher.

    The rules come from the instance's own parameters (service times, speed, the maximum
    click-to-door as the promise); every tuning knob keeps the engine's one default.
    """
    p = instance.params
    speed_mps = p.metres_per_minute / 60.0
    merchants = tuple(
        Merchant(rid, planar_to_location(x, y), DeliveryArea(radius_m=_NO_AREA_LIMIT_M), prep_s=0)
        for rid, (x, y) in instance.restaurants.items()
    )
    shifts = tuple(
        CourierShift(
            c.id, planar_to_location(c.x, c.y), c.on_min * 60, c.off_min * 60, speed_mps, _COURIER_CAPACITY
        )
        for c in instance.couriers
    )
    requests = tuple(
        OrderRequest(
            o.id, o.restaurant, planar_to_location(o.x, o.y), o.placement_min * 60, ready_at=o.ready_min * 60
        )
        for o in sorted(instance.orders, key=lambda o: (o.placement_min, o.id))
    )
    centre = merchants[0].location if merchants else planar_to_location(0, 0)
    config = DispatchConfig(
        city=instance.name.replace("{", "").replace("}", "") or "mdrp",
        pickup_service_s=p.pickup_service_min * 60,
        dropoff_service_s=p.dropoff_service_min * 60,
        promise_s=p.max_click_to_door_min * 60,
        reference_speed_mps=speed_mps,
        refuse_infeasible_promises=False,  # Grubhub accepted these orders: all are to be served
    )
    return CityPlan(instance.name, centre, merchants, shifts, requests), config


def replay(instance: MdrpInstance, policy: DispatchPolicy | None = None, *, tick_s: int = 60) -> ReplayReport:
    """Replay one instance through the real Dispatcher with the planar travel model."""
    if tick_s % 60:
        raise InvalidInput(
            "MDRP solutions are in whole minutes: tick_s must be a multiple of 60", field="tick_s"
        )
    plan, config = city_of(instance)
    dispatcher = Dispatcher(config=config, travel=PlanarTravel(), policy=policy)
    return World(dispatcher, plan, tick_s=tick_s).run()


# -- solution files ----------------------------------------------------------------------------


def _minutes(seconds: int) -> int:
    if seconds % 60:
        raise ValueError(f"time {seconds} s is not a whole minute")
    return seconds // 60


#: The header line of each solution file, as the shared README and Grubhub's evaluator give them.
SOLUTION_HEADERS = {
    "solution_info_assignments.txt": "assignment_time pickup_time courier orders",
    "solution_info_orders.txt": "order placement_time ready_time pickup_time dropoff_time courier",
    "solution_info_couriers.txt": "courier departure_time origin destination",
}


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    # Exactly one space between fields: Grubhub's evaluator reads the orders file with
    # pandas.read_table(sep=' '), for which a tab or a second space is another column.
    header = SOLUTION_HEADERS[path.name]
    path.write_text("\n".join([header, *(" ".join(row) for row in rows)]) + "\n")


def write_solution(directory: str | Path, report: ReplayReport) -> None:
    """Write the three solution files in the format Grubhub's evaluator reads.

    Fields are separated by exactly one space, lines end in ``\\n``, times are whole
    minutes, and each file starts with its header line (:data:`SOLUTION_HEADERS`).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[list[str]] = []
    for log in report.pickups:
        orders = [o for o in log.order_ids if report.delivered.get(o, ("",))[0] == log.courier_id]
        if log.pickup_at is None or not orders:
            continue  # handed back before pickup (shift end): not an instruction carried out
        rows.append([str(_minutes(log.assigned_at)), str(_minutes(log.pickup_at)), log.courier_id, *orders])
    _write_rows(out / "solution_info_assignments.txt", rows)
    rows = []
    for oid in sorted(report.delivered, key=lambda o: (report.delivered[o][1], o)):
        courier, placed, ready, picked, dropped = report.delivered[oid]
        rows.append([oid, *(str(_minutes(t)) for t in (placed, ready, picked, dropped)), courier])
    _write_rows(out / "solution_info_orders.txt", rows)
    by_courier: dict[str, list[list[str]]] = {}
    for move in report.moves:
        by_courier.setdefault(move.courier_id, []).append(
            [move.courier_id, str(_minutes(move.depart_at)), move.origin, move.destination]
        )
    _write_rows(out / "solution_info_couriers.txt", [r for c in sorted(by_courier) for r in by_courier[c]])


@dataclass(frozen=True, slots=True)
class Solution:
    assignments: tuple[tuple[int, int, str, tuple[str, ...]], ...]
    orders: dict[str, tuple[int, int, int, int, str]]  # id -> placement, ready, pickup, dropoff, courier
    moves: dict[str, list[tuple[int, str, str]]]  # courier -> [(departure, origin, destination)]


_SOLUTION_FIELDS = {  # file -> (fields per line, at least or exactly)
    "solution_info_assignments.txt": (4, "at least"),
    "solution_info_orders.txt": (6, "exactly"),
    "solution_info_couriers.txt": (4, "exactly"),
}


def _solution_rows(path: Path) -> list[list[str]]:
    """The data lines of one solution file, each checked as Grubhub's evaluator will read it.

    The evaluator reads the orders file with ``pandas.read_table(path, sep=' ')`` (a tab, two
    spaces or a space at either end of a line make other columns) and skips the first line of
    the assignments file as its header; so a file that would be misread is refused here, with
    the file and line named, rather than checked with a more forgiving reader than theirs.
    """
    if not path.is_file():
        raise InvalidInput(f"{path}: file is missing", field=path.name)
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not ASCII text (byte {exc.start})", field=path.name) from None
    if text and not text.endswith("\n"):
        raise InvalidInput(f"{path}: the last line does not end with a newline", field=path.name)
    lines = text.split("\n")[:-1] if text else []
    header = SOLUTION_HEADERS[path.name]
    if not lines or lines[0] != header:
        got = repr(lines[0]) if lines else "an empty file"
        raise InvalidInput(f"{path}:1: the header must be {header!r}, got {got}", field=path.name)
    count, how = _SOLUTION_FIELDS[path.name]
    rows: list[list[str]] = []
    for number, line in enumerate(lines[1:], start=2):
        where = f"{path}:{number}"
        for bad, name in (("\r", "a carriage return (\\r\\n line ends)"), ("\t", "a tab")):
            if bad in line:
                raise InvalidInput(
                    f"{where}: {name}; fields must be separated by exactly one space", field=path.name
                )
        if not line.strip():
            raise InvalidInput(f"{where}: an empty line", field=path.name)
        if line != line.strip(" ") or "  " in line:
            raise InvalidInput(
                f"{where}: fields must be separated by exactly one space, with none at either end",
                field=path.name,
            )
        fields = line.split(" ")
        if len(fields) < count or (how == "exactly" and len(fields) > count):
            raise InvalidInput(
                f"{where}: {len(fields)} fields, {how} {count} expected ({header})", field=path.name
            )
        rows.append(fields)
    return rows


def _minute_field(value: str, path: Path, line: int) -> int:
    if not value.isdigit():
        raise InvalidInput(f"{path}:{line}: time {value!r} is not a whole number of minutes", field=path.name)
    return int(value)


def read_solution(directory: str | Path) -> Solution:
    """Read the three solution files, refusing any that Grubhub's evaluator would misread."""
    root = Path(directory)

    def rows(name: str, times: slice) -> list[tuple[list[str], list[int]]]:
        path = root / name
        return [
            (r, [_minute_field(v, path, n) for v in r[times]])
            for n, r in enumerate(_solution_rows(path), start=2)
        ]

    assignments = tuple(
        (t[0], t[1], r[2], tuple(r[3:])) for r, t in rows("solution_info_assignments.txt", slice(0, 2))
    )
    orders = {r[0]: (t[0], t[1], t[2], t[3], r[5]) for r, t in rows("solution_info_orders.txt", slice(1, 5))}
    moves: dict[str, list[tuple[int, str, str]]] = {}
    for r, t in rows("solution_info_couriers.txt", slice(1, 2)):
        moves.setdefault(r[0], []).append((t[0], r[2], r[3]))
    return Solution(assignments, orders, moves)


# -- the checker -------------------------------------------------------------------------------


def check_solution(instance: MdrpInstance, solution: Solution) -> list[str]:
    """Every violation of the MDRP rules in ``solution``; an empty list means feasible.

    Rebuilds each courier's timeline from its moves (arrival = departure + travel time by
    the instance's formula) and checks what Grubhub's evaluator checks.
    """
    p = instance.params
    errors: list[str] = []
    orders = {o.id: o for o in instance.orders}
    couriers = {c.id: c for c in instance.couriers}
    # each courier's visits: (node, arrival, departure from it or None if it stays)
    visits: dict[str, list[tuple[str, int, int | None]]] = {}
    for cid, moves in solution.moves.items():
        courier = couriers.get(cid)
        if courier is None:
            errors.append(f"moves of unknown courier {cid}")
            continue
        here, ready_to_leave = "0", courier.on_min
        timeline: list[tuple[str, int, int | None]] = []
        for n, (depart, origin, destination) in enumerate(moves):
            if origin != here:
                errors.append(f"courier {cid} move {n + 1} leaves {origin} but is at {here}")
            if depart < ready_to_leave:
                errors.append(
                    f"courier {cid} move {n + 1} departs at {depart}, before it can ({ready_to_leave})"
                )
            if destination not in instance.restaurants and destination not in orders:
                errors.append(f"courier {cid} move {n + 1} goes to unknown place {destination}")
                break
            start = (courier.x, courier.y) if origin == "0" else instance.point(origin)
            arrival = depart + instance.travel_min(start, instance.point(destination))
            if timeline:
                node, arrived, _ = timeline[-1]
                timeline[-1] = (node, arrived, depart)
            timeline.append((destination, arrival, None))
            here, ready_to_leave = destination, arrival
        visits[cid] = timeline

    def present(cid: str, node: str, at: int, stays_min: float) -> bool:
        """At ``node`` strictly after arriving, and not leaving before ``stays_min`` more."""
        return any(
            v == node and arrived < at and (left is None or at + stays_min <= left)
            for v, arrived, left in visits.get(cid, [])
        )

    assigned: dict[str, str] = {}
    for n, (assigned_at, pickup, cid, bundle) in enumerate(solution.assignments, start=1):
        courier = couriers.get(cid)
        if courier is None:
            errors.append(f"assignment {n}: unknown courier {cid}")
            continue
        if not bundle:
            errors.append(f"assignment {n}: no orders")
            continue
        restaurants = set()
        for oid in bundle:
            order = orders.get(oid)
            if order is None:
                errors.append(f"assignment {n}: unknown order {oid}")
                continue
            if oid in assigned:
                errors.append(f"order {oid} is in more than one assignment")
            assigned[oid] = cid
            restaurants.add(order.restaurant)
            if assigned_at < order.placement_min:
                errors.append(
                    f"order {oid} assigned at {assigned_at}, before it was placed ({order.placement_min})"
                )
            if pickup < order.ready_min:
                errors.append(f"order {oid} picked up at {pickup}, before it was ready ({order.ready_min})")
        if len(restaurants) != 1:
            errors.append(f"assignment {n}: orders of {len(restaurants)} restaurants in one bundle")
            continue
        if pickup > courier.off_min:
            errors.append(
                f"assignment {n}: pickup at {pickup} after courier {cid} goes off at {courier.off_min}"
            )
        if pickup < assigned_at:
            errors.append(f"assignment {n}: pickup at {pickup} before the assignment at {assigned_at}")
        restaurant = next(iter(restaurants))
        if not present(cid, restaurant, pickup, p.pickup_service_min / 2):
            errors.append(
                f"assignment {n}: courier {cid} is not at {restaurant} at pickup time {pickup} "
                f"(for half a service after it)"
            )
        previous_drop = None
        for oid in bundle:
            record = solution.orders.get(oid)
            if record is None:
                errors.append(f"order {oid} is assigned but has no line in the orders file")
                continue
            _, _, picked, dropped, by = record
            if by != cid or picked != pickup:
                errors.append(
                    f"order {oid}: orders file says courier {by} pickup {picked}, "
                    f"assignment says {cid} {pickup}"
                )
            if not present(cid, oid, dropped, p.dropoff_service_min / 2):
                errors.append(
                    f"order {oid}: courier {cid} is not at the customer at drop-off time {dropped} "
                    f"(for half a service after it)"
                )
            if dropped <= pickup:
                errors.append(f"order {oid}: dropped off at {dropped}, not after pickup at {pickup}")
            if previous_drop is not None and dropped < previous_drop + p.dropoff_service_min:
                errors.append(
                    f"order {oid}: drop-off at {dropped} less than a service time after the previous one"
                )
            previous_drop = dropped
    for oid, (placed, ready, _, _, _) in solution.orders.items():
        order = orders.get(oid)
        if order is None:
            errors.append(f"orders file names unknown order {oid}")
            continue
        if oid not in assigned:
            errors.append(f"order {oid} is in the orders file but in no assignment")
        if (placed, ready) != (order.placement_min, order.ready_min):
            errors.append(f"order {oid}: placement/ready {placed}/{ready} differ from the instance")
    return errors


# -- KPIs --------------------------------------------------------------------------------------


def _pct(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def compute_kpis(
    instance: MdrpInstance, solution: Solution, report: ReplayReport | None = None
) -> dict[str, Any]:
    """The papers' metrics for one solution (minutes and dollars), plus the dispatcher's own."""
    p = instance.params
    delivered = solution.orders
    n = len(instance.orders)
    c2d = [d - pl for pl, _, _, d, _ in delivered.values()]
    per_courier_orders: dict[str, int] = {}
    for *_, cid in delivered.values():
        per_courier_orders[cid] = per_courier_orders.get(cid, 0) + 1
    pay_total = 0.0
    guaranteed = 0
    busy_min = 0.0
    utilisation = []
    pickups_by_courier: dict[str, int] = {}
    for _, _, cid, _ in solution.assignments:
        pickups_by_courier[cid] = pickups_by_courier.get(cid, 0) + 1
    for c in instance.couriers:
        hours = (c.off_min - c.on_min) / 60
        by_orders = p.pay_per_order * per_courier_orders.get(c.id, 0)
        by_hours = p.guaranteed_pay_per_hour * hours
        pay_total += max(by_orders, by_hours)
        guaranteed += by_hours > by_orders
        driving = 0
        here = (c.x, c.y)
        for _, _, destination in solution.moves.get(c.id, []):
            there = instance.point(destination)
            driving += instance.travel_min(here, there)
            here = there
        busy = (
            driving
            + p.pickup_service_min * pickups_by_courier.get(c.id, 0)
            + p.dropoff_service_min * per_courier_orders.get(c.id, 0)
        )
        busy_min += busy
        utilisation.append(busy / (c.off_min - c.on_min))
    kpis: dict[str, Any] = {
        "instance": instance.name,
        "orders": n,
        "orders_delivered": len(delivered),
        "undelivered_pct": round(100 * (n - len(delivered)) / n, 3) if n else 0.0,
        "click_to_door_mean": round(statistics.fmean(c2d), 3) if c2d else 0.0,
        "click_to_door_p90": _pct(c2d, 0.9),
        "click_to_door_overage_mean": round(
            statistics.fmean(max(0, v - p.target_click_to_door_min) for v in c2d), 3
        )
        if c2d
        else 0.0,
        "ready_to_pickup_mean": round(statistics.fmean(pk - r for _, r, pk, _, _ in delivered.values()), 3)
        if delivered
        else 0.0,
        "ready_to_door_mean": round(statistics.fmean(d - r for _, r, _, d, _ in delivered.values()), 3)
        if delivered
        else 0.0,
        "courier_utilization": round(statistics.fmean(utilisation), 3) if utilisation else 0.0,
        "cost_per_order": round(pay_total / len(delivered), 3) if delivered else 0.0,
        "couriers_paid_guarantee_share": round(guaranteed / len(instance.couriers), 3)
        if instance.couriers
        else 0.0,
        "orders_per_bundle": round(len(delivered) / len(solution.assignments), 3)
        if solution.assignments
        else 0.0,
    }
    if report is not None:
        ticks = report.tick_seconds
        errs = [
            abs(report.delivered[o][3] - t) / 60
            for o, t in report.promised_pickup.items()
            if o in report.delivered
        ]
        kpis.update(
            {
                "decision_s_mean": round(statistics.fmean(ticks), 4) if ticks else 0.0,
                "decision_s_p99": round(_pct(ticks, 0.99), 4),
                "decision_s_max": round(max(ticks), 4) if ticks else 0.0,
                "pickup_eta_abs_error_mean": round(statistics.fmean(errs), 3) if errs else 0.0,
                "pickup_eta_abs_error_p90": round(_pct(errs, 0.9), 3),
            }
        )
    return kpis
