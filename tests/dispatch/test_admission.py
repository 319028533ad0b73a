"""Admission: the delivery area and the promise, at their exact boundaries."""

from __future__ import annotations

import math

import pytest

from dispatch import (
    DeliveryArea,
    DispatchConfig,
    Dispatcher,
    DuplicateId,
    InvalidInput,
    InvalidLocation,
    InvalidWindow,
    Location,
    Merchant,
    OutsideDeliveryArea,
    UnknownMerchant,
    Window,
    WindowInfeasible,
)
from tests.conftest import CENTRE, destination


def _events(d: Dispatcher) -> int:
    return len(d.store.events())


def _courier_at(d: Dispatcher, where: Location = CENTRE) -> None:
    """An idle courier waiting at the merchant: supply admission (on by default) then judges an
    ASAP order by the direct ride alone, so the rule under test decides."""
    d.start_shift("c1", where, now=0, shift_end=4 * 3600)


@pytest.mark.parametrize(
    ("distance_m", "accepted"),
    [
        (0.0, True),  # at the merchant's door
        (2999.0, True),  # just inside
        (2999.99, True),  # a centimetre inside the 3 km radius
        (3000.02, False),  # two centimetres outside
        (3200.0, False),  # the 3.2 km customer of the user story
    ],
)
def test_radius_boundary(dispatcher: Dispatcher, distance_m: float, accepted: bool) -> None:
    dropoff = destination(CENTRE, distance_m, bearing_deg=37)
    # a generous promise and a courier at the merchant, so that only the area decides
    dispatcher.update_merchant(
        Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=60, promise_s=7200), now=0
    )
    _courier_at(dispatcher)
    if accepted:
        assert dispatcher.place_order("o1", "m1", dropoff, now=10).id == "o1"
    else:
        before = _events(dispatcher)
        with pytest.raises(OutsideDeliveryArea) as info:
            dispatcher.place_order("o1", "m1", dropoff, now=10)
        assert info.value.details["radius_m"] == 3000
        assert info.value.details["distance_m"] == pytest.approx(distance_m, abs=0.1)
        assert "3000 m delivery radius" in str(info.value)
        assert _events(dispatcher) == before
        assert dispatcher.store.get_order("o1") is None


def test_refusal_names_distance_and_radius(dispatcher: Dispatcher) -> None:
    with pytest.raises(
        OutsideDeliveryArea, match=r"drop-off is 3200 m .* outside its 3000 m delivery radius"
    ):
        dispatcher.quote("m1", destination(CENTRE, 3200, 90), now=0)


def test_polygon_zone(config: DispatchConfig) -> None:
    d = Dispatcher(config=config)
    square = {
        "type": "Polygon",
        "coordinates": [[[13.40, 52.51], [13.42, 52.51], [13.42, 52.53], [13.40, 52.53], [13.40, 52.51]]],
    }
    d.add_merchant(Merchant("z", Location(52.52, 13.41), DeliveryArea(polygon=square)), now=0)
    _courier_at(d, Location(52.52, 13.41))
    assert d.quote("z", Location(52.525, 13.415), now=0).merchant_id == "z"
    with pytest.raises(OutsideDeliveryArea, match="outside its delivery zone"):
        d.quote("z", Location(52.535, 13.415), now=0)


def _ride_s(d: Dispatcher, dropoff: Location) -> int:
    return d.travel.travel_s(CENTRE, dropoff, d.config.reference_speed_mps)


def test_asap_promise_boundary(dispatcher: Dispatcher) -> None:
    cfg = dispatcher.config
    dropoff = destination(CENTRE, 2000, 0)
    after_ready = (
        cfg.pickup_service_s
        - cfg.pickup_service_s // 2
        + _ride_s(dispatcher, dropoff)
        + cfg.dropoff_service_s // 2
    )
    now = 1000
    _courier_at(dispatcher)  # at the merchant: the direct ride is the earliest drop-off
    latest_ready = now + cfg.promise_s - after_ready
    quote = dispatcher.quote("m1", dropoff, now, ready_at=latest_ready)
    assert quote.window == Window(now, now + 1800)
    assert not quote.scheduled
    with pytest.raises(WindowInfeasible) as info:
        dispatcher.quote("m1", dropoff, now, ready_at=latest_ready + 90)
    assert info.value.details["late_s"] == 90
    assert "1.5 min after the promised deadline" in str(info.value)


