"""Admission that counts the couriers: an ASAP order is taken only if some courier, once free of
its plan and after the orders already waiting, can deliver it within the promise."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch import (
    DeliveryArea,
    DispatchConfig,
    Dispatcher,
    Location,
    MemoryStore,
    Merchant,
    NoCourierCapacity,
    Refused,
)
from dispatch.admission import Supply, _counted_on, after_pickup_s, supply_near
from dispatch.geo import haversine_m
from dispatch.timing import pickup_at
from simulations import mdrp
from tests.conftest import CENTRE, destination

MDRP_DATA = Path(__file__).resolve().parents[1] / "data" / "mdrp"

AREA = DeliveryArea(radius_m=3000)
#: a car: faster than the reference speed (4.5 m/s) the direct-ride rule times rides at
FAST = 7.0


@pytest.fixture
def config() -> DispatchConfig:
    # no confidence margin: these cities are exact to the second (the margin has its own test)
    return DispatchConfig(city="test", supply_admission=True, promise_margin_share=0.0)


def _earliest_dropoff(
    d: Dispatcher, merchant: Merchant, dropoff: Location, arrival: int, now: int, speed_mps: float = 4.5
) -> int:
    """The drop-off hand-over of a courier riding at ``speed_mps`` and reaching ``merchant`` at
    ``arrival``, by the stop rules."""
    pickup = pickup_at(arrival, now + merchant.prep_s, d.config.pickup_service_s)
    return pickup + after_pickup_s(d, merchant, dropoff, speed_mps)


def _nothing_written(d: Dispatcher, events_before: int, order_id: str) -> None:
    assert len(d.store.events()) == events_before
    assert d.store.get_order(order_id) is None


@pytest.mark.parametrize("slack_s", [0, -1])  # exactly on time; one second too late
def test_one_idle_courier_at_the_boundary(dispatcher: Dispatcher, slack_s: int) -> None:
    # a car 4 km away: its ride, not the kitchen (1 min), decides when the food is collected
    start = destination(CENTRE, 4000, 90)
    dispatcher.start_shift("c1", start, now=0, shift_end=4 * 3600, speed_mps=FAST)
    dropoff = destination(CENTRE, 2000, 0)
    probe = Merchant("m1", CENTRE, AREA, prep_s=60)
    arrival = dispatcher.travel.travel_s(start, CENTRE, FAST)
    # the ride to the customer is timed at the car's speed, not at the reference speed
    earliest = _earliest_dropoff(dispatcher, probe, dropoff, arrival, 0, FAST)
    at_reference = _earliest_dropoff(dispatcher, probe, dropoff, arrival, 0, 4.5)
    assert earliest + 60 < at_reference
    assert earliest > 60 + after_pickup_s(dispatcher, probe, dropoff)  # the direct ride alone would pass
    dispatcher.update_merchant(Merchant("m1", CENTRE, AREA, prep_s=60, promise_s=earliest + slack_s), now=0)
    before = len(dispatcher.store.events())
    if slack_s >= 0:
        q = dispatcher.quote("m1", dropoff, now=0)
        assert (q.dropoff_eta, q.window.end, q.offered_instead) == (earliest, earliest, False)
        dispatcher.place_order("o1", "m1", dropoff, now=0)
        eta = dispatcher.eta("o1", now=0)
        assert (eta.courier_arrival_at, eta.dropoff_at) == (arrival, earliest)
        assert eta.pickup_at == q.pickup_eta
    else:
        with pytest.raises(NoCourierCapacity):
            dispatcher.quote("m1", dropoff, now=0)
        with pytest.raises(NoCourierCapacity) as info:
            dispatcher.place_order("o1", "m1", dropoff, now=0)
        assert info.value.details["earliest_dropoff"] == earliest
        assert info.value.details["late_s"] == 1
        _nothing_written(dispatcher, before, "o1")


def test_two_orders_one_courier(dispatcher: Dispatcher) -> None:
    """The second order of another merchant waits for the only courier: refused while the first
    waits, then, once the courier has a plan, taken exactly when its end is early enough."""
    dispatcher.start_shift("c1", destination(CENTRE, 300, 90), now=0, shift_end=4 * 3600, speed_mps=FAST)
    dispatcher.update_merchant(Merchant("m1", CENTRE, AREA, prep_s=60, promise_s=3600), now=0)
    m2_at = destination(CENTRE, 800, 180)
    dispatcher.add_merchant(Merchant("m2", m2_at, AREA, prep_s=60, promise_s=3600), now=0)
    dispatcher.place_order("o1", "m1", destination(CENTRE, 1200, 0), now=0)
    # o1 waits for the only courier: nobody is left for o2
    before = len(dispatcher.store.events())
    with pytest.raises(NoCourierCapacity) as info:
        dispatcher.place_order("o2", "m2", destination(m2_at, 500, 270), now=1)
    assert info.value.details["earliest_dropoff"] is None
    _nothing_written(dispatcher, before, "o2")
    # another order of m1 shares the courier with o1 (they may be bundled): taken
    dispatcher.place_order("o1b", "m1", destination(CENTRE, 1100, 10), now=1)

    assert dispatcher.tick(now=10).assignments
    route = dispatcher.route("c1")
    last = route.stops[-1]
    now = 20
    dropoff2 = destination(m2_at, 500, 270)
    m2 = dispatcher.merchant("m2")
    arrival = last.depart_at + dispatcher.travel.travel_s(last.location, m2_at, FAST)
    earliest = _earliest_dropoff(dispatcher, m2, dropoff2, arrival, now, FAST)
    assert earliest < _earliest_dropoff(dispatcher, m2, dropoff2, arrival, now, 4.5)
    for slack_s, oid in ((-1, "o2"), (0, "o3")):
        promise = earliest - now + slack_s
        dispatcher.update_merchant(Merchant("m2", m2_at, AREA, prep_s=60, promise_s=promise), now=now)
        if slack_s < 0:
            before = len(dispatcher.store.events())
            with pytest.raises(NoCourierCapacity) as info:
                dispatcher.place_order(oid, "m2", dropoff2, now=now)
            assert info.value.details == {
                "earliest_dropoff": earliest,
                "late_s": 1,
                "window_end": earliest - 1,
            }
            _nothing_written(dispatcher, before, oid)
        else:
            order = dispatcher.place_order(oid, "m2", dropoff2, now=now)
            assert dispatcher.eta(oid, now=now).dropoff_at == earliest == order.deadline


def test_quote_offers_the_earliest_window_when_configured() -> None:
    config = DispatchConfig(
        city="t", supply_admission=True, offer_schedule_when_full=True, promise_margin_share=0.0
    )
    d = Dispatcher(config=config)
    d.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=60, promise_s=600), now=0)
    start = destination(CENTRE, 2500, 90)
    d.start_shift("c1", start, now=0, shift_end=4 * 3600)
    dropoff = destination(CENTRE, 1000, 0)
    q = d.quote("m1", dropoff, now=0)
    arrival = d.travel.travel_s(start, CENTRE, 4.5)
    earliest = _earliest_dropoff(d, d.merchant("m1"), dropoff, arrival, 0)
    assert earliest > 600  # the ASAP promise cannot be kept
    assert q.offered_instead and q.scheduled
    assert q.window.start == earliest and q.window.length_s == d.config.max_window_s
    assert q.dropoff_eta <= q.window.end
    # the offered window is a real scheduled order
    order = d.place_order("o1", "m1", dropoff, now=0, window=q.window)
    assert order.scheduled and order.window == q.window
    # an ASAP order is still refused, with the numbers
    with pytest.raises(NoCourierCapacity):
        d.place_order("o2", "m1", dropoff, now=0)


@pytest.mark.parametrize(
    ("city_offers", "merchant_offers", "offered"),
    [
        (False, None, False),  # the city's choice: refuse
        (True, None, True),  # the city's choice: offer a window
        (False, True, True),  # this merchant offers a window where the city refuses
        (True, False, False),  # this merchant refuses where the city offers
    ],
)
def test_a_merchant_overrides_the_citys_choice_when_full(
    city_offers: bool, merchant_offers: bool | None, offered: bool
) -> None:
    config = DispatchConfig(city="t", supply_admission=True, offer_schedule_when_full=city_offers)
    d = Dispatcher(config=config)
    merchant = Merchant(
        "m1", CENTRE, AREA, prep_s=60, promise_s=600, offer_schedule_when_full=merchant_offers
    )
    d.add_merchant(merchant, now=0)
    d.start_shift("c1", destination(CENTRE, 2500, 90), now=0, shift_end=4 * 3600)
    dropoff = destination(CENTRE, 1000, 0)
    if offered:
        q = d.quote("m1", dropoff, now=0)
        assert q.offered_instead and q.scheduled and q.window.start > 600
    else:
        with pytest.raises(NoCourierCapacity) as info:
            d.quote("m1", dropoff, now=0)
        assert info.value.details["late_s"] > 0


@pytest.mark.parametrize("slack_s", [0, -1])  # exactly on time with the margin; one second short
def test_a_confidence_margin_keeps_a_share_of_the_wait_as_slack(slack_s: int) -> None:
    margin = 0.1
    config = DispatchConfig(city="t", supply_admission=True, promise_margin_share=margin)
    d = Dispatcher(config=config)
    start = destination(CENTRE, 2500, 90)
    d.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=60), now=0)
    d.start_shift("c1", start, now=0, shift_end=4 * 3600)
    dropoff = destination(CENTRE, 1000, 0)
    now = 100
    arrival = now + d.travel.travel_s(start, CENTRE, 4.5)
    earliest = _earliest_dropoff(d, d.merchant("m1"), dropoff, arrival, now)
    with_margin = earliest + math.ceil(margin * (earliest - now))
    promise = with_margin - now + slack_s
    d.update_merchant(Merchant("m1", CENTRE, AREA, prep_s=60, promise_s=promise), now=now)
    if slack_s >= 0:
        order = d.place_order("o1", "m1", dropoff, now=now)
        assert d.eta("o1", now=now).dropoff_at == earliest < order.deadline
    else:
        with pytest.raises(NoCourierCapacity) as info:
            d.place_order("o1", "m1", dropoff, now=now)
        assert info.value.details["late_s"] == 1
        assert "10% margin" in str(info.value)


def test_on_by_default_and_off_for_replays() -> None:
    """On by default: an ASAP order no courier can deliver is refused. A replay of orders already
    accepted (``refuse_infeasible_promises`` off, as in the Grubhub MDRP replay) takes it: there
    supply is not counted, and the replay decides as it did before the default changed."""
    assert DispatchConfig().supply_admission
    dropoff = destination(CENTRE, 1000, 0)
    d = Dispatcher(config=DispatchConfig(city="t"))
    d.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=60), now=0)
    before = len(d.store.events())
    with pytest.raises(NoCourierCapacity):
        d.quote("m1", dropoff, now=0)  # no courier at all
    with pytest.raises(NoCourierCapacity):
        d.place_order("o1", "m1", dropoff, now=0)
    _nothing_written(d, before, "o1")
    d.start_shift("c1", destination(CENTRE, 500, 90), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", dropoff, now=0)  # a courier near: taken
    # the replay's own configuration: the default supply admission, promises not refused
    _, replay_config = mdrp.city_of(mdrp.read_instance(MDRP_DATA / "grubhub" / "4o50t75s1p100"))
    assert replay_config.supply_admission and not replay_config.refuse_infeasible_promises
    for cfg in (replay_config, DispatchConfig(city="t", refuse_infeasible_promises=False)):
        replay = Dispatcher(config=cfg)
        replay.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=60), now=0)
        replay.place_order("o1", "m1", dropoff, now=0)  # no courier at all: taken
    # (tests/simulations/test_mdrp.py replays that day, where counting supply would refuse
    # orders, and checks that every order is delivered)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    couriers=st.lists(
        st.tuples(st.floats(0, 4000), st.floats(0, 360), st.floats(2.0, 8.0)), min_size=0, max_size=3
    ),
    orders=st.lists(
        st.tuples(
            st.integers(0, 1),  # merchant
            st.floats(0, 2900),  # drop-off distance
            st.floats(0, 360),  # bearing
            st.integers(0, 240),  # seconds after the previous order
            st.booleans(),  # a tick before it
        ),
        min_size=1,
        max_size=8,
    ),
    promise_s=st.integers(600, 2400),
    prep_s=st.integers(0, 900),
)
def test_a_201_never_carries_an_eta_past_its_deadline(
    couriers: list[tuple[float, float, float]],
    orders: list[tuple[int, float, float, int, bool]],
    promise_s: int,
    prep_s: int,
) -> None:
    d = Dispatcher(store=MemoryStore("h"), config=DispatchConfig(city="h", supply_admission=True))
    merchants = [CENTRE, destination(CENTRE, 1500, 45)]
    for i, at in enumerate(merchants):
        d.add_merchant(Merchant(f"m{i}", at, AREA, prep_s=prep_s, promise_s=promise_s), now=0)
    for i, (dist, bearing, speed) in enumerate(couriers):
        d.start_shift(f"c{i}", destination(CENTRE, dist, bearing), now=0, shift_end=6 * 3600, speed_mps=speed)
    now = 0
    for i, (m, dist, bearing, gap, tick) in enumerate(orders):
        now += gap
        if tick:
            d.tick(now)
        try:
            quote = d.quote(f"m{m}", destination(merchants[m], dist, bearing), now)
        except Refused:
            quote = None
        else:
            assert quote.dropoff_eta <= quote.window.end
        try:
            order = d.place_order(f"o{i}", f"m{m}", destination(merchants[m], dist, bearing), now=now)
        except Refused:
            assert quote is None  # the quote and the order agree
            continue
        assert quote is not None
        eta = d.eta(order.id, now=now)
        assert eta.dropoff_at is not None and eta.dropoff_at <= order.deadline
        assert eta == d.eta(order.id, now=now)


def test_supply_carries_each_couriers_speed_in_arrival_order(dispatcher: Dispatcher) -> None:
    """The speeds follow the arrivals they belong to, and a placed order's ETA rides at the speed
    of the courier it waits for, not at the fastest one's."""
    couriers = {"near": (300, 3.0), "mid": (600, 4.0), "car": (2500, FAST)}
    for cid, (dist, speed) in couriers.items():
        dispatcher.start_shift(cid, destination(CENTRE, dist, 90), now=0, shift_end=4 * 3600, speed_mps=speed)
    merchant = dispatcher.merchant("m1")
    supply = supply_near(dispatcher, merchant, 0)
    expected = [
        (dispatcher.travel.travel_s(destination(CENTRE, dist, 90), CENTRE, speed), speed)
        for dist, speed in couriers.values()
    ]
    assert expected == sorted(expected)  # the car arrives last
    assert list(zip(supply.arrivals, supply.speeds, strict=True)) == expected
    assert supply.counted(0) == expected[0] and supply.counted(3) is None
    # three orders share the first courier (max_bundle_size 3); the fourth waits for "mid"
    dropoff = destination(CENTRE, 2000, 0)
    for i in range(4):
        dispatcher.place_order(f"o{i}", "m1", dropoff, now=i)
    ride, speed = expected[1]
    arrival = 3 + ride  # idle: from now
    eta = dispatcher.eta("o3", now=3)
    assert eta.courier_arrival_at == arrival
    assert eta.dropoff_at == _earliest_dropoff(dispatcher, merchant, dropoff, arrival, 3, speed)
    assert eta.dropoff_at > _earliest_dropoff(dispatcher, merchant, dropoff, arrival, 3, FAST)


