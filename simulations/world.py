"""A discrete-event world that drives a :class:`~dispatch.Dispatcher` like a real city would.

Customers place orders at their times; couriers start and end shifts, ride their planned
routes and report arrivals, pickups and deliveries at the moment they happen (travel in
this world follows the dispatcher's travel model). The dispatcher ticks on a fixed
interval and sees nothing before it happens. Everything the couriers do is logged in a
:class:`ReplayReport`, from which KPIs and solution files are derived.
"""

from __future__ import annotations

import heapq
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dispatch.engine import Dispatcher
from dispatch.errors import DispatchError, Refused
from dispatch.models import Assignment, OrderStatus, StopKind
from simulations.city import CityPlan

__all__ = ["Move", "PickupLog", "Refusal", "ReplayReport", "World"]


@dataclass(frozen=True, slots=True)
class Refusal:
    order_id: str
    at: int
    reason: str
    code: str


@dataclass(frozen=True, slots=True)
class Move:
    """A courier leaving ``origin`` at ``depart_at`` for ``destination`` (ids; "0" = its start)."""

    courier_id: str
    depart_at: int
    origin: str
    destination: str
    travel_s: int


@dataclass(slots=True)
class PickupLog:
    """One pickup-and-deliver instruction as carried out: orders in drop-off sequence."""

    courier_id: str
    assigned_at: int
    merchant_id: str
    order_ids: list[str]
    pickup_at: int | None = None


@dataclass(slots=True)
class ReplayReport:
    placed: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    assignments: list[tuple[int, Assignment]] = field(default_factory=list)
    #: pickup time a restaurant was told at assignment, per order
    promised_pickup: dict[str, int] = field(default_factory=dict)
    #: order id -> (courier, placed_at, ready_at, picked_up_at, delivered_at)
    delivered: dict[str, tuple[str, int, int, int, int]] = field(default_factory=dict)
    deadlines: dict[str, int] = field(default_factory=dict)
    undelivered: list[str] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    pickups: list[PickupLog] = field(default_factory=list)
    #: wall-clock seconds of every tick (the dispatcher's decision time)
    tick_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        c2d = [d[4] - d[1] for d in self.delivered.values()]
        on_time = [self.delivered[o][4] <= self.deadlines[o] for o in self.delivered]
        eta_err = [
            abs(self.delivered[o][3] - p) for o, p in self.promised_pickup.items() if o in self.delivered
        ]
        food_wait = [d[3] - d[2] for d in self.delivered.values()]
        return {
            "orders_requested": self.placed + len(self.refusals),
            "orders_accepted": self.placed,
            "orders_refused": len(self.refusals),
            "orders_delivered": len(self.delivered),
            "orders_undelivered": len(self.undelivered),
            "click_to_door_mean_min": round(statistics.fmean(c2d) / 60, 2) if c2d else 0.0,
            "on_time_share": round(sum(on_time) / len(on_time), 3) if on_time else 0.0,
            "ready_to_pickup_mean_min": round(statistics.fmean(food_wait) / 60, 2) if food_wait else 0.0,
            "pickup_eta_abs_error_mean_min": round(statistics.fmean(eta_err) / 60, 2) if eta_err else 0.0,
        }


