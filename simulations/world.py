"""A discrete-event world that drives a :class:`~dispatch.Dispatcher` like a real city would.

The world holds the truth (:class:`~simulations.day.Truth`): when food is really ready, how
long each ride really takes, whether a courier declines, whether a customer cancels, when a
shift really starts. It tells the dispatcher only what a kitchen, a customer app and a
courier app would, through the calls the HTTP API makes, at the moment things happen:
orders placed and cancelled, shifts started and ended, positions, arrivals, pickups,
deliveries and declines. A pickup happens when the food is really ready and the courier is
really there; an arrival when the courier really arrives. The dispatcher ticks on a fixed
interval and sees nothing before it happens.

With ``Truth()`` (no uncertainty) food is ready when stated and every ride takes the travel
model's time, so every plan comes true: the deterministic world the Grubhub replay needs.
Everything that happens is logged in a :class:`ReplayReport`.
"""

from __future__ import annotations

import heapq
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from dispatch.engine import Dispatcher
from dispatch.errors import DispatchError, Refused
from dispatch.models import Assignment, CancelledBy, Location, OrderStatus, StopKind
from dispatch.timing import handover_s, leave_s
from simulations.city import CityPlan, CourierShift, OrderRequest
from simulations.day import Truth

__all__ = [
    "CourierRecord",
    "Delivery",
    "Move",
    "OrderRecord",
    "PickupLog",
    "Refusal",
    "ReplayReport",
    "Sample",
    "World",
]


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
class OrderRecord:
    """Everything that happened to one order request, and what the engine said would."""

    order_id: str
    merchant_id: str
    dropoff: Location
    placed_at: int
    scheduled: bool
    window_start: int | None = None
    window_end: int | None = None
    refusal_code: str | None = None
    refusal_reason: str | None = None
    assigned_at: int | None = None
    courier_id: str | None = None
    bundle_size: int | None = None
    courier_at_merchant_at: int | None = None
    ready_stated_at: int | None = None
    ready_actual_at: int | None = None
    picked_up_at: int | None = None
    delivered_at: int | None = None
    cancelled_at: int | None = None
    pickup_eta_at_assignment: int | None = None
    dropoff_eta_at_placement: int | None = None
    declines: int = 0

    @property
    def status(self) -> str:
        if self.refusal_code is not None:
            return "refused"
        if self.delivered_at is not None:
            return "delivered"
        if self.cancelled_at is not None:
            return "cancelled"
        return "undelivered"


@dataclass(slots=True)
class CourierRecord:
    courier_id: str
    start: Location
    shift_start: int
    shift_end: int
    started_at: int | None = None
    went_off_at: int | None = None
    busy_s: int = 0
    moving_s: int = 0
    waiting_at_merchant_s: int = 0
    distance_m: float = 0.0
    orders: int = 0
    declines: int = 0

    @property
    def worked_s(self) -> int:
        if self.started_at is None:
            return 0
        return max(
            0, (self.went_off_at if self.went_off_at is not None else self.shift_end) - self.started_at
        )

    @property
    def idle_s(self) -> int:
        return max(0, self.worked_s - self.busy_s)


@dataclass(frozen=True, slots=True)
class Sample:
    """The city at ``t``, as it really is (taken on the first tick of each 15 minutes)."""

    t: int
    open_orders: int
    couriers_on_shift: int
    couriers_idle: int
    couriers_busy: int
    couriers_waiting: int


class Delivery(NamedTuple):
    """One order as delivered: who carried it and its times (``ready_at`` as stated)."""

    courier_id: str
    placed_at: int
    ready_at: int
    picked_up_at: int
    delivered_at: int


