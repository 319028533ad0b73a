"""The stop rules (dispatch.timing) are one rule: pricing a bundle and timing its route agree."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch.config import DispatchConfig
from dispatch.geo import GreatCircleTravel
from dispatch.matching import Bundle
from dispatch.matching.bundling import drop_offsets
from dispatch.matching.pricing import Prices, Tick
from dispatch.models import DeliveryArea, Location, Merchant, Order, Window
from dispatch.routing import RouteTask, RoutingProblem, evaluate
from dispatch.timing import dropoff_at, handover_s, leave_s, pickup_at, pickup_to_dropoff_s

NEAR = st.floats(min_value=-0.03, max_value=0.03, allow_nan=False)


def where(dlat: float, dlng: float) -> Location:
    return Location(52.52 + dlat, 13.40 + dlng)


@st.composite
def cases(draw: st.DrawFn) -> tuple[DispatchConfig, Merchant, list[Order], Location, float, int]:
    config = DispatchConfig(
        pickup_service_s=draw(st.integers(0, 600)),
        dropoff_service_s=draw(st.integers(0, 600)),
        lateness_weight=draw(st.integers(0, 30)),
        click_to_door_weight=draw(st.integers(0, 5)),
        food_wait_weight=draw(st.integers(0, 5)),
        travel_weight=draw(st.integers(0, 5)),
    )
    merchant = Merchant("m", where(draw(NEAR), draw(NEAR)), DeliveryArea(radius_m=10_000))
    now = 10_000
    orders = []
    for i in range(draw(st.integers(1, 3))):
        placed = now - draw(st.integers(0, 1800))
        ready = placed + draw(st.integers(0, 2400))
        deadline = placed + draw(st.integers(600, 3600))
        orders.append(
            Order(f"o{i}", "m", where(draw(NEAR), draw(NEAR)), placed, ready, Window(placed, deadline))
        )
    courier_at = where(draw(NEAR), draw(NEAR))
    return config, merchant, orders, courier_at, draw(st.sampled_from([3.0, 4.5, 7.0])), now


@settings(max_examples=150, deadline=None)
@given(cases())
def test_pricing_and_routing_evaluate_agree_on_every_stop(
    case: tuple[DispatchConfig, Merchant, list[Order], Location, float, int],
) -> None:
    config, merchant, orders, courier_at, speed, now = case
    travel = GreatCircleTravel()
    to_merchant = travel.travel_s(courier_at, merchant.location, speed)
    tick = Tick(config, travel, [speed], np.zeros(1, np.int64), np.array([10**9]), np.array([10]))
    prices = Prices(
        merchant, np.zeros(1, np.int64), np.array([to_merchant]), np.array([now + to_merchant]), (), tick
    )
    option = prices.of(Bundle("m", tuple(orders)))
    assert option is not None
    priced_cost = int(option[1][0])

    # the same courier, orders and drop-off sequence as a routing problem, timed by evaluate
    sequence, _ = drop_offsets(orders, merchant, config, travel, [speed])
    locations = [courier_at, merchant.location, *(o.dropoff for o in sequence)]
    problem = RoutingProblem(
        travel.matrix_s(locations, locations, speed),
        tuple(
            RouteTask(1, 2 + i, ready_at=o.ready_at, deadline=o.window.end) for i, o in enumerate(sequence)
        ),
        start_at=now,
        pickup_service_s=config.pickup_service_s,
        dropoff_service_s=config.dropoff_service_s,
    )
    steps = [("pickup", i) for i in range(len(sequence))] + [("dropoff", i) for i in range(len(sequence))]
    plan = evaluate(problem, steps)
    pickup, *drops = plan.stops
    assert pickup.service_at == pickup_at(
        now + to_merchant, max(o.ready_at for o in orders), config.pickup_service_s
    )

    # pricing's cost, recomputed from the times routing gives each stop
    late = sum(max(0, d.service_at - o.window.end) for d, o in zip(drops, sequence, strict=True))
    click_to_door = sum(d.service_at - o.placed_at for d, o in zip(drops, sequence, strict=True))
    food_wait = sum(pickup.service_at - o.ready_at for o in sequence)
    assert priced_cost == (
        config.lateness_weight * late
        + config.click_to_door_weight * click_to_door
        + config.food_wait_weight * food_wait
        + config.travel_weight * to_merchant
    )


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 3600), st.integers(0, 3600))
def test_the_stop_rules(arrive_at: int, other_at: int, pickup_s: int, dropoff_s: int) -> None:
    # the hand-over and the departure split the service, the hand-over getting the smaller half
    assert handover_s(pickup_s) + leave_s(pickup_s) == pickup_s
    assert 0 <= leave_s(pickup_s) - handover_s(pickup_s) <= 1
    assert pickup_at(arrive_at, other_at, pickup_s) == max(other_at, arrive_at + pickup_s // 2)
    assert dropoff_at(arrive_at, other_at, dropoff_s) == max(other_at, arrive_at + dropoff_s // 2)
    # riding straight from a pickup at t, the drop-off hand-over is at t + pickup_to_dropoff_s
    leave = arrive_at + leave_s(pickup_s)
    assert dropoff_at(leave + other_at, 0, dropoff_s) == arrive_at + pickup_to_dropoff_s(
        other_at, pickup_s, dropoff_s
    )
