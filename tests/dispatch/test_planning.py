"""The planner: orders in, timed stops out, by the stop rules of dispatch.timing."""

from __future__ import annotations

import pytest

from dispatch.config import DispatchConfig
from dispatch.geo import GreatCircleTravel
from dispatch.models import DeliveryArea, Merchant, Order, Stop, StopKind, Window
from dispatch.planning import Planner
from dispatch.timing import dropoff_at, leave_s, pickup_at
from tests.conftest import CENTRE, destination

TRAVEL = GreatCircleTravel()
SPEED = 4.5
SHOP = Merchant("m1", CENTRE, DeliveryArea(radius_m=5000), prep_s=600)
COURIER_AT = destination(CENTRE, 900, 270)


def _order(oid: str, bearing_deg: float, *, ready_at: int = 600, window: Window | None = None) -> Order:
    return Order(
        oid,
        "m1",
        destination(CENTRE, 1500, bearing_deg),
        placed_at=0,
        ready_at=ready_at,
        window=window or Window(0, 1800),
        scheduled=window is not None,
    )


@pytest.fixture
def planner() -> Planner:
    return Planner(DispatchConfig(pickup_service_s=241, dropoff_service_s=61), TRAVEL, {"m1": SHOP})


def test_one_order_is_timed_by_the_stop_rules(planner: Planner) -> None:
    order = _order("o1", 0, ready_at=60)  # ready before the courier can be there
    plan = planner.plan(speed_mps=SPEED, capacity=3, start=COURIER_AT, start_at=0, orders=[order])
    pickup, dropoff = plan.stops
    to_shop = TRAVEL.travel_s(COURIER_AT, CENTRE, SPEED)
    assert (pickup.kind, pickup.order_ids, pickup.merchant_id) == (StopKind.PICKUP, ("o1",), "m1")
    assert pickup.arrive_at == to_shop
    assert pickup.service_at == pickup_at(to_shop, 60, 241) == to_shop + 120
    assert pickup.depart_at == pickup.service_at + leave_s(241) == pickup.service_at + 121
    ride = TRAVEL.travel_s(CENTRE, order.dropoff, SPEED)
    assert dropoff.arrive_at == pickup.depart_at + ride
    assert dropoff.service_at == dropoff_at(dropoff.arrive_at, 0, 61) == dropoff.arrive_at + 30
    assert dropoff.depart_at == dropoff.service_at + 31
    assert plan.lateness_s == 0 and plan.optimal


def test_the_courier_waits_for_the_food(planner: Planner) -> None:
    plan = planner.plan(speed_mps=SPEED, capacity=3, start=CENTRE, start_at=0, orders=[_order("o1", 0)])
    assert plan.stops[0].arrive_at == 0 and plan.stops[0].service_at == 600  # ready at 600


def test_a_scheduled_drop_off_waits_for_its_window(planner: Planner) -> None:
    order = _order("o1", 0, window=Window(2400, 4200))
    drop = planner.plan(speed_mps=SPEED, capacity=3, start=CENTRE, start_at=0, orders=[order]).stops[-1]
    assert drop.arrive_at < 2400 and drop.service_at == 2400


def test_an_order_on_board_has_no_pickup(planner: Planner) -> None:
    plan = planner.plan(
        speed_mps=SPEED,
        capacity=3,
        start=CENTRE,
        start_at=100,
        orders=[_order("o1", 0)],
        on_board=frozenset({"o1"}),
    )
    (drop,) = plan.stops
    assert drop.kind is StopKind.DROPOFF and drop.arrive_at == 100 + TRAVEL.travel_s(
        CENTRE, drop.location, SPEED
    )


def test_two_orders_one_pickup_and_late_orders_priced(planner: Planner) -> None:
    orders = [_order("o1", 0), _order("o2", 10)]
    plan = planner.plan(speed_mps=SPEED, capacity=3, start=CENTRE, start_at=0, orders=orders)
    assert [s.kind for s in plan.stops] == [StopKind.PICKUP, StopKind.DROPOFF, StopKind.DROPOFF]
    assert set(plan.stops[0].order_ids) == {"o1", "o2"}
    # a promise that cannot be kept is planned anyway, and its lateness counted
    late = _order("o3", 0, window=Window(0, 700))
    plan = planner.plan(speed_mps=SPEED, capacity=3, start=CENTRE, start_at=0, orders=[late])
    assert plan.lateness_s == plan.stops[-1].service_at - 700 > 0


def test_retime_keeps_the_sequence_and_moves_the_times(planner: Planner) -> None:
    orders = [_order("o1", 0, ready_at=0), _order("o2", 180, ready_at=0)]
    plan = planner.plan(speed_mps=SPEED, capacity=3, start=CENTRE, start_at=0, orders=orders)
    later = planner.retime(
        speed_mps=SPEED, start=CENTRE, start_at=300, stops=plan.stops, orders={o.id: o for o in orders}
    )
    assert [(s.kind, s.order_ids) for s in later] == [(s.kind, s.order_ids) for s in plan.stops]
    # nothing waits for food or a window here: everything moves by the 300 s delay
    assert [s.service_at - 300 for s in later] == [s.service_at for s in plan.stops]


def test_retime_after_a_reposition_starts_where_the_move_ends(planner: Planner) -> None:
    wait = Stop(StopKind.REPOSITION, (), CENTRE, 0, 0, 0, "m1")
    order = _order("o1", 0, ready_at=0)
    pickup = Stop(StopKind.PICKUP, ("o1",), CENTRE, 0, 0, 0, "m1")
    drop = Stop(StopKind.DROPOFF, ("o1",), order.dropoff, 0, 0, 0, "m1")
    moved, timed_pickup, _ = planner.retime(
        speed_mps=SPEED, start=COURIER_AT, start_at=50, stops=[wait, pickup, drop], orders={"o1": order}
    )
    arrive = 50 + TRAVEL.travel_s(COURIER_AT, CENTRE, SPEED)
    assert (moved.arrive_at, moved.service_at, moved.depart_at) == (arrive, arrive, arrive)
    assert timed_pickup.arrive_at == arrive and timed_pickup.service_at == arrive + 120
