"""A stateful fuzz of the engine (issue #15): a hypothesis ``RuleBasedStateMachine`` over one
:class:`~dispatch.Dispatcher`.

Random merchants, shifts with extreme but valid values (the ends of :mod:`dispatch.ranges`),
orders (ASAP and scheduled), courier events in any order, cancels, position pings, clock jumps
and ticks. After every step:

* no exception escaped except a :class:`~dispatch.DispatchError` (a refusal is fine, a crash is not);
* no order is assigned twice: an assigned or picked-up order is in exactly one plan, its courier's;
* no courier holds two plans, and a plan holds only orders of its courier that are still open;
* every accepted order is placed, assigned, picked up, delivered or cancelled; a placed one has
  no courier and is in no plan.

``tests/dispatch/test_dispatcher_fuzz.py`` runs it with a bounded number of examples in the suite;
``benchmarks/dispatcher_fuzz.py`` runs it longer.
"""

from __future__ import annotations

import contextlib

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from dispatch import (
    DeliveryArea,
    Dispatcher,
    DispatchError,
    DispatchPolicy,
    Location,
    Merchant,
    Window,
    ranges,
)
from dispatch.models import OrderStatus

__all__ = ["DispatcherMachine"]

CENTRE = Location(52.5200, 13.4050)

#: Offsets of up to ~5 km around the centre, in degrees.
offsets = st.tuples(st.floats(-0.045, 0.045), st.floats(-0.07, 0.07))


def _near(offset: tuple[float, float]) -> Location:
    return Location(CENTRE.lat + offset[0], CENTRE.lng + offset[1])


def _edges(r: ranges.Range, typical: list[float]) -> st.SearchStrategy[float]:
    """The ends of a range and a few typical values: extreme but valid."""
    values = [r.low, r.high, *typical]
    return st.sampled_from([int(v) for v in values] if r.whole else values)


