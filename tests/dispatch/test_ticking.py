"""One decision cycle (dispatch.ticking): snapshot -> policy -> plans -> one change, all or nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, Merchant, StopKind
from dispatch.geo import TravelModel
from dispatch.matching import Decision, Snapshot
from dispatch.models import EventKind, OrderStatus, Placement
from dispatch.ticking import TickResult, recent_placements, run_tick
from tests.conftest import CENTRE, destination


class Scripted:
    """A policy that answers with what ``decide`` returns, and keeps the snapshots it saw."""

    name = "scripted"

    def __init__(self, decide: Callable[[Snapshot], list[Decision]]) -> None:
        self._decide = decide
        self.seen: list[Snapshot] = []

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]:
        self.seen.append(snapshot)
        return self._decide(snapshot)


@pytest.fixture
def city() -> Dispatcher:
    d = Dispatcher(config=DispatchConfig(city="t"))
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=300), now=0)
    d.add_merchant(Merchant("m2", destination(CENTRE, 1500, 90), DeliveryArea(radius_m=3000)), now=0)
    for cid, bearing in (("c1", 0), ("c2", 180)):
        d.start_shift(cid, destination(CENTRE, 400, bearing), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1200, 45), now=60)
    d.place_order("o2", "m1", destination(CENTRE, 1000, 300), now=90)
    return d


def tick(d: Dispatcher, policy: Scripted, now: int = 400, recall: bool = False) -> TickResult:
    return run_tick(d.store, policy, d.travel, d.config, now, recall=recall)


def test_the_snapshot_holds_the_open_orders_and_the_supply_by_id(city: Dispatcher) -> None:
    policy = Scripted(lambda s: [])
    result = tick(city, policy)
    (snapshot,) = policy.seen
    assert [o.id for o in snapshot.orders] == ["o1", "o2"]
    assert [(s.courier.id, s.idle, s.free_at) for s in snapshot.supply] == [
        ("c1", True, 400),
        ("c2", True, 400),
    ]
    assert set(snapshot.merchants) == {"m1", "m2"} and snapshot.placements == ()
    assert result == TickResult(now=400, assignments=(), open_orders=2, available_couriers=2)


def test_a_decision_becomes_a_plan_events_with_its_times_and_busy_courier(city: Dispatcher) -> None:
    before = len(city.store.events())
    result = tick(city, Scripted(lambda s: [Decision("c1", ("o1", "o2"), cost=7)]))
    (a,) = result.assignments
    assert (a.courier_id, a.order_ids, a.cost) == ("c1", ("o1", "o2"), 7.0)
    assert city.route("c1") == a.route and a.route.planned_at == 400
    assert [s.kind for s in a.route.stops] == [StopKind.PICKUP, StopKind.DROPOFF, StopKind.DROPOFF]
    assert result.open_orders == 0
    assert city.order("o1").status is OrderStatus.ASSIGNED and city.order("o1").courier_id == "c1"
    assert city.courier("c1").status.value == "busy" and city.courier("c2").status.value == "idle"
    new = city.store.events()[before:]
    assert [e.kind for e in new] == [EventKind.ORDER_ASSIGNED] * 2
    pickup = a.route.stops[0]
    for event in new:
        drop = next(s for s in a.route.stops if s.kind is StopKind.DROPOFF and event.order_id in s.order_ids)
        assert event.data == {
            "courier_arrival_at": pickup.arrive_at,
            "pickup_at": pickup.service_at,
            "dropoff_at": drop.service_at,
            "status": "enroute_to_pickup",
        }


@pytest.mark.parametrize(
    ("decisions", "message"),
    [
        # one courier, two plans
        ([Decision("c1", ("o1",), 1), Decision("c1", ("o2",), 1)], "gave courier 'c1' two plans"),
        # a courier the snapshot did not offer
        ([Decision("c9", ("o1",), 1)], "gave courier 'c9' two plans"),
        # one order, two couriers
        ([Decision("c1", ("o1",), 1), Decision("c2", ("o1",), 1)], "assigned order 'o1' twice or not open"),
        # an order that is not open
        ([Decision("c1", ("o7",), 1)], "assigned order 'o7' twice or not open"),
        # a reposition to nowhere
        ([Decision("c1", (), 1, reposition_to="m9")], "repositioned courier 'c1' to an unknown merchant"),
        # joining a pickup the courier does not wait for
        ([Decision("c1", ("o1",), 1, join=True)], "joined orders to courier 'c1'"),
    ],
)
def test_a_wrong_decision_writes_nothing(city: Dispatcher, decisions: list[Decision], message: str) -> None:
    before = city.store.events()
    with pytest.raises(RuntimeError, match=message):
        tick(city, Scripted(lambda s: decisions))
    assert city.store.events() == before
    assert [city.order(o).status for o in ("o1", "o2")] == [OrderStatus.PLACED] * 2
    assert city.store.get_route("c1") is None and city.store.get_route("c2") is None


def test_a_reposition_is_one_stop_without_orders(city: Dispatcher) -> None:
    result = tick(city, Scripted(lambda s: [Decision("c2", (), 90, reposition_to="m2")]))
    (move,) = result.repositions
    (stop,) = move.route.stops
    m2 = city.merchant("m2").location
    arrive = 400 + city.travel.travel_s(city.courier("c2").location, m2, city.courier("c2").speed_mps)
    assert (stop.kind, stop.order_ids, stop.merchant_id, stop.arrive_at) == (
        StopKind.REPOSITION,
        (),
        "m2",
        arrive,
    )
    event = city.store.events()[-1]
    assert (event.kind, event.courier_id, event.data) == (
        EventKind.COURIER_REPOSITIONED,
        "c2",
        {"arrive_at": arrive},
    )
    # a courier with a plan is not sent anywhere
    with pytest.raises(RuntimeError, match="repositioned courier 'c2' that has a plan"):
        tick(city, Scripted(lambda s: [Decision("c2", (), 1, reposition_to="m1")]), now=460)


def test_no_courier_no_question(city: Dispatcher) -> None:
    for cid in ("c1", "c2"):
        city.end_shift(cid, now=100)
    policy = Scripted(lambda s: [])
    assert tick(city, policy).available_couriers == 0
    assert policy.seen == []


def test_recall_gives_the_placements_of_the_demand_window_newest_first(city: Dispatcher) -> None:
    city.place_order("o3", "m2", destination(CENTRE, 1500, 60), now=3000)
    assert recent_placements(city.store, now=3000, window_s=3600) == (
        Placement(3000, "o3", "m2"),
        Placement(90, "o2", "m1"),
        Placement(60, "o1", "m1"),
    )
    # the window ends the search: older placements are not read
    assert recent_placements(city.store, now=3000, window_s=2900) == (Placement(3000, "o3", "m2"),)
    # nothing placed after now
    assert recent_placements(city.store, now=80, window_s=3600) == (Placement(60, "o1", "m1"),)
    policy = Scripted(lambda s: [])
    tick(city, policy, now=3100, recall=True)
    assert policy.seen[0].placements == recent_placements(city.store, now=3100, window_s=3600)