def test_an_order_across_town_takes_the_courier_near_its_merchant(dispatcher: Dispatcher) -> None:
    """The orders already waiting take the courier nearest *their* merchant: a new order near
    another idle courier still counts on that one (before, every order waiting in reach took
    the next courier to arrive at the new order's merchant, wherever it was)."""
    far = destination(CENTRE, 3000, 90)
    dispatcher.add_merchant(Merchant("m2", far, AREA, prep_s=60, promise_s=3600), now=0)
    near_m1 = destination(CENTRE, 300, 270)
    near_m2 = destination(far, 200, 90)
    dispatcher.start_shift("c1", near_m1, now=0, shift_end=4 * 3600, speed_mps=FAST)
    dispatcher.start_shift("c2", near_m2, now=0, shift_end=4 * 3600, speed_mps=FAST)
    dispatcher.place_order("o2", "m2", destination(far, 800, 0), now=0)
    # m1's promise: a minute more than c1 needs, far less than c2 would
    dropoff = destination(CENTRE, 1000, 0)
    to_m1 = dispatcher.travel.travel_s(near_m1, CENTRE, FAST)
    probe = Merchant("m1", CENTRE, AREA, prep_s=60)
    with_c1 = _earliest_dropoff(dispatcher, probe, dropoff, 1 + to_m1, 1, FAST)
    dispatcher.update_merchant(Merchant("m1", CENTRE, AREA, prep_s=60, promise_s=with_c1 - 1 + 60), now=0)
    supply = supply_near(dispatcher, dispatcher.merchant("m1"), 1)
    # c1 arrives at m1 first, c2 (across town) after it, too late; o2 (at m2) is counted on c2
    assert supply.arrivals[0] == 1 + to_m1 and len(supply.arrivals) == 2
    assert _earliest_dropoff(dispatcher, probe, dropoff, supply.arrivals[1], 1, FAST) > with_c1 + 60
    assert supply.takes == (1,)
    assert supply.ahead_of(1, "o1", "m1", dispatcher.config.max_bundle_size) == 0
    dispatcher.place_order("o1", "m1", dropoff, now=1)
    eta = dispatcher.eta("o1", now=1)
    assert (eta.courier_arrival_at, eta.dropoff_at) == (1 + to_m1, with_c1)
    # another order at m2 joins o2's courier (bundled), one at m1 joins o1's: c1 and c2 each
    # carry one merchant's orders, and a third merchant's order has nobody left
    dispatcher.place_order("o2b", "m2", destination(far, 900, 0), now=2)
    supply = supply_near(dispatcher, dispatcher.merchant("m1"), 3)
    assert supply.takes == (1, 0, 1)
    size = dispatcher.config.max_bundle_size
    assert supply.ahead_of(3, "o3", "m1", size) == 0
    assert supply.ahead_of(3, "o4", "m3", size) == len(supply.arrivals)