class DispatcherMachine(RuleBasedStateMachine):
    merchants = Bundle("merchants")
    couriers = Bundle("couriers")
    orders = Bundle("orders")

    #: the policy each run dispatches with (the benchmark runs the greedy one too)
    policy_factory: type[DispatchPolicy] | None = None

    def __init__(self) -> None:
        super().__init__()
        factory = type(self).policy_factory
        self.d = Dispatcher(policy=factory() if factory is not None else None)
        self.now = 1_000
        self.accepted: set[str] = set()
        self.serial = 0
        self.delivered = 0  # through follow_plan: the fuzz reaches the end of an order's life
        self.assigned = 0

    def _id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    @initialize(target=merchants)
    def first_merchant(self) -> str:
        self.d.add_merchant(Merchant("m0", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), self.now)
        return "m0"

    @initialize(target=couriers)
    def first_courier(self) -> str:
        self.d.start_shift("c0", CENTRE, self.now, self.now + 8 * 3600)
        return "c0"

    @rule(
        target=merchants,
        where=offsets,
        radius_m=_edges(ranges.DELIVERY_RADIUS_M, [500.0, 3000.0]),
        prep_s=_edges(ranges.PREP_S, [300, 900]),
        promise_s=st.one_of(st.none(), _edges(ranges.PROMISE_S, [1800, 2700])),
    )
    def add_merchant(
        self, where: tuple[float, float], radius_m: float, prep_s: int, promise_s: int | None
    ) -> str:
        merchant_id = self._id("m")
        merchant = Merchant(merchant_id, _near(where), DeliveryArea(radius_m=radius_m), prep_s, promise_s)
        self.d.add_merchant(merchant, self.now)
        return merchant_id

    @rule(
        target=couriers,
        where=offsets,
        speed_mps=_edges(ranges.SPEED_MPS, [4.5, 7.0]),
        capacity=_edges(ranges.CAPACITY, [3]),
        shift_s=_edges(ranges.SHIFT_S, [600, 4 * 3600]),
    )
    def start_shift(self, where: tuple[float, float], speed_mps: float, capacity: int, shift_s: int) -> str:
        courier_id = self._id("c")
        self.d.start_shift(
            courier_id, _near(where), self.now, self.now + shift_s, speed_mps=speed_mps, capacity=capacity
        )
        return courier_id

    @rule(courier=couriers)
    def restart_shift(self, courier: str) -> None:
        with contextlib.suppress(DispatchError):
            self.d.start_shift(courier, CENTRE, self.now, self.now + 3600)

    @rule(courier=couriers)
    def end_shift(self, courier: str) -> None:
        with contextlib.suppress(DispatchError):
            self.d.end_shift(courier, self.now)

    @rule(
        target=orders,
        merchant=merchants,
        where=st.tuples(st.floats(-0.01, 0.01), st.floats(-0.015, 0.015)),
        scheduled_in_s=st.one_of(st.none(), st.sampled_from([0, 600, 3600, ranges.SCHEDULE_AHEAD_S.high])),
        window_s=st.sampled_from([60, 900, 1800]),
    )
    def place_order(
        self,
        merchant: str,
        where: tuple[float, float],
        scheduled_in_s: int | None,
        window_s: int,
    ) -> str:
        order_id = self._id("o")
        window = None
        if scheduled_in_s is not None:
            window = Window(self.now + scheduled_in_s, self.now + scheduled_in_s + window_s)
        try:
            self.d.place_order(order_id, merchant, _near(where), self.now, window=window)
        except DispatchError:
            return order_id  # refused: an id that names nothing, which later rules may still use
        self.accepted.add(order_id)
        return order_id

    @rule(order=orders)
    def cancel(self, order: str) -> None:
        with contextlib.suppress(DispatchError):
            self.d.cancel_order(order, self.now)

    @rule(courier=couriers)
    def arrived(self, courier: str) -> None:
        with contextlib.suppress(DispatchError):
            self.d.arrived(courier, self.now)

    @rule(courier=couriers, order=orders)
    def picked_up(self, courier: str, order: str) -> None:
        with contextlib.suppress(DispatchError):
            self.d.picked_up(courier, order, self.now)

    @rule(courier=couriers, order=orders)
    def delivered(self, courier: str, order: str) -> None:
        with contextlib.suppress(DispatchError):
            self.d.delivered(courier, order, self.now)

    @rule(courier=couriers, order=orders)
    def release(self, courier: str, order: str) -> None:
        with contextlib.suppress(DispatchError):
            self.d.release(courier, order, self.now)

    @rule(courier=couriers, where=offsets)
    def ping(self, courier: str, where: tuple[float, float]) -> None:
        with contextlib.suppress(DispatchError):
            self.d.update_position(courier, _near(where), self.now)

    @rule(order=orders, courier=couriers)
    def read(self, order: str, courier: str) -> None:
        for read in (lambda: self.d.eta(order, self.now), lambda: self.d.route(courier)):
            with contextlib.suppress(DispatchError):
                read()

    @rule(courier=couriers, steps=st.integers(1, 8))
    def follow_plan(self, courier: str, steps: int) -> None:
        """The courier does the next ``steps`` things its plan says, a minute apart, as a courier
        app would report them."""
        for _ in range(steps):
            with contextlib.suppress(DispatchError):
                route = self.d.route(courier)
                if not route.stops:
                    return
                stop = route.stops[0]
                self.now += 60
                if route.arrived_at is None:
                    self.d.arrived(courier, self.now)
                elif stop.kind.value == "pickup":
                    self.d.picked_up(courier, stop.order_ids[0], self.now)
                elif stop.kind.value == "dropoff":
                    self.d.delivered(courier, stop.order_ids[0], self.now)
                    self.delivered += 1

    @rule(seconds=st.sampled_from([1, 30, 60, 300, 1800, 4 * 3600]))
    def advance(self, seconds: int) -> None:
        self.now += seconds

    @rule(seconds=st.sampled_from([0, 60, 300, 600]))
    def tick(self, seconds: int) -> None:
        self.now += seconds  # ticks come with time passing, as the background tick does
        result = self.d.tick(self.now)
        assert not result.skipped, result.skipped  # every record here is valid: none is left out
        self.assigned += sum(len(a.order_ids) for a in result.assignments)

    @invariant()
    def plans_and_orders_agree(self) -> None:
        store = self.d.store
        couriers = {c.id for c in store.couriers_on_shift()}
        held = [o for s in (OrderStatus.ASSIGNED, OrderStatus.PICKED_UP) for o in store.orders_with_status(s)]
        owners = {o.courier_id for o in held if o.courier_id is not None}
        routes = store.routes(sorted(couriers | owners))
        in_plans: dict[str, str] = {}
        for courier_id, route in routes.items():
            assert route.courier_id == courier_id
            for order_id in route.order_ids:
                assert order_id not in in_plans, f"order {order_id} in the plans of two couriers"
                in_plans[order_id] = courier_id
        for order in held:
            assert order.courier_id is not None, order
            assert in_plans.get(order.id) == order.courier_id, (order, in_plans.get(order.id))
        open_ids = {o.id for o in held}
        assert set(in_plans) <= open_ids, set(in_plans) - open_ids
        for order in store.orders_with_status(OrderStatus.PLACED):
            assert order.courier_id is None and order.id not in in_plans
        for order_id in self.accepted:
            order = store.get_order(order_id)
            assert order is not None and order.status in OrderStatus