def test_asap_default_is_thirty_minutes_and_merchant_can_override(dispatcher: Dispatcher) -> None:
    _courier_at(dispatcher)
    assert dispatcher.quote("m1", destination(CENTRE, 500, 0), now=0).window == Window(0, 1800)
    dispatcher.update_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), promise_s=2400), now=0)
    assert dispatcher.quote("m1", destination(CENTRE, 500, 0), now=0).window == Window(0, 2400)


def test_slow_kitchen_cannot_promise_thirty_minutes(dispatcher: Dispatcher) -> None:
    dispatcher.update_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=1700), now=0)
    with pytest.raises(WindowInfeasible, match="min after the promised deadline"):
        dispatcher.place_order("o1", "m1", destination(CENTRE, 2500, 0), now=0)


@pytest.mark.parametrize(
    ("start", "length", "error"),
    [
        (600, 1800, None),  # exactly 30 minutes, starting in 10 minutes
        (0, 1800, None),  # starting now is not in the past
        (600, 1801, InvalidWindow),  # one second too long
        (-1, 600, InvalidWindow),  # starts before now
        (600, 0, InvalidWindow),  # ends when it starts
        (60, 1, WindowInfeasible),  # ends before the food can possibly arrive
    ],
)
def test_scheduled_window_rules(dispatcher: Dispatcher, start: int, length: int, error: type | None) -> None:
    now = 1000
    dropoff = destination(CENTRE, 1500, 200)
    if error is None:
        order = dispatcher.place_order(
            "o1", "m1", dropoff, now, window=Window(now + start, now + start + length)
        )
        assert order.scheduled and order.window.length_s == length
        assert order.ready_at >= now
    else:
        with pytest.raises(error):
            dispatcher.place_order("o1", "m1", dropoff, now, window=Window(now + start, now + start + length))
        assert dispatcher.store.get_order("o1") is None


def test_scheduled_food_is_timed_for_the_window(dispatcher: Dispatcher) -> None:
    now, start = 0, 7200
    dropoff = destination(CENTRE, 1500, 200)
    order = dispatcher.place_order("o1", "m1", dropoff, now, window=Window(start, start + 1800))
    cfg = dispatcher.config
    after_ready = (
        cfg.pickup_service_s
        - cfg.pickup_service_s // 2
        + _ride_s(dispatcher, dropoff)
        + cfg.dropoff_service_s // 2
    )
    assert order.ready_at + after_ready == start


@pytest.mark.parametrize(
    ("lat", "lng"),
    [
        (91.0, 0.0),  # latitude above the pole
        (-90.5, 0.0),  # below the pole
        (0.0, 180.5),  # longitude out of range
        (math.nan, 13.4),  # NaN
        (52.5, math.inf),  # infinity
    ],
)
def test_bad_coordinates_are_refused_before_anything(lat: float, lng: float) -> None:
    with pytest.raises(InvalidLocation):
        Location(lat, lng)


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda d: d.place_order("o1", "nope", CENTRE, now=0), UnknownMerchant),  # unknown merchant
        (lambda d: d.place_order("", "m1", CENTRE, now=0), InvalidInput),  # empty id
        (lambda d: d.place_order("o1", "m1", CENTRE, now=-5), InvalidInput),  # negative clock
        (lambda d: d.place_order("o1", "m1", (52.5, 13.4), now=0), InvalidInput),  # not a Location
        (lambda d: d.place_order("o1", "m1", CENTRE, now=0, ready_at=-1), InvalidInput),  # ready in the past
    ],
)
def test_bad_order_input_writes_nothing(dispatcher: Dispatcher, call, error) -> None:  # type: ignore[no-untyped-def]
    before = _events(dispatcher)
    with pytest.raises(error):
        call(dispatcher)
    assert _events(dispatcher) == before
    assert dispatcher.store.get_order("o1") is None


def test_duplicate_order_id(dispatcher: Dispatcher) -> None:
    _courier_at(dispatcher)
    first = dispatcher.place_order("o1", "m1", destination(CENTRE, 800, 10), now=0)
    before = _events(dispatcher)
    with pytest.raises(DuplicateId, match="o1"):
        dispatcher.place_order("o1", "m1", destination(CENTRE, 900, 10), now=5)
    assert dispatcher.order("o1") == first
    assert _events(dispatcher) == before


def test_bad_polygon_is_refused_at_registration(config: DispatchConfig) -> None:
    d = Dispatcher(config=config)
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    with pytest.raises(InvalidInput):
        d.add_merchant(Merchant("z", Location(0.5, 0.5), DeliveryArea(polygon=bowtie)), now=0)
    assert d.store.get_merchant("z") is None


def test_duplicate_merchant(dispatcher: Dispatcher) -> None:
    with pytest.raises(DuplicateId):
        dispatcher.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=10)), now=0)
