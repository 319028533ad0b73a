"""Prepositioning: the demand the dispatcher has seen, and idle couriers sent toward it."""

from __future__ import annotations

import pytest

from dispatch import (
    CourierStatus,
    DeliveryArea,
    DispatchConfig,
    Dispatcher,
    GreatCircleTravel,
    GreedyPolicy,
    Merchant,
    Order,
    StopKind,
    Window,
)
from dispatch.geo import TravelModel
from dispatch.matching import Decision, Snapshot
from dispatch.models import Placement
from dispatch.positioning import DemandMemory, choose_repositions
from tests.conftest import CENTRE, destination

TRAVEL = GreatCircleTravel()
SPEED = 4.5  # m/s: 1 km is 1300 m of road, 289 s
NORTH = destination(CENTRE, 2000, 0)
MERCHANTS = {
    "m1": Merchant("m1", CENTRE, DeliveryArea(radius_m=5000)),
    "m2": Merchant("m2", NORTH, DeliveryArea(radius_m=5000)),
}


def _order(oid: str, merchant_id: str, placed_at: int) -> Order:
    return Order(
        id=oid,
        merchant_id=merchant_id,
        dropoff=destination(CENTRE, 500, 90),
        placed_at=placed_at,
        ready_at=placed_at + 600,
        window=Window(placed_at, placed_at + 1800),
    )


def test_demand_memory_counts_each_order_once_within_its_window() -> None:
    memory = DemandMemory(window_s=3600)
    memory.observe([_order("a", "m1", 0), _order("b", "m2", 100)], now=100)
    memory.observe([_order("a", "m1", 0), _order("c", "m1", 200)], now=200)  # "a" seen again
    assert memory.weights() == {"m1": 2, "m2": 1}
    memory.observe([], now=3601)  # "a" (placed at 0) is now more than an hour old
    assert memory.weights() == {"m1": 1, "m2": 1}
    memory.observe([], now=3801)
    assert memory.weights() == {}
    # an order still open after its hour is not counted again, behind newer ones
    memory.observe([_order("e", "m2", 3850)], now=3850)
    memory.observe([_order("d", "m1", 0), _order("e", "m2", 3850)], now=3900)
    assert memory.weights() == {"m2": 1}


def test_demand_memory_recalls_orders_it_did_not_see_open() -> None:
    memory = DemandMemory(window_s=3600)
    memory.observe([_order("c", "m1", 3000)], now=3000)
    # a new leader reads the log back: "a" is too old, "c" is counted already
    memory.recall(
        [Placement(3000, "c", "m1"), Placement(2000, "b", "m2"), Placement(100, "a", "m1")], now=3900
    )
    assert memory.weights() == {"m1": 1, "m2": 1}
    memory.observe([], now=5601)  # "b" (placed at 2000) leaves the window first, then "c"
    assert memory.weights() == {"m1": 1}
    memory.observe([], now=6601)
    assert memory.weights() == {}


def test_an_idle_courier_far_from_the_demand_moves_to_it() -> None:
    far = destination(CENTRE, 2500, 90)  # a customer's door 2.5 km east of m1: 723 s away
    moves = choose_repositions([("c1", far, SPEED, None)], {}, {"m1": 5}, MERCHANTS, TRAVEL, DispatchConfig())
    assert [(m.courier_id, m.merchant_id) for m in moves] == [("c1", "m1")]
    assert moves[0].travel_s == TRAVEL.travel_s(far, CENTRE, SPEED) == 723


@pytest.mark.parametrize(
    ("distance_m", "moves"),
    [
        (200, 0),  # 58 s away: charged at a quarter, gains 43 s < 60 s, not worth a move
        (300, 1),  # 87 s away: gains 65 s
        (4000, 1),  # 1156 s away: still within the 1200 s a reposition may take
        (4200, 0),  # 1214 s away: too far to send anybody
    ],
)
def test_a_move_must_gain_enough_and_not_be_too_long(distance_m: float, moves: int) -> None:
    here = destination(CENTRE, distance_m, 180)
    chosen = choose_repositions(
        [("c1", here, SPEED, None)], {}, {"m1": 1}, MERCHANTS, TRAVEL, DispatchConfig()
    )
    assert len(chosen) == moves