@pytest.mark.parametrize(
    ("metres", "wanted", "counted"),
    [
        ((400, 900, 4000, 5000), 2, 2),
        ((400, 900, 4000, 5000), 0, 4),
        ((400, 900, 4000, 5000), 10, 4),
        ((400, 500, 600, 5000), 2, 2),  # three in the first rings: the two nearest are kept
    ],
)
def test_the_search_widens_until_it_has_supply_couriers(
    metres: tuple[int, ...], wanted: int, counted: int
) -> None:
    """Couriers at ``metres`` from the merchant: with ``supply_couriers`` 2 the nearest rings
    hold enough, the far ones are not read and only the two first to arrive are kept; 0 (or
    more than there are) reads all."""
    config = DispatchConfig(city="t", supply_couriers=wanted)
    d = Dispatcher(config=config)
    d.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=60), now=0)
    for i, m in enumerate(metres):
        d.start_shift(f"c{i}", destination(CENTRE, m, 90), now=0, shift_end=4 * 3600)
    supply = supply_near(d, d.merchant("m1"), 0)
    expected = sorted(d.travel.travel_s(destination(CENTRE, m, 90), CENTRE, 4.5) for m in metres)
    assert supply.arrivals == tuple(expected[:counted])


def test_orders_waiting_at_other_merchants_with_no_courier_in_reach() -> None:
    """No courier on shift: the orders waiting at two merchants are counted on nobody, and a
    placed order's ETA assumes a courier ``free_horizon_s`` from now (no error)."""
    config = DispatchConfig(city="t", supply_admission=False)
    d = Dispatcher(config=config)
    d.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=60), now=0)
    d.add_merchant(Merchant("m2", destination(CENTRE, 2000, 90), AREA, prep_s=60), now=0)
    d.place_order("o1", "m1", destination(CENTRE, 1000, 0), now=0)
    d.place_order("o2", "m2", destination(CENTRE, 1500, 90), now=0)
    supply = supply_near(d, d.merchant("m1"), 1)
    assert (supply.arrivals, supply.takes) == ((), (-1, -1))
    assert d.eta("o2", now=1).courier_arrival_at == 1 + d.config.free_horizon_s