@dataclass(slots=True)
class ReplayReport:
    placed: int = 0
    refusals: list[Refusal] = field(default_factory=list)
    assignments: list[tuple[int, Assignment]] = field(default_factory=list)
    #: pickup time a restaurant was told at assignment, per order
    promised_pickup: dict[str, int] = field(default_factory=dict)
    #: order id -> who delivered it, and when
    delivered: dict[str, Delivery] = field(default_factory=dict)
    deadlines: dict[str, int] = field(default_factory=dict)
    undelivered: list[str] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    pickups: list[PickupLog] = field(default_factory=list)
    #: wall-clock seconds of every tick (the dispatcher's decision time)
    tick_seconds: list[float] = field(default_factory=list)
    orders: dict[str, OrderRecord] = field(default_factory=dict)
    couriers: dict[str, CourierRecord] = field(default_factory=dict)
    samples: list[Sample] = field(default_factory=list)
    #: deliveries by the end of their promise or window, so far
    on_time: int = 0

    def summary(self) -> dict[str, float]:
        c2d = [d[4] - d[1] for d in self.delivered.values()]
        on_time = [self.delivered[o][4] <= self.deadlines[o] for o in self.delivered]
        eta_err = [
            abs(self.delivered[o][3] - p) for o, p in self.promised_pickup.items() if o in self.delivered
        ]
        food_wait = [
            d[3] - (self.orders[o].ready_actual_at or d[2]) if o in self.orders else d[3] - d[2]
            for o, d in self.delivered.items()
        ]
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


@dataclass(slots=True)
class _Leg:
    origin: Location
    depart_at: int
    dest: Location
    arrive_at: int
    model_s: int


@dataclass(slots=True)
class _Rider:
    """Where a courier really is: at rest at ``pos`` (free to leave from ``free_from``), on a
    ``leg``, or at its first stop since ``at_stop_since``."""

    pos: Location
    speed_mps: float
    free_from: int = 0
    leg: _Leg | None = None
    at_stop_since: int | None = None
    version: int = 0
    load_since: int | None = None
    node: str = "0"  # the MDRP node id it is at ("0" = its start)


#: the agenda's kinds at one instant, in this order
_START, _ORDER, _END, _CANCEL = 0, 1, 2, 3
_SAMPLE_S = 900