def test_no_merchant_draws_more_than_its_share_of_waiting_couriers() -> None:
    south = destination(CENTRE, 1500, 180)  # 433 s from m1, 1011 s from m2
    idle = [("c1", south, SPEED, None), ("c2", destination(south, 50, 90), SPEED, None)]
    demand = {"m1": 1, "m2": 1}
    moves = choose_repositions(idle, {}, demand, MERCHANTS, TRAVEL, DispatchConfig())
    # both prefer m1 (nearer), but half the demand is at m2: one courier waits at each
    assert sorted(m.merchant_id for m in moves) == ["m1", "m2"]
    # one order seen at m1 draws one courier, however many are idle
    three = [(f"c{i}", destination(south, 50 * i, 90), SPEED, None) for i in range(3)]
    assert len(choose_repositions(three, {}, {"m1": 1}, MERCHANTS, TRAVEL, DispatchConfig())) == 1
    assert len(choose_repositions(three, {}, {"m1": 2}, MERCHANTS, TRAVEL, DispatchConfig())) == 2
    # with a courier already waiting at m1, the first to choose goes to m2 instead
    moves = choose_repositions(idle[:1], {"m1": 1}, demand, MERCHANTS, TRAVEL, DispatchConfig())
    assert [m.merchant_id for m in moves] == ["m2"]


def test_nothing_moves_without_demand_or_when_turned_off() -> None:
    far = destination(CENTRE, 2500, 90)
    assert choose_repositions([("c1", far, SPEED, None)], {}, {}, MERCHANTS, TRAVEL, DispatchConfig()) == []
    off = DispatchConfig(max_reposition_travel_s=0)
    assert choose_repositions([("c1", far, SPEED, None)], {}, {"m1": 3}, MERCHANTS, TRAVEL, off) == []


def _delivered_far_away(d: Dispatcher) -> int:
    """c1 delivers an order 2.5 km east of m1 and is idle there; returns when it is free."""
    d.start_shift("c1", CENTRE, now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 2500, 90), now=0)
    t = 480
    assert [a.order_ids for a in d.tick(now=t).assignments] == [("o1",)]
    pickup, dropoff = d.route("c1").stops
    d.arrived("c1", now=pickup.arrive_at)
    d.picked_up("c1", "o1", now=pickup.service_at)
    d.update_position("c1", dropoff.location, now=dropoff.arrive_at)
    d.arrived("c1", now=dropoff.arrive_at)
    d.delivered("c1", "o1", now=dropoff.service_at)
    return dropoff.depart_at


def test_the_dispatcher_sends_an_idle_courier_back_toward_the_orders(dispatcher: Dispatcher) -> None:
    free = _delivered_far_away(dispatcher)
    result = dispatcher.tick(now=free)
    assert result.assignments == ()
    [move] = result.repositions
    [stop] = move.route.stops
    ride = TRAVEL.travel_s(destination(CENTRE, 2500, 90), CENTRE, 4.5)
    assert (stop.kind, stop.merchant_id, stop.order_ids, stop.arrive_at) == (
        StopKind.REPOSITION,
        "m1",
        (),
        free + ride,
    )
    assert dispatcher.route("c1") == move.route
    assert dispatcher.courier("c1").status is CourierStatus.BUSY
    event = dispatcher.store.events()[-1]
    assert (event.kind, event.merchant_id, event.data) == (
        "courier.repositioned",
        "m1",
        {"arrive_at": free + ride},
    )
    # on its way it is not sent anywhere else
    assert dispatcher.tick(now=free + 60).repositions == ()
    # there, the stop is done and it waits, idle, at the merchant
    dispatcher.update_position("c1", CENTRE, now=free + ride)
    dispatcher.arrived("c1", now=free + ride)
    assert dispatcher.route("c1").stops == ()
    assert dispatcher.courier("c1").status is CourierStatus.IDLE
    assert dispatcher.tick(now=free + ride + 60).repositions == ()