def test_an_order_whose_merchant_may_have_couriers_beyond_the_search_takes_none_of_it() -> None:
    """The search stopped at the first courier (``supply_couriers`` 1): an order waiting at a
    merchant 1 km away, whose own courier (0.8 km beyond it) lies outside the rings searched,
    is not counted on the one courier near the new order's merchant (a nearer one may be
    unseen, and here is)."""
    d = Dispatcher(config=DispatchConfig(city="t", supply_couriers=1, promise_margin_share=0.0))
    d.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=60, promise_s=3600), now=0)
    m2_at = destination(CENTRE, 1000, 90)
    d.add_merchant(Merchant("m2", m2_at, AREA, prep_s=60, promise_s=3600), now=0)
    d.start_shift("c1", destination(CENTRE, 200, 270), now=0, shift_end=4 * 3600)
    d.start_shift("c2", destination(m2_at, 800, 90), now=0, shift_end=4 * 3600)
    d.place_order("o2", "m2", destination(m2_at, 800, 0), now=0)
    supply = supply_near(d, d.merchant("m1"), 1)
    assert len(supply.arrivals) == 1  # c1 only: c2 is beyond the rings searched
    assert supply.waiting == ((0, "o2", "m2"),)
    assert supply.takes == (-1,)
    assert supply.ahead_of(1, "o1", "m1", d.config.max_bundle_size) == 0
    # with every courier in reach searched, c2 is seen: o2 is counted on it, the nearer one
    wide = Dispatcher(store=d.store, config=DispatchConfig(city="t", supply_couriers=0))
    supply = supply_near(wide, wide.merchant("m1"), 1)
    assert len(supply.arrivals) == 2 and supply.takes == (1,)


