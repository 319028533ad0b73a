"""The Dispatcher's state machines, courier events, ETAs and determinism."""

from __future__ import annotations

import pytest

from dispatch import (
    Conflict,
    CourierOffShift,
    CourierStatus,
    DeliveryArea,
    DispatchConfig,
    Dispatcher,
    GreedyPolicy,
    IllegalTransition,
    InvalidInput,
    Merchant,
    OrderStatus,
    StopKind,
    UnknownCourier,
    UnknownOrder,
    etas,
)
from dispatch.admission import Supply
from simulations.city import synthetic_city
from simulations.world import World
from tests.conftest import CENTRE, destination

#: Supply admission (on by default) is turned off where a test's subject is another rule and its
#: orders must wait for the one courier: admission counts a busy courier only from where its plan
#: ends, so it refuses an order that courier, waiting at the merchant, would take along (a pickup
#: update). Supply admission has its own tests in tests/dispatch/test_supply_admission.py.
WITHOUT_SUPPLY_ADMISSION = pytest.mark.parametrize(
    "config", [DispatchConfig(city="test", supply_admission=False)], ids=["no-supply-admission"]
)


def _assigned(d: Dispatcher) -> tuple[str, str]:
    d.start_shift("c1", destination(CENTRE, 400, 90), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0)
    result = d.tick(now=420)
    assert [(a.courier_id, a.order_ids) for a in result.assignments] == [("c1", ("o1",))]
    return "c1", "o1"


def test_order_lifecycle_and_events(dispatcher: Dispatcher) -> None:
    cid, oid = _assigned(dispatcher)
    route = dispatcher.route(cid)
    assert [s.kind for s in route.stops] == [StopKind.PICKUP, StopKind.DROPOFF]
    pickup, dropoff = route.stops
    assert pickup.service_at >= dispatcher.order(oid).ready_at == 600
    assert dropoff.service_at > pickup.depart_at
    assert dispatcher.order(oid).status is OrderStatus.ASSIGNED
    assert dispatcher.courier(cid).status is CourierStatus.BUSY

    dispatcher.arrived(cid, now=pickup.arrive_at)
    with pytest.raises(IllegalTransition):
        dispatcher.delivered(cid, oid, now=pickup.arrive_at)  # not picked up yet
    dispatcher.picked_up(cid, oid, now=610)
    with pytest.raises(IllegalTransition, match="can no longer be cancelled"):
        dispatcher.cancel_order(oid, now=611)
    route = dispatcher.route(cid)
    assert [s.kind for s in route.stops] == [StopKind.DROPOFF]
    dispatcher.arrived(cid, now=route.stops[0].arrive_at)
    dispatcher.delivered(cid, oid, now=route.stops[0].service_at)
    assert dispatcher.order(oid).status is OrderStatus.DELIVERED
    assert dispatcher.courier(cid).status is CourierStatus.IDLE
    assert dispatcher.route(cid).stops == ()
    kinds = [e.kind for e in dispatcher.store.events() if e.order_id == oid]
    # the arrival at the merchant is the courier's event and names the merchant, not the order;
    # the arrival at the customer names the order
    assert kinds == [
        "order.placed",
        "order.assigned",
        "order.picked_up",
        "courier.arrived",
        "order.delivered",
    ]


def test_cancel_before_pickup_frees_the_courier(dispatcher: Dispatcher) -> None:
    cid, oid = _assigned(dispatcher)
    dispatcher.cancel_order(oid, now=500)
    assert dispatcher.order(oid).status is OrderStatus.CANCELLED
    assert dispatcher.route(cid).stops == ()
    assert dispatcher.courier(cid).status is CourierStatus.IDLE
    with pytest.raises(IllegalTransition):
        dispatcher.cancel_order(oid, now=501)


def test_release_returns_the_order_to_the_pool(dispatcher: Dispatcher) -> None:
    cid, oid = _assigned(dispatcher)
    dispatcher.release(cid, oid, now=450)
    order = dispatcher.order(oid)
    assert order.status is OrderStatus.PLACED and order.courier_id is None
    # the next tick may give it to the same (only) courier again
    assert [a.order_ids for a in dispatcher.tick(now=460).assignments] == [("o1",)]


