"""One ETA: the order's ETA, its courier's route and the events agree; reads move nothing; an
``order.eta_changed`` event is written when an ETA moves by the threshold or more, not below."""

from __future__ import annotations

import pytest

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, EventKind, Merchant
from tests.conftest import CENTRE, destination


@pytest.fixture
def config() -> DispatchConfig:
    return DispatchConfig(city="test", eta_change_threshold_s=60)


def _assigned(d: Dispatcher) -> None:
    d.start_shift("c1", destination(CENTRE, 900, 90), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0)
    assert d.tick(now=420).assignments


def _changes(d: Dispatcher) -> list[dict[str, object]]:
    return [e.data for e in d.events() if e.kind == EventKind.ORDER_ETA_CHANGED]


def test_eta_route_and_events_agree_and_reads_move_nothing(dispatcher: Dispatcher) -> None:
    _assigned(dispatcher)
    route = dispatcher.route("c1")
    assigned = next(e for e in dispatcher.events() if e.kind == EventKind.ORDER_ASSIGNED)
    for now in (420, 500, route.stops[0].arrive_at + 200):  # later reads, nothing happening
        eta = dispatcher.eta("o1", now=now)
        assert (eta.courier_arrival_at, eta.pickup_at, eta.dropoff_at) == (
            route.stops[0].arrive_at,
            route.stops[0].service_at,
            route.stops[1].service_at,
        )
        assert assigned.data == {
            "courier_arrival_at": eta.courier_arrival_at,
            "pickup_at": eta.pickup_at,
            "dropoff_at": eta.dropoff_at,
            "status": "enroute_to_pickup",
        }
        assert dispatcher.route("c1") == route


@pytest.mark.parametrize(
    ("late_s", "fires"),
    [
        (59, False),  # one second short of the threshold
        (60, True),  # exactly at it
    ],
)
def test_eta_changed_fires_from_the_threshold(dispatcher: Dispatcher, late_s: int, fires: bool) -> None:
    _assigned(dispatcher)
    planned = dispatcher.route("c1")
    first = planned.stops[0]
    # the food is ready before the courier: its lateness moves the pickup second for second
    assert dispatcher.order("o1").ready_at < first.service_at
    now = first.arrive_at + late_s
    dispatcher.tick(now=now)
    changes = _changes(dispatcher)
    eta = dispatcher.eta("o1", now=now)
    route = dispatcher.route("c1")
    if fires:
        assert changes == [
            {
                "cause": "courier_late",
                "courier_arrival_at": now,
                "pickup_at": first.service_at + late_s,
                "dropoff_at": planned.stops[1].service_at + late_s,
                "previous_pickup_at": first.service_at,
                "previous_dropoff_at": planned.stops[1].service_at,
            }
        ]
        assert (eta.pickup_at, eta.dropoff_at) == (route.stops[0].service_at, route.stops[1].service_at)
        assert eta.pickup_at == changes[0]["pickup_at"]
    else:
        assert changes == []
        assert route == planned and eta.pickup_at == first.service_at


def test_courier_events_write_eta_changed_with_their_cause(dispatcher: Dispatcher) -> None:
    _assigned(dispatcher)
    planned = dispatcher.route("c1")
    first = planned.stops[0]
    # arrives 3 min late (no tick in between): the drop-off moves 3 min
    dispatcher.arrived("c1", now=first.arrive_at + 180)
    (change,) = _changes(dispatcher)
    assert change["cause"] == "courier_late"
    assert change["dropoff_at"] == planned.stops[1].service_at + 180
    assert change["dropoff_at"] == dispatcher.route("c1").stops[1].service_at
    # picked up on time after that: nothing moves, no new event
    dispatcher.picked_up("c1", "o1", now=dispatcher.route("c1").stops[0].service_at)
    assert len(_changes(dispatcher)) == 1


def test_threshold_is_configurable() -> None:
    d = Dispatcher(config=DispatchConfig(city="t", eta_change_threshold_s=600))
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    _assigned(d)
    first = d.route("c1").stops[0]
    d.arrived("c1", now=first.arrive_at + 300)
    assert _changes(d) == []