class World:
    """Plays ``plan`` through ``dispatcher``, ticking every ``tick_s`` seconds; ``truth`` is
    what really happens (default: nothing the engine does not expect)."""

    def __init__(
        self, dispatcher: Dispatcher, plan: CityPlan, *, tick_s: int = 60, truth: Truth | None = None
    ) -> None:
        if tick_s <= 0:
            raise ValueError("tick_s must be positive")
        self.dispatcher = dispatcher
        self.plan = plan
        self.tick_s = tick_s
        self.truth = truth or Truth()
        self._riders: dict[str, _Rider] = {}
        self._on_shift: set[str] = set()
        self._due: list[tuple[int, str, int]] = []
        self._open_pickups: dict[tuple[str, str], PickupLog] = {}
        self._ready: dict[str, int] = {}  # order id -> really ready at
        self._opens: dict[str, int] = {}  # order id -> its window's start
        self._report = ReplayReport()

    def run(
        self,
        on_tick: Callable[[int, list[Assignment]], None] | None = None,
        on_progress: Callable[[int, ReplayReport], None] | None = None,
    ) -> ReplayReport:
        """Play the whole day; ``on_tick`` sees each tick's decisions (repositions have no
        orders), ``on_progress`` the report after each tick."""
        d = self.dispatcher
        report = self._report
        truth = self.truth
        for merchant in self.plan.merchants:
            d.add_merchant(merchant, now=0)
        agenda: list[tuple[int, int, int]] = []
        shifts = list(self.plan.shifts)
        requests = list(self.plan.requests)
        for i, shift in enumerate(shifts):
            report.couriers[shift.courier_id] = CourierRecord(
                shift.courier_id, shift.start, shift.on_at, shift.off_at
            )
            real = truth.shift_start.get(shift.courier_id, shift.on_at)
            if real is not None:  # None: the courier never comes
                agenda.append((real, _START, i))
                agenda.append((shift.off_at, _END, i))
        for i, req in enumerate(requests):
            agenda.append((req.placed_at, _ORDER, i))
            cancel_at = truth.cancel_at.get(req.order_id)
            if cancel_at is not None:
                agenda.append((cancel_at, _CANCEL, i))
        heapq.heapify(agenda)
        last = max((t for t, *_ in agenda), default=0)
        first = min((t for t, *_ in agenda), default=0)
        now = first - first % self.tick_s
        next_sample = now - now % _SAMPLE_S
        while True:
            while agenda and agenda[0][0] <= now:
                at, kind, i = heapq.heappop(agenda)
                self._play_couriers(until=at)
                if kind == _START:
                    self._start(shifts[i], at)
                elif kind == _END:
                    self._end(shifts[i].courier_id, at)
                elif kind == _ORDER:
                    self._place(requests[i], at)
                else:
                    self._cancel(requests[i].order_id, at)
            self._play_couriers(until=now)
            if now >= next_sample:
                report.samples.append(self._sample(next_sample))
                next_sample += _SAMPLE_S
            started = time.perf_counter()
            result = d.tick(now)
            report.tick_seconds.append(time.perf_counter() - started)
            for a in result.assignments:
                self._record_assignment(now, a)
                self._answer_offer(a, now, decline=truth.declines())
                self._reschedule(a.courier_id, now)
            for a in result.repositions:
                self._reschedule(a.courier_id, now)
            if on_tick is not None:
                on_tick(now, [*result.assignments, *result.repositions])
            if on_progress is not None:
                on_progress(now, report)
            if now >= last and not self._busy():
                break
            if now > last + 6 * 3600:  # a safety net: nothing in a city day takes this long
                break
            now += self.tick_s
        for oid in report.deadlines:
            if d.order(oid).status not in (OrderStatus.DELIVERED, OrderStatus.CANCELLED):
                report.undelivered.append(oid)
        for cid, rider in self._riders.items():
            if rider.load_since is not None:  # still holding orders when the day stopped
                report.couriers[cid].busy_s += now - rider.load_since
                report.couriers[cid].went_off_at = now
        return report

    # -- the agenda ------------------------------------------------------------------------

    def _start(self, shift: CourierShift, at: int) -> None:
        self.dispatcher.start_shift(
            shift.courier_id,
            shift.start,
            now=at,
            shift_end=shift.off_at,
            speed_mps=shift.speed_mps,
            capacity=shift.capacity,
        )
        self._riders[shift.courier_id] = _Rider(shift.start, shift.speed_mps, free_from=at)
        self._on_shift.add(shift.courier_id)
        self._report.couriers[shift.courier_id].started_at = at

    def _end(self, courier_id: str, at: int) -> None:
        d = self.dispatcher
        if not d.courier(courier_id).on_shift:
            return
        d.end_shift(courier_id, now=at)
        self._reschedule(courier_id, at)
        if not d.courier(courier_id).on_shift:
            self._went_off(courier_id, at)

    def _went_off(self, courier_id: str, at: int) -> None:
        self._on_shift.discard(courier_id)
        self._report.couriers[courier_id].went_off_at = at

    def _place(self, item: OrderRequest, at: int) -> None:
        d = self.dispatcher
        report = self._report
        rec = OrderRecord(item.order_id, item.merchant_id, item.dropoff, at, item.window is not None)
        report.orders[item.order_id] = rec
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
            rec.refusal_code, rec.refusal_reason = exc.code, str(exc)
            if item.window is not None:
                rec.window_start, rec.window_end = item.window.start, item.window.end
            return
        report.placed += 1
        report.deadlines[order.id] = order.window.end
        rec.window_start, rec.window_end = order.window.start, order.window.end
        self._opens[order.id] = order.window.start
        # the kitchen works to the time it was given, not to the engine's learned expectation
        rec.ready_stated_at = stated = d.stated_ready_at(order.id)
        prep_s = d.merchant(order.merchant_id).prep_s
        rec.ready_actual_at = self._ready[order.id] = self.truth.ready_at(order.id, stated, prep_s)
        rec.dropoff_eta_at_placement = d.eta(order.id, now=at).dropoff_at

    def _cancel(self, order_id: str, at: int) -> None:
        d = self.dispatcher
        rec = self._report.orders[order_id]
        if rec.refusal_code is not None:
            return
        order = d.order(order_id)
        if order.status not in (OrderStatus.PLACED, OrderStatus.ASSIGNED):
            return  # picked up (or delivered) already: too late to cancel
        d.cancel_order(order_id, now=at, reason="customer_request", by=CancelledBy.CUSTOMER)
        rec.cancelled_at = at
        if order.courier_id is not None:
            self._reschedule(order.courier_id, at)

    def _answer_offer(self, a: Assignment, now: int, *, decline: bool) -> None:
        """The courier's app answers the assignment: the offer when the city makes offers, or
        (auto-accepted) a decline of the assignment itself."""
        d = self.dispatcher
        order = d.order(a.order_ids[0])
        if order.offer_pending and order.offer_id is not None:
            if not decline:
                d.accept_offer(a.courier_id, order.offer_id, now)
                return
            d.decline_offer(a.courier_id, order.offer_id, now)
        elif decline:
            d.decline(a.courier_id, a.order_ids, now)
        else:
            return
        self._report.couriers[a.courier_id].declines += 1
        for oid in a.order_ids:
            rec = self._report.orders[oid]
            rec.declines += 1
            rec.assigned_at = rec.courier_id = rec.pickup_eta_at_assignment = rec.bundle_size = None
            rec.courier_at_merchant_at = None

    # -- decisions ---------------------------------------------------------------------------

    def _record_assignment(self, now: int, a: Assignment) -> None:
        report = self._report
        report.assignments.append((now, a))
        new = set(a.order_ids)
        touched: list[PickupLog] = []
        rider = self._riders.get(a.courier_id)
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
                rec = report.orders.get(oid)
                if rec is not None:
                    rec.assigned_at, rec.courier_id = now, a.courier_id
                    rec.pickup_eta_at_assignment = stop.service_at
                    if held and rider is not None and rider.at_stop_since is not None:
                        rec.courier_at_merchant_at = now  # joins a courier already there
            touched.append(log)
        for log in touched:  # its orders in their drop-off sequence
            log.order_ids = [
                s.order_ids[0]
                for s in a.route.stops
                if s.kind is StopKind.DROPOFF
                and self._open_pickups.get((a.courier_id, s.order_ids[0])) is log
            ]

    def _busy(self) -> bool:
        orders = self.dispatcher.counts(open_only=True).orders
        return bool(orders[OrderStatus.ASSIGNED] or orders[OrderStatus.PICKED_UP])

    def _sample(self, t: int) -> Sample:
        d = self.dispatcher
        orders = d.counts(open_only=True).orders
        open_orders = sum(n for s, n in orders.items() if s.is_open)
        idle = busy = waiting = 0
        for cid in self._on_shift:
            rider = self._riders[cid]
            route = d.route(cid)
            if not route.order_ids:
                idle += 1
            elif (
                rider.at_stop_since is not None
                and route.stops[0].kind is StopKind.PICKUP
                and any(self._ready.get(o, 0) > t for o in route.stops[0].order_ids)
            ):
                waiting += 1
            else:
                busy += 1
        return Sample(t, open_orders, len(self._on_shift), idle, busy, waiting)

    # -- couriers ----------------------------------------------------------------------------

    def _reschedule(self, courier_id: str, now: int) -> None:
        """The courier's next real action, after its plan (or its position) changed."""
        rider = self._riders.get(courier_id)
        if rider is None:
            return
        d = self.dispatcher
        route = d.route(courier_id)
        stops = route.stops
        rec = self._report.couriers[courier_id]
        holds = bool(route.order_ids)
        if holds and rider.load_since is None:
            rider.load_since = now
        elif not holds and rider.load_since is not None:
            rec.busy_s += now - rider.load_since
            rider.load_since = None
        rider.version += 1
        leg = rider.leg
        if leg is not None:
            if stops and stops[0].location == leg.dest:
                heapq.heappush(self._due, (leg.arrive_at, courier_id, rider.version))
                return
            # the stop it rode to is gone: it stops where it is and the app says so
            share = (
                0.0
                if leg.arrive_at <= leg.depart_at
                else (now - leg.depart_at) / (leg.arrive_at - leg.depart_at)
            )
            share = min(1.0, max(0.0, share))
            rider.pos = Location(
                round(leg.origin.lat + (leg.dest.lat - leg.origin.lat) * share, 7),
                round(leg.origin.lng + (leg.dest.lng - leg.origin.lng) * share, 7),
            )
            rec.moving_s += max(0, now - leg.depart_at)
            rec.distance_m += leg.model_s * rider.speed_mps * share
            rider.leg = None
            rider.free_from = now
            rider.node = "?"
            if d.courier(courier_id).on_shift:
                d.update_position(courier_id, rider.pos, now=now)
        if rider.at_stop_since is not None:
            if (
                stops
                and route is not None
                and route.arrived_at is not None
                and stops[0].location == rider.pos
            ):
                heapq.heappush(
                    self._due,
                    (self._service_at(rider, stops[0].kind, stops[0].order_ids), courier_id, rider.version),
                )
                return
            rider.at_stop_since = None  # nothing left to do here
            rider.free_from = max(rider.free_from, now)
        if not stops:
            return
        depart = max(now, rider.free_from)
        dest = stops[0].location
        model_s = d.travel.travel_s(rider.pos, dest, rider.speed_mps)
        ride_s = self.truth.ride_s(model_s, depart)
        rider.leg = _Leg(rider.pos, depart, dest, depart + ride_s, model_s)
        heapq.heappush(self._due, (depart + ride_s, courier_id, rider.version))

    def _service_at(self, rider: _Rider, kind: StopKind, order_ids: tuple[str, ...]) -> int:
        assert rider.at_stop_since is not None
        cfg = self.dispatcher.config
        if kind is StopKind.PICKUP:
            ready = max((self._ready.get(o, 0) for o in order_ids), default=0)
            return max(rider.at_stop_since + handover_s(cfg.pickup_service_s), ready)
        if kind is StopKind.DROPOFF:  # not before a scheduled window opens
            return max(
                rider.at_stop_since + handover_s(cfg.dropoff_service_s), self._opens.get(order_ids[0], 0)
            )
        return rider.at_stop_since

    def _play_couriers(self, until: int) -> None:
        """Carry out every courier action due at or before ``until``, earliest first."""
        while self._due and self._due[0][0] <= until:
            at, cid, version = heapq.heappop(self._due)
            if self._riders[cid].version != version:
                continue  # a stale entry: the plan changed since it was scheduled
            try:
                self._act(cid, at)
            except DispatchError as exc:  # a world that cannot act on its own plan is a bug
                raise RuntimeError(f"courier {cid} could not carry out its plan at {at}: {exc}") from exc
            self._reschedule(cid, at)

    def _act(self, cid: str, at: int) -> None:
        d = self.dispatcher
        report = self._report
        rider = self._riders[cid]
        route = d.route(cid)
        stop = route.stops[0]
        rec = report.couriers[cid]
        cfg = d.config
        if rider.leg is not None:  # arrives
            leg = rider.leg
            node = stop.merchant_id if stop.kind is not StopKind.DROPOFF else stop.order_ids[0]
            report.moves.append(Move(cid, leg.depart_at, rider.node, node or "", leg.model_s))
            rider.node = node or ""
            rec.moving_s += at - leg.depart_at
            rec.distance_m += leg.model_s * rider.speed_mps
            rider.leg = None
            rider.pos = stop.location
            d.update_position(cid, stop.location, now=at)
            d.arrived(cid, now=at)
            if stop.kind is StopKind.REPOSITION:
                rider.free_from = at
                return
            rider.at_stop_since = at
            if stop.kind is StopKind.PICKUP:
                for oid in stop.order_ids:
                    if oid in report.orders:
                        report.orders[oid].courier_at_merchant_at = at
            return
        assert rider.at_stop_since is not None
        arrived = rider.at_stop_since
        rider.at_stop_since = None
        if stop.kind is StopKind.PICKUP:
            rec.waiting_at_merchant_s += max(0, at - (arrived + handover_s(cfg.pickup_service_s)))
            for oid in stop.order_ids:
                new_route = d.picked_up(cid, oid, now=at)
                log = self._open_pickups.get((cid, oid))
                if log is not None:
                    log.pickup_at = at
                picked = report.orders.get(oid)
                if picked is not None:
                    picked.picked_up_at = at
                    picked.bundle_size = len(stop.order_ids)
            rider.free_from = at + leave_s(cfg.pickup_service_s)
            if new_route.arrived_at is not None and new_route.stops:
                # more to collect here (the engine keeps it arrived): the next hand-over can be now
                rider.at_stop_since = at - handover_s(cfg.pickup_service_s)
        else:
            oid = stop.order_ids[0]
            d.delivered(cid, oid, now=at)
            o = d.order(oid)
            assert o.picked_up_at is not None and o.delivered_at is not None
            report.delivered[oid] = Delivery(cid, o.placed_at, o.ready_at, o.picked_up_at, o.delivered_at)
            report.on_time += at <= o.window.end
            rec.orders += 1
            if oid in report.orders:
                report.orders[oid].delivered_at = at
            rider.free_from = at + leave_s(cfg.dropoff_service_s)
            if not d.courier(cid).on_shift and cid in self._on_shift:
                self._went_off(cid, at)