def test_end_shift_hands_back_unpicked_orders(dispatcher: Dispatcher) -> None:
    cid, oid = _assigned(dispatcher)
    courier = dispatcher.end_shift(cid, now=430)
    assert courier.status is CourierStatus.OFF_SHIFT
    assert dispatcher.order(oid).status is OrderStatus.PLACED
    with pytest.raises(CourierOffShift):
        dispatcher.update_position(cid, CENTRE, now=431)
    assert dispatcher.tick(now=440).assignments == ()


def test_end_shift_keeps_picked_up_orders_to_deliver(dispatcher: Dispatcher) -> None:
    cid, oid = _assigned(dispatcher)
    dispatcher.arrived(cid, now=500)
    dispatcher.picked_up(cid, oid, now=610)
    assert dispatcher.end_shift(cid, now=620).status is CourierStatus.BUSY
    drop = dispatcher.route(cid).stops[0]
    dispatcher.arrived(cid, now=drop.arrive_at)
    dispatcher.delivered(cid, oid, now=drop.service_at)
    assert dispatcher.courier(cid).status is CourierStatus.OFF_SHIFT


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda d: d.update_position("ghost", CENTRE, now=1), UnknownCourier),  # unknown courier
        (lambda d: d.picked_up("c1", "ghost", now=1), IllegalTransition),  # idle courier: no stops
        (lambda d: d.eta("ghost", now=1), UnknownOrder),  # unknown order
        (lambda d: d.start_shift("c1", CENTRE, now=1, shift_end=100), Conflict),  # already on shift
        (lambda d: d.start_shift("c2", CENTRE, now=100, shift_end=100), InvalidInput),  # shift ends now
        (
            lambda d: d.start_shift("c2", CENTRE, now=0, shift_end=100, capacity=0),
            InvalidInput,
        ),  # no capacity
    ],
)
def test_bad_courier_input(dispatcher: Dispatcher, call, error) -> None:  # type: ignore[no-untyped-def]
    dispatcher.start_shift("c1", CENTRE, now=0, shift_end=3600)
    before = dispatcher.store.events()
    with pytest.raises(error):
        call(dispatcher)
    assert dispatcher.store.events() == before


def test_orders_of_another_courier_are_refused(dispatcher: Dispatcher) -> None:
    _cid, oid = _assigned(dispatcher)
    dispatcher.start_shift("c2", CENTRE, now=0, shift_end=3600)
    dispatcher.place_order("o2", "m1", destination(CENTRE, 700, 0), now=430)
    dispatcher.tick(now=1000)
    with pytest.raises(Conflict, match="not assigned to courier 'c2'"):
        dispatcher.picked_up("c2", oid, now=1001)


def test_eta_before_and_after_assignment(dispatcher: Dispatcher) -> None:
    dispatcher.start_shift("c1", destination(CENTRE, 900, 90), now=0, shift_end=4 * 3600)
    order = dispatcher.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0)
    estimate = dispatcher.eta("o1", now=0)
    assert estimate.estimated and estimate.courier_id is None
    assert estimate.pickup_at is not None and estimate.pickup_at >= order.ready_at
    assert estimate.dropoff_at is not None and estimate.dropoff_at <= order.window.end
    dispatcher.tick(now=420)
    eta = dispatcher.eta("o1", now=420)
    route = dispatcher.route("c1")
    assert not eta.estimated and eta.courier_id == "c1"
    assert eta.courier_arrival_at == route.stops[0].arrive_at
    assert eta.pickup_at == route.stops[0].service_at
    assert eta.dropoff_at == route.stops[1].service_at
    # the courier has not shown up by its planned arrival: the next tick moves the plan (and the
    # ETA with it, the same in both), it does not stay in the past
    late_now = route.stops[0].arrive_at + 300
    assert dispatcher.eta("o1", now=late_now) == eta  # reads alone move nothing
    dispatcher.tick(now=late_now)
    late = dispatcher.eta("o1", now=late_now)
    assert late.courier_arrival_at is not None and late.courier_arrival_at >= late_now
    assert late.courier_arrival_at == dispatcher.route("c1").stops[0].arrive_at