def test_the_eta_right_after_placing_reuses_admissions_supply(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 201 of an order shows its ETA: read right after placing it, the supply admission
    searched is used again (one search, not two), with the same times as a fresh search; once
    anything happened since (a courier starts its shift), the ETA searches again."""
    from dispatch import admission, etas

    d = Dispatcher(config=DispatchConfig(city="t", promise_margin_share=0.0))
    d.add_merchant(Merchant("m1", CENTRE, AREA, prep_s=600), now=0)
    d.start_shift("c1", destination(CENTRE, 1500, 90), now=0, shift_end=4 * 3600)
    searches: list[str] = []
    real = admission.supply_near

    def counted(ctx: Dispatcher, merchant: Merchant, now: int) -> Supply:
        searches.append(merchant.id)
        return real(ctx, merchant, now)

    monkeypatch.setattr(admission, "supply_near", counted)
    monkeypatch.setattr(etas, "supply_near", counted)
    d.place_order("o1", "m1", destination(CENTRE, 1000, 0), now=10)
    first = d.eta("o1", now=10)
    assert searches == ["m1"]
    assert d.eta("o1", now=10) == first and searches == ["m1", "m1"]  # the next read searches
    d.place_order("o2", "m1", destination(CENTRE, 1200, 0), now=20)
    d.start_shift("c2", destination(CENTRE, 200, 90), now=20, shift_end=4 * 3600)
    nearer = d.eta("o2", now=20)
    assert searches == ["m1", "m1", "m1", "m1"]  # the new courier counts
    assert nearer.courier_arrival_at == 20 + d.travel.travel_s(destination(CENTRE, 200, 90), CENTRE, 4.5)


def _counted_on_by_the_rule(
    d: Dispatcher,
    waiting: list[tuple[int, str, str]],
    located: dict[str, Location],
    merchant_id: str,
    covered_m: float,
    arrivals: list[int],
    starts: list[int],
    places: list[Location],
    speeds: list[float],
) -> tuple[int, ...]:
    """``_counted_on`` written out plainly, courier by courier: each waiting order joins its
    merchant's last courier while that has room, else takes the free courier first at its
    merchant among those no courier beyond ``covered_m`` could beat."""
    size, taken, takes = d.config.max_bundle_size, set(), []
    count: dict[str, int] = {}
    last: dict[str, int] = {}
    home = located[merchant_id]
    for _, _, mid in waiting:
        k = count.get(mid, 0)
        count[mid] = k + 1
        if k % size:
            takes.append(last[mid])
            continue
        best: tuple[int, int] | None = None
        for i in range(len(arrivals)):
            if i in taken:
                continue
            if mid == merchant_id:
                at = arrivals[i]
            else:
                target = located[mid]
                gap = haversine_m(home, target)
                if haversine_m(places[i], target) > covered_m - gap:
                    continue
                at = starts[i] + d.travel.travel_s(places[i], target, speeds[i])
            if best is None or at < best[0]:
                best = (at, i)
        i = -1 if best is None else best[1]
        if i >= 0:
            taken.add(i)
        last[mid] = i
        takes.append(i)
    return tuple(takes)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 400), st.integers(0, 359), st.integers(0, 600)),
        max_size=8,
    ),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 3)), max_size=14),
    st.sampled_from([0.0, 1500.0, 3000.0, 4500.0]),
)
def test_the_count_of_waiting_orders_is_the_rule_courier_by_courier(
    couriers: list[tuple[int, int, int, int]], orders: list[tuple[int, int]], covered_m: float
) -> None:
    """Merchants 1.4 km apart (some at or beyond ``covered_m``, some just within), couriers
    near them: the numpy count (merchants beyond the covered radius left out, a stop once
    every courier is taken) gives each waiting order the courier the plain rule gives it."""
    d = Dispatcher(config=DispatchConfig(city="t"))
    located = {f"m{j}": destination(CENTRE, 1400 * j, 0) for j in range(4)}
    places = [destination(located[f"m{j}"], m, bearing) for j, m, bearing, _ in couriers]
    speeds = [(4.5, FAST, 6.0)[i % 3] for i in range(len(couriers))]
    starts = [wait for _, _, _, wait in couriers]
    arrivals = [s + d.travel.travel_s(p, CENTRE, v) for s, p, v in zip(starts, places, speeds, strict=True)]
    waiting = [(placed, f"o{n}", f"m{j}") for n, (placed, j) in enumerate(orders)]
    waiting.sort()
    expected = _counted_on_by_the_rule(d, waiting, located, "m0", covered_m, arrivals, starts, places, speeds)
    found = _counted_on(
        d,
        waiting,
        located,
        "m0",
        covered_m,
        np.array(arrivals, dtype=np.int64),
        np.array(starts, dtype=np.int64),
        places,
        speeds,
    )
    assert found == expected