def test_work_at_the_merchant_it_is_heading_to_starts_there(dispatcher: Dispatcher) -> None:
    free = _delivered_far_away(dispatcher)
    [move] = dispatcher.tick(now=free).repositions
    arrive = move.route.stops[0].arrive_at
    dispatcher.place_order("o2", "m1", destination(CENTRE, 800, 0), now=free + 60)
    # on its way it cannot start new work, so nothing is committed to it yet
    assert dispatcher.tick(now=free + 120).assignments == ()
    # its arrival is due but not reported yet: the plan starts at m1 now, with no empty stop
    # at m1 before the pickup there
    t = arrive + 57
    [assignment] = dispatcher.tick(now=t).assignments
    stops = dispatcher.route("c1").stops
    assert [s.kind for s in stops] == [StopKind.PICKUP, StopKind.DROPOFF]
    assert (stops[0].merchant_id, stops[0].arrive_at) == ("m1", t)
    assert assignment.route.stops == stops


def test_a_new_dispatcher_on_the_same_store_knows_the_recent_demand(dispatcher: Dispatcher) -> None:
    free = _delivered_far_away(dispatcher)
    # another process takes over the city (as after a lease failover): it never saw o1 open
    successor = Dispatcher(store=dispatcher.store, config=dispatcher.config)
    [move] = successor.tick(now=free).repositions
    assert (move.courier_id, move.route.stops[0].merchant_id) == ("c1", "m1")


def test_the_recall_waits_for_a_tick_the_policy_is_asked_in(dispatcher: Dispatcher) -> None:
    free = _delivered_far_away(dispatcher)
    successor = Dispatcher(store=dispatcher.store, config=dispatcher.config)
    dispatcher.end_shift("c1", now=free)
    assert successor.tick(now=free).available_couriers == 0  # nobody to ask about
    dispatcher.start_shift("c1", destination(CENTRE, 2500, 90), now=free + 60, shift_end=4 * 3600)
    [move] = successor.tick(now=free + 60).repositions
    assert move.route.stops[0].merchant_id == "m1"


def test_a_dispatcher_back_from_a_pause_recalls_what_it_missed(dispatcher: Dispatcher) -> None:
    successor = Dispatcher(store=dispatcher.store, config=dispatcher.config)
    assert successor.tick(now=0).repositions == ()  # it ticks once, then another process leads
    free = _delivered_far_away(dispatcher)
    [move] = successor.tick(now=free).repositions
    assert move.route.stops[0].merchant_id == "m1"


class _Recorder(GreedyPolicy):
    """The baseline, noting how many recalled placements each tick gave it."""

    def __init__(self) -> None:
        self.recalled: list[int] = []

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]:
        self.recalled.append(len(snapshot.placements))
        return super().decide(snapshot, travel, config)


def test_the_demand_is_recalled_first_after_a_pause_and_when_asked(config: DispatchConfig) -> None:
    policy = _Recorder()
    d = Dispatcher(config=config, policy=policy)
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    d.start_shift("c1", destination(CENTRE, 4000, 90), now=0, shift_end=8 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 800, 0), now=0)
    for now in (60, 120, 420, 480):  # the first tick, the next, a tick 5 minutes on, and after
        d.tick(now)
    d.recall_demand()  # as when this process takes the city's lease
    d.tick(540)
    d.place_order("o2", "m1", destination(CENTRE, 800, 0), now=4000)
    d.tick(5000)  # more than 5 minutes without a tick: o2 is recalled, o1 is over an hour old
    assert policy.recalled == [1, 0, 0, 0, 1, 1]


def test_the_greedy_baseline_never_repositions(config: DispatchConfig) -> None:
    d = Dispatcher(config=config, policy=GreedyPolicy())
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    free = _delivered_far_away(d)
    assert d.tick(now=free).repositions == ()
    assert d.route("c1").stops == ()


def test_a_quote_counts_a_courier_on_its_way_to_wait_at_the_merchant(dispatcher: Dispatcher) -> None:
    free = _delivered_far_away(dispatcher)
    [move] = dispatcher.tick(now=free).repositions
    arrive = move.route.stops[0].arrive_at
    now = free + 60
    quote = dispatcher.quote("m1", destination(CENTRE, 800, 0), now=now)
    # nobody is idle, but c1 will be at m1 at `arrive`: food (ready in 10 minutes) is collected
    # half a pickup service after that, not after a courier frees up somewhere in 20 minutes
    half = dispatcher.config.pickup_service_s // 2
    assert arrive - now == 663
    assert quote.pickup_eta == max(quote.ready_at, arrive + half) == now + 663 + half