def test_same_seed_same_decisions() -> None:
    def run(seed: int) -> tuple[list[tuple[str, str, int]], dict[str, float]]:
        d = Dispatcher(config=DispatchConfig(city="det"))
        report = World(d, synthetic_city(seed=seed, n_orders=30)).run()
        return [(e.id, e.kind, e.at) for e in d.store.events()], report.summary()

    assert run(3) == run(3)
    assert run(3)[0] != run(4)[0]


def test_greedy_policy_serves_first_come_first(config: DispatchConfig, dispatcher: Dispatcher) -> None:
    d = Dispatcher(store=dispatcher.store, config=config, policy=GreedyPolicy())
    d.start_shift("c1", destination(CENTRE, 300, 0), now=0, shift_end=3600)
    d.place_order("o2", "m1", destination(CENTRE, 900, 0), now=5)
    d.place_order("o1", "m1", destination(CENTRE, 900, 90), now=10)
    # one idle courier: the order placed first gets it, immediately, alone
    assert [a.order_ids for a in d.tick(now=20).assignments] == [("o2",)]
    assert d.tick(now=30).assignments == ()


def _waiting_at_merchant(d: Dispatcher) -> None:
    """c1 stands at m1 for o1, whose food is ready at 600; it has arrived at 420."""
    d.start_shift("c1", CENTRE, now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1200, 0), now=0)
    assert [a.order_ids for a in d.tick(now=420).assignments] == [("o1",)]
    d.arrived("c1", now=420)
    d.place_order("o2", "m1", destination(CENTRE, 1600, 10), now=450, ready_at=600)


@WITHOUT_SUPPLY_ADMISSION
def test_an_order_joins_the_pickup_its_merchant_courier_waits_for(dispatcher: Dispatcher) -> None:
    _waiting_at_merchant(dispatcher)
    result = dispatcher.tick(now=480)
    assert [(a.courier_id, a.order_ids) for a in result.assignments] == [("c1", ("o2",))]
    route = dispatcher.route("c1")
    # one pickup of both, at the time o1's food was to be collected anyway, then both doors
    assert [(s.kind, set(s.order_ids)) for s in route.stops] == [
        (StopKind.PICKUP, {"o1", "o2"}),
        (StopKind.DROPOFF, {"o1"}),
        (StopKind.DROPOFF, {"o2"}),
    ]
    assert route.arrived_at == 420 and route.stops[0].service_at == 600
    assert dispatcher.order("o2").status is OrderStatus.ASSIGNED
    assert dispatcher.order("o2").courier_id == "c1"
    assigned = [e for e in dispatcher.store.events() if e.kind == "order.assigned" and e.order_id == "o2"]
    assert [e.data["pickup_at"] for e in assigned] == [600]
    assert dispatcher.eta("o1", now=480).dropoff_at == route.stops[1].service_at
    # the courier carries the plan out: both collected at once, both delivered
    dispatcher.picked_up("c1", "o1", now=600)
    dispatcher.picked_up("c1", "o2", now=600)
    for stop in dispatcher.route("c1").stops:
        dispatcher.arrived("c1", now=stop.arrive_at)
        dispatcher.delivered("c1", stop.order_ids[0], now=stop.service_at)
    assert {dispatcher.order(o).status for o in ("o1", "o2")} == {OrderStatus.DELIVERED}
    assert dispatcher.courier("c1").status is CourierStatus.IDLE


@WITHOUT_SUPPLY_ADMISSION
def test_a_cancelled_joined_order_leaves_the_pickup_as_it_was(dispatcher: Dispatcher) -> None:
    _waiting_at_merchant(dispatcher)
    dispatcher.tick(now=480)
    dispatcher.cancel_order("o2", now=500)
    route = dispatcher.route("c1")
    assert [(s.kind, s.order_ids) for s in route.stops] == [
        (StopKind.PICKUP, ("o1",)),
        (StopKind.DROPOFF, ("o1",)),
    ]
    assert route.stops[0].service_at == 600


