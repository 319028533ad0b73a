"""Learned preparation times: exact observations (the courier waited, or the merchant said
"ready"), censored ones (the food was ready before the courier), shrinkage, the switch, and the
state in the Store (over Redis, across a restart)."""

from __future__ import annotations

import pytest

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, IllegalTransition, Merchant, Order, Window
from dispatch.estimates import learned_delay_s, observe_pickup
from dispatch.redis_store import RedisStore
from tests.conftest import CENTRE, destination
from tests.redis_server import RedisServer

LATE_S = 300  # the kitchen is always 5 minutes late
HANDOVER_S = 120  # half of the default 240 s pickup service


def _order(i: int, merchant_id: str = "m1", ready_at: int = 600) -> Order:
    return Order(f"o{i}", merchant_id, destination(CENTRE, 1000, 0), 0, ready_at, Window(0, 1800))


def _waited(d: Dispatcher, order: Order) -> None:
    """A courier arrived long before the food and waited: picked up the moment it was ready."""
    observe_pickup(d, order, arrived_at=order.ready_at - 400, picked_up_at=order.ready_at + LATE_S)


def _after_ready(d: Dispatcher, order: Order, late_s: int) -> None:
    """A courier arrived ``late_s`` after the stated ready time, later than the food was ready."""
    arrived = order.ready_at + late_s
    observe_pickup(d, order, arrived_at=arrived, picked_up_at=arrived + HANDOVER_S)


def test_converges_on_a_kitchen_always_five_minutes_late(dispatcher: Dispatcher) -> None:
    # another merchant, always on time, makes the city's figure 0: m1 is shrunk towards it at first
    for i in range(50):
        observe_pickup(dispatcher, _order(1000 + i, "m0"), arrived_at=0, picked_up_at=600)
    assert learned_delay_s(dispatcher, "m0", 600) == 0
    _waited(dispatcher, _order(0))
    first = learned_delay_s(dispatcher, "m1", 600)
    assert 0 < first < LATE_S  # one order: mostly the city's figure
    for i in range(1, 200):
        _waited(dispatcher, _order(i))
    learned = learned_delay_s(dispatcher, "m1", 600)
    assert abs(learned - LATE_S) <= 15
    # pickups where the courier came after the food was ready (it was ready by then) say nothing
    for i in range(200, 400):
        _after_ready(dispatcher, _order(i), late_s=LATE_S + 60 + i % 600)
    assert learned_delay_s(dispatcher, "m1", 600) == learned


def test_a_censored_pickup_below_the_estimate_pulls_it_down_to_the_bound() -> None:
    d = Dispatcher(config=DispatchConfig(city="t", prep_prior_orders=0))
    _waited(d, _order(0))
    assert learned_delay_s(d, "m1", 600) == LATE_S
    # the food was collected 100 s after its stated time: it cannot be 300 s late on average
    _after_ready(d, _order(1), late_s=100 - HANDOVER_S)
    assert learned_delay_s(d, "m1", 600) == (LATE_S + 100) // 2


def test_hours_are_learned_apart() -> None:
    d = Dispatcher(config=DispatchConfig(city="t", prep_prior_orders=1))
    noon, evening = 12 * 3600, 19 * 3600
    for i in range(100):
        observe_pickup(d, _order(i, ready_at=noon), arrived_at=noon - 400, picked_up_at=noon + 600)
        observe_pickup(d, _order(500 + i, ready_at=evening), arrived_at=0, picked_up_at=evening)
    assert learned_delay_s(d, "m1", noon + 60) > 550
    assert learned_delay_s(d, "m1", evening + 60) < 50


def test_learning_off_learns_and_uses_nothing() -> None:
    d = Dispatcher(config=DispatchConfig(city="t", learning=False))
    for i in range(20):
        _waited(d, _order(i))
    assert learned_delay_s(d, "m1", 600) == 0
    assert d.store.learned(["prep:city", "prep:m:m1"]) == {}


def test_the_engine_learns_from_pickups_and_expects_the_delay(dispatcher: Dispatcher) -> None:
    """Through the Dispatcher: a courier waits 5 min past the stated ready time at each pickup;
    the next order's ready time (and so its plan and ETA) carries the learned delay."""
    d = dispatcher
    d.update_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=300), now=0)
    d.start_shift("c1", CENTRE, now=0, shift_end=12 * 3600)
    now = 0
    for i in range(6):
        order = d.place_order(f"o{i}", "m1", destination(CENTRE, 800, 0), now=now)
        assert d.stated_ready_at(order.id) == now + 300
        # committed at most 2 min before the food is expected (with the delay learned so far)
        assert d.tick(now=order.ready_at - 60).assignments
        d.arrived("c1", now=order.ready_at - 59)
        d.picked_up("c1", order.id, now=d.stated_ready_at(order.id) + LATE_S)
        now = d.order(order.id).picked_up_at or 0
        d.arrived("c1", now=now + 200)
        d.delivered("c1", order.id, now=now + 300)
        now += 400
    order = d.place_order("late", "m1", destination(CENTRE, 800, 0), now=now)
    assert d.stated_ready_at("late") == now + 300
    assert order.ready_at - (now + 300) == learned_delay_s(d, "m1", now + 300) > 0.5 * LATE_S
    assert d.eta("late", now=now).pickup_at is not None and d.eta("late", now=now).pickup_at >= order.ready_at


def test_food_ready_is_an_exact_observation_once(dispatcher: Dispatcher) -> None:
    d = Dispatcher(store=dispatcher.store, config=DispatchConfig(city="test", prep_prior_orders=0))
    d.start_shift("c1", destination(CENTRE, 300, 90), now=0, shift_end=4 * 3600)
    order = d.place_order("o1", "m1", destination(CENTRE, 800, 0), now=0)
    d.food_ready("o1", now=order.ready_at + 240)
    assert learned_delay_s(d, "m1", order.ready_at) == 240
    d.food_ready("o1", now=order.ready_at + 900)  # said twice: counted once
    assert learned_delay_s(d, "m1", order.ready_at) == 240
    d.cancel_order("o1", now=1000)
    with pytest.raises(IllegalTransition):
        d.food_ready("o1", now=1001)


def test_learned_state_survives_a_redis_restart(redis_server: RedisServer, redis_url: str) -> None:
    config = DispatchConfig(city="learn")
    d = Dispatcher(store=RedisStore(redis_url, "learn"), config=config)
    for i in range(30):
        _waited(d, _order(i))
    learned = learned_delay_s(d, "m1", 600)
    assert learned > LATE_S // 2
    redis_server.restart(hard=False)  # a clean shutdown saves the data set; a new process reads it
    again = Dispatcher(store=RedisStore(redis_url, "learn"), config=config)
    assert learned_delay_s(again, "m1", 600) == learned
