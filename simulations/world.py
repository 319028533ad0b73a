"""A discrete-event world that drives a :class:`~dispatch.Dispatcher` like a real city would.

Customers place orders at their times; couriers start and end shifts, ride their planned
routes and report arrivals, pickups and deliveries at the moment they happen (travel in
this world follows the dispatcher's travel model). The dispatcher ticks on a fixed
interval and sees nothing before it happens.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from dispatch.engine import Dispatcher
from dispatch.errors import DispatchError, Refused
from dispatch.models import Assignment, OrderStatus, StopKind
from simulations.city import CityPlan

__all__ = ["Refusal", "ReplayReport", "World"]


@dataclass(frozen=True, slots=True)
class Refusal:
    order_id: str
    at: int
    reason: str
    code: str


@dataclass(slots=True)
class ReplayReport:
    placed: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    assignments: list[tuple[int, Assignment]] = field(default_factory=list)
    #: pickup ETA given at assignment, per order
    promised_pickup: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, tuple[str, int, int, int, int]] = field(default_factory=dict)
    """order id -> (courier, placed_at, ready_at, picked_up_at, delivered_at)"""
    deadlines: dict[str, int] = field(default_factory=dict)
    undelivered: list[str] = field(default_factory=list)

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
        self.dispatcher = dispatcher
        self.plan = plan
        self.tick_s = tick_s

    def run(self, on_tick: Callable[[int, list[Assignment]], None] | None = None) -> ReplayReport:
        d = self.dispatcher
        report = ReplayReport()
        for merchant in self.plan.merchants:
            d.add_merchant(merchant, now=0)
        # (time, priority, seq): shifts start first, then orders, then shifts end
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
        now = 0
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
                elif priority == 2:
                    if d.courier(shifts[i].courier_id).on_shift:
                        d.end_shift(shifts[i].courier_id, now=at)
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
            result = d.tick(now)
            for a in result.assignments:
                report.assignments.append((now, a))
                for stop in a.route.stops:
                    if stop.kind is StopKind.PICKUP:
                        for oid in stop.order_ids:
                            if oid in a.order_ids:
                                report.promised_pickup[oid] = stop.service_at
            if on_tick is not None:
                on_tick(now, list(result.assignments))
            if now > last and not self._busy():
                break
            if now > last + 6 * 3600:  # a safety net: nothing in a city day takes this long
                break
            now += self.tick_s
        for oid in report.deadlines:
            if d.order(oid).status is not OrderStatus.DELIVERED:
                report.undelivered.append(oid)
        return report

    def _busy(self) -> bool:
        store = self.dispatcher.store
        return bool(
            store.orders_with_status(OrderStatus.ASSIGNED) or store.orders_with_status(OrderStatus.PICKED_UP)
        )

    def _play_couriers(self, report: ReplayReport, until: int) -> None:
        """Carry out every courier action due at or before ``until``, earliest first."""
        d = self.dispatcher
        while True:
            due: tuple[int, str] | None = None
            for courier in d.store.couriers_on_shift():
                route = d.store.get_route(courier.id)
                if route is None or not route.stops:
                    continue
                stop = route.stops[0]
                at = stop.arrive_at if route.arrived_at is None else stop.service_at
                if at <= until and (due is None or (at, courier.id) < due):
                    due = (at, courier.id)
            if due is None:
                return
            at, cid = due
            route = d.route(cid)
            stop = route.stops[0]
            try:
                if route.arrived_at is None:
                    d.update_position(cid, stop.location, now=at)
                    d.arrived(cid, now=at)
                elif stop.kind is StopKind.PICKUP:
                    for oid in stop.order_ids:
                        d.picked_up(cid, oid, now=at)
                else:
                    oid = stop.order_ids[0]
                    d.delivered(cid, oid, now=at)
                    o = d.order(oid)
                    assert o.picked_up_at is not None and o.delivered_at is not None
                    report.delivered[oid] = (cid, o.placed_at, o.ready_at, o.picked_up_at, o.delivered_at)
            except DispatchError as exc:  # a world that cannot act on its own plan is a bug
                raise RuntimeError(f"courier {cid} could not carry out its plan at {at}: {exc}") from exc