class World:
    """Plays ``plan`` through ``dispatcher``, ticking every ``tick_s`` seconds."""

    def __init__(self, dispatcher: Dispatcher, plan: CityPlan, *, tick_s: int = 60) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be positive")
        self.dispatcher = dispatcher
        self.plan = plan
        self.tick_s = tick_s
        # courier id -> (node id it is at, "0" before its first move)
        self._at_node: dict[str, str] = {}
        self._due: list[tuple[int, str]] = []
        self._open_pickups: dict[tuple[str, str], PickupLog] = {}

    def run(self, on_tick: Callable[[int, list[Assignment]], None] | None = None) -> ReplayReport:
        """Play the whole day; ``on_tick`` sees each tick's decisions (repositions have no orders)."""
        d = self.dispatcher
        report = ReplayReport()
        for merchant in self.plan.merchants:
            d.add_merchant(merchant, now=0)
        # (time, priority, index): shifts start first, then orders, then shifts end
        agenda: list[tuple[int, int, int]] = []
        shifts = list(self.plan.shifts)
        requests = list(self.plan.requests)
        for i, shift in enumerate(shifts):
            agenda.append((shift.on_at, 0, i))
            agenda.append((shift.off_at, 2, i))
        for i, req in enumerate(requests):
            agenda.append((req.placed_at, 1, i))
        heapq.heapify(agenda)
        last = max((t for t, *_ in agenda), default=0)
        first = min((t for t, *_ in agenda), default=0)
        now = first - first % self.tick_s
        while True:
            while agenda and agenda[0][0] <= now:
                at, priority, i = heapq.heappop(agenda)
                self._play_couriers(report, until=at)
                if priority == 0:
                    shift = shifts[i]
                    d.start_shift(
                        shift.courier_id,
                        shift.start,
                        now=at,
                        shift_end=shift.off_at,
                        speed_mps=shift.speed_mps,
                        capacity=shift.capacity,
                    )
                    self._at_node[shift.courier_id] = "0"
                elif priority == 2:
                    if d.courier(shifts[i].courier_id).on_shift:
                        d.end_shift(shifts[i].courier_id, now=at)
                        self._schedule(shifts[i].courier_id)
                else:
                    item = requests[i]
                    try:
                        order = d.place_order(
                            item.order_id,
                            item.merchant_id,
                            item.dropoff,
                            now=at,
                            window=item.window,
                            ready_at=item.ready_at,
                        )
                    except Refused as exc:
                        report.refusals.append(Refusal(item.order_id, at, str(exc), exc.code))
                    else:
                        report.placed += 1
                        report.deadlines[order.id] = order.window.end
            self._play_couriers(report, until=now)
            started = time.perf_counter()
            result = d.tick(now)
            report.tick_seconds.append(time.perf_counter() - started)
            for a in result.assignments:
                self._record_assignment(report, now, a)
                self._schedule(a.courier_id)
            for a in result.repositions:
                self._schedule(a.courier_id)
            if on_tick is not None:
                on_tick(now, [*result.assignments, *result.repositions])
            if now >= last and not self._busy():
                break
            if now > last + 6 * 3600:  # a safety net: nothing in a city day takes this long
                break
            now += self.tick_s
        for oid in report.deadlines:
            if d.order(oid).status is not OrderStatus.DELIVERED:
                report.undelivered.append(oid)
        return report

    # -- internals ---------------------------------------------------------------------------

    def _record_assignment(self, report: ReplayReport, now: int, a: Assignment) -> None:
        report.assignments.append((now, a))
        new = set(a.order_ids)
        touched: list[PickupLog] = []
        for stop in a.route.stops:
            ids = [o for o in stop.order_ids if o in new]
            if stop.kind is not StopKind.PICKUP or not ids:
                continue
            held = [o for o in stop.order_ids if o not in new]
            if held:
                # an assignment update: the orders join the pickup the courier waits for,
                # one instruction, given now
                log = self._open_pickups[(a.courier_id, held[0])]
                log.assigned_at = now
            else:
                log = PickupLog(a.courier_id, now, stop.merchant_id or "", [])
                report.pickups.append(log)
            for oid in ids:
                report.promised_pickup[oid] = stop.service_at
                self._open_pickups[(a.courier_id, oid)] = log
            touched.append(log)
        for log in touched:  # its orders in their drop-off sequence
            log.order_ids = [
                s.order_ids[0]
                for s in a.route.stops
                if s.kind is StopKind.DROPOFF
                and self._open_pickups.get((a.courier_id, s.order_ids[0])) is log
            ]

    def _busy(self) -> bool:
        store = self.dispatcher.store
        return bool(
            store.orders_with_status(OrderStatus.ASSIGNED) or store.orders_with_status(OrderStatus.PICKED_UP)
        )

    def _next_due(self, courier_id: str) -> int | None:
        route = self.dispatcher.store.get_route(courier_id)
        if route is None or not route.stops:
            return None
        stop = route.stops[0]
        return stop.arrive_at if route.arrived_at is None else stop.service_at

    def _schedule(self, courier_id: str) -> None:
        due = self._next_due(courier_id)
        if due is not None:
            heapq.heappush(self._due, (due, courier_id))

    def _play_couriers(self, report: ReplayReport, until: int) -> None:
        """Carry out every courier action due at or before ``until``, earliest first."""
        d = self.dispatcher
        while self._due and self._due[0][0] <= until:
            at, cid = heapq.heappop(self._due)
            if self._next_due(cid) != at:
                continue  # a stale entry: the plan changed since it was scheduled
            route = d.route(cid)
            stop = route.stops[0]
            try:
                if route.arrived_at is None:
                    courier = d.courier(cid)
                    ride = d.travel.travel_s(courier.location, stop.location, courier.speed_mps)
                    node = stop.merchant_id if stop.kind is not StopKind.DROPOFF else stop.order_ids[0]
                    report.moves.append(Move(cid, at - ride, self._at_node.get(cid, "0"), node or "", ride))
                    self._at_node[cid] = node or ""
                    d.update_position(cid, stop.location, now=at)
                    d.arrived(cid, now=at)
                elif stop.kind is StopKind.PICKUP:
                    for oid in stop.order_ids:
                        d.picked_up(cid, oid, now=at)
                        log = self._open_pickups.get((cid, oid))
                        if log is not None:
                            log.pickup_at = at
                else:
                    oid = stop.order_ids[0]
                    d.delivered(cid, oid, now=at)
                    o = d.order(oid)
                    assert o.picked_up_at is not None and o.delivered_at is not None
                    report.delivered[oid] = (cid, o.placed_at, o.ready_at, o.picked_up_at, o.delivered_at)
            except DispatchError as exc:  # a world that cannot act on its own plan is a bug
                raise RuntimeError(f"courier {cid} could not carry out its plan at {at}: {exc}") from exc
            self._schedule(cid)