def test_no_pickup_update_when_turned_off() -> None:
    # without supply admission, as the tests of the update above (o2 waits for c1)
    d = Dispatcher(config=DispatchConfig(city="test", pickup_updates=False, supply_admission=False))
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    _waiting_at_merchant(d)
    assert d.tick(now=480).assignments == ()
    assert d.order("o2").status is OrderStatus.PLACED


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pickup_updates": "yes"}, "pickup_updates must be true or false, got 'yes'"),  # a string
        ({"refuse_infeasible_promises": 1}, "refuse_infeasible_promises must be true or false"),  # a number
        ({"join_max_wait_s": -1}, "join_max_wait_s must be a number >= 0"),
        ({"join_max_delay_s": True}, "join_max_delay_s must be a number >= 0"),  # a bool is no duration
        ({"bundle_choice_max_orders": -1}, "bundle_choice_max_orders must be a number >= 0"),
        ({"bundle_choice_time_s": "fast"}, "bundle_choice_time_s must be a number >= 0"),
    ],
)
def test_bad_config_is_refused_with_the_field_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        DispatchConfig(city="t", **overrides)  # type: ignore[arg-type]


@WITHOUT_SUPPLY_ADMISSION
def test_a_held_order_handed_over_later_after_an_update_is_rescheduled(dispatcher: Dispatcher) -> None:
    _waiting_at_merchant(dispatcher)
    # o3's door is on the way to o1's: o1 is handed over later, and its customer is told
    dispatcher.place_order("o3", "m1", destination(CENTRE, 500, 0), now=460, ready_at=600)
    before = dispatcher.route("c1").stops[1].service_at
    dispatcher.tick(now=480)
    route = dispatcher.route("c1")
    assert [s.order_ids for s in route.stops] == [("o1", "o2", "o3"), ("o3",), ("o1",), ("o2",)]
    after = route.stops[2].service_at
    assert after > before
    rescheduled = [e for e in dispatcher.store.events() if e.kind == "order.rescheduled"]
    assert [(e.order_id, e.courier_id, e.data["pickup_at"], e.data["dropoff_at"]) for e in rescheduled] == [
        ("o1", "c1", 600, after)
    ]
    assert dispatcher.eta("o1", now=480).dropoff_at == after


@WITHOUT_SUPPLY_ADMISSION
def test_a_held_order_whose_times_stay_is_not_rescheduled(dispatcher: Dispatcher) -> None:
    _waiting_at_merchant(dispatcher)
    dispatcher.tick(now=480)  # o2's door lies beyond o1's: o1 keeps its times
    assert [s.order_ids for s in dispatcher.route("c1").stops][1:] == [("o1",), ("o2",)]
    assert not [e for e in dispatcher.store.events() if e.kind == "order.rescheduled"]


@WITHOUT_SUPPLY_ADMISSION  # o1 and o2 wait for the one courier, busy with o0
def test_the_merchant_board_searches_supply_once_and_agrees_with_eta(
    dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = dispatcher
    d.start_shift("c1", destination(CENTRE, 800, 90), now=0, shift_end=4 * 3600)
    d.place_order("o0", "m1", destination(CENTRE, 1200, 0), now=60, ready_at=60)
    assert [a.order_ids for a in d.tick(now=120).assignments] == [("o0",)]
    for i, bearing in ((1, 120), (2, 240)):  # these two wait for a courier
        d.place_order(f"o{i}", "m1", destination(CENTRE, 1200, bearing), now=130)
    searches = []
    search = etas.supply_near

    def counted(ctx: Dispatcher, merchant: Merchant, now: int) -> Supply:
        searches.append(1)
        return search(ctx, merchant, now)

    monkeypatch.setattr(etas, "supply_near", counted)
    rows = d.merchant_board("m1", now=180)
    assert len(searches) == 1  # not one per waiting order
    assert [(row.order.id, row.order.status) for row in rows] == [
        ("o0", OrderStatus.ASSIGNED),
        ("o1", OrderStatus.PLACED),
        ("o2", OrderStatus.PLACED),
    ]
    monkeypatch.setattr(etas, "supply_near", search)
    assert [row.eta for row in rows] == [d.eta(row.order.id, now=180) for row in rows]
    # closed orders only when asked, and the limit counts what is shown
    d.cancel_order("o2", now=190)
    assert [row.order.id for row in d.merchant_board("m1", now=200)] == ["o0", "o1"]
    closed = [row for row in d.merchant_board("m1", now=200, include_closed=True) if row.eta is None]
    assert [(row.order.id, row.order.status) for row in closed] == [("o2", OrderStatus.CANCELLED)]
    assert [row.order.id for row in d.merchant_board("m1", now=200, limit=1)] == ["o0"]
