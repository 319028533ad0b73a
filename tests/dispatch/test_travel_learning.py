"""Learned travel times: a correction factor per H3 cell (res 7) and hour of day on the base
travel model, from couriers' rides (when they left a stop, when they reported arriving at the
next), shrunk towards the hour's and the city's figure, kept in the Store (over Redis, across a
restart), off with the learning switch, and exactly 1.0 where rides take the model's time."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from dispatch import (
    DeliveryArea,
    DispatchConfig,
    Dispatcher,
    GreatCircleTravel,
    GreedyPolicy,
    Location,
    Merchant,
    PlanarTravel,
)
from dispatch.estimates import (
    LearnedTravel,
    Leg,
    TravelFactors,
    note_departure,
    observe_arrival,
    travel_factors,
)
from dispatch.estimates.travel import MAX_RATIO, cell_of
from dispatch.redis_store import RedisStore
from simulations.city import synthetic_city
from simulations.day import Truth
from simulations.mdrp import city_of, read_instance
from simulations.world import ReplayReport, World
from tests.conftest import CENTRE, destination, make_store
from tests.redis_server import RedisServer

SPEED = 4.5
NOON = 12 * 3600
GRUBHUB_DAY = Path(__file__).resolve().parents[1] / "data" / "mdrp" / "grubhub" / "0o50t75s1p100"


def _ride(
    d: Dispatcher, courier_id: str, origin: Location, to: Location, depart_at: int, factor: float
) -> bool:
    """A ride noted at its departure that really takes ``factor`` x the base model's time."""
    note_departure(d, {courier_id: Leg(origin, depart_at, to)})
    actual = max(1, round(d.travel.travel_s(origin, to, SPEED) * factor))
    return observe_arrival(d, d.travel, courier_id, to, SPEED, depart_at + actual)


def _sim(config: DispatchConfig, truth: Truth, seed: int = 3) -> tuple[Dispatcher, ReplayReport]:
    plan = synthetic_city(seed=seed, n_couriers=12, n_orders=150)
    d = Dispatcher(config=config, policy=GreedyPolicy())
    return d, World(d, plan, tick_s=60, truth=truth).run()


def _dropoff_error_s(report: ReplayReport) -> float:
    """Mean absolute error of the drop-off time planned at assignment (the plan's hand-over)."""
    errors = []
    for _, a in report.assignments:
        for stop in a.route.stops:
            if stop.kind.value == "dropoff" and stop.order_ids[0] in a.order_ids:
                rec = report.orders.get(stop.order_ids[0])
                if rec is not None and rec.delivered_at is not None and rec.assigned_at is not None:
                    errors.append(abs(rec.delivered_at - stop.service_at))
    return sum(errors) / len(errors)


def test_a_city_whose_rides_take_1_3x_the_model_is_learned() -> None:
    """The simulated city's rides always take 1.3x the model (no noise): the engine learns 1.3
    from its couriers' arrivals, plans with it, and its drop-off times come closer."""
    slow = Truth(ride_hour_factor=(1.3,) * 24)
    learned, report_on = _sim(DispatchConfig(city="slow"), slow)
    _, report_off = _sim(DispatchConfig(city="slow", learning=False), slow)
    factors = travel_factors(learned, 3600)
    # (a little under 1.3: some 130 rides against 20 pseudo-rides of the city's prior of 1.0)
    assert abs(factors.hour - 1.3) < 0.02
    assert factors.cells and all(abs(f - 1.3) < 0.025 for f in factors.cells.values())
    a, b = CENTRE, destination(CENTRE, 2000, 45)
    base_s = learned.travel.travel_s(a, b, SPEED)
    travel = learned.travel_at(3600)
    assert isinstance(travel, LearnedTravel)
    assert travel.travel_s(a, b, SPEED) == math.ceil(base_s * travel.factor(a))
    # the base model (which the simulated world times its rides with) is left alone
    assert learned.travel.travel_s(a, b, SPEED) == base_s
    assert _dropoff_error_s(report_on) < 0.7 * _dropoff_error_s(report_off)


def test_learning_off_learns_and_uses_nothing() -> None:
    d, _ = _sim(DispatchConfig(city="off", learning=False), Truth(ride_hour_factor=(1.3,) * 24))
    assert travel_factors(d, 3600) == TravelFactors(1.0, {})
    assert d.travel_at(3600) is d.travel
    assert d.store.learned(["travel:city", "travel:h1", "leg:c-1"]) == {}
    # observations offered directly are ignored too
    assert not _ride(d, "c1", CENTRE, destination(CENTRE, 2000, 0), NOON, 1.3)
    assert d.store.learned(["travel:city", f"travel:h{NOON // 3600}"]) == {}


def test_rides_as_modelled_leave_every_factor_exactly_one() -> None:
    """A world without uncertainty (the demo, the replays): every ride is observed at exactly
    the model's time, so the engine uses the base model itself and decides the same."""
    d, _ = _sim(DispatchConfig(city="exact"), Truth())
    city = d.store.learned(["travel:city"])
    assert city and int(city["travel:city"].split(",")[0].strip("[")) > 20  # rides were observed
    for hour in range(24):
        assert d.travel_at(hour * 3600) is d.travel


def test_a_grubhub_replay_observes_its_rides_at_exactly_the_model() -> None:
    plan, config = city_of(read_instance(GRUBHUB_DAY))
    d = Dispatcher(config=config, travel=PlanarTravel())
    World(d, plan, tick_s=60).run()
    assert config.learning
    observed = [travel_factors(d, h * 3600) for h in range(24)]
    assert any(f.cells for f in observed)
    assert all(f.neutral for f in observed)
    assert all(d.travel_at(h * 3600) is d.travel for h in range(24))


def test_a_cell_with_few_rides_leans_on_its_hour() -> None:
    d = Dispatcher(config=DispatchConfig(city="t", travel_prior_legs=20))
    here, far = CENTRE, destination(CENTRE, 30_000, 90)  # another res-7 cell, 30 km east
    assert cell_of(here) != cell_of(far)
    for i in range(200):
        assert _ride(d, "c1", here, destination(here, 2000, i), NOON, 1.0)
    assert _ride(d, "c2", far, destination(far, 2000, 0), NOON, 2.0)
    factors = travel_factors(d, NOON)
    # 200 rides at 1.0 and one at 2.0: the hour is near 1.0, and so is the one-ride cell
    assert abs(factors.hour - 1.0) < 0.01
    assert 1.0 < factors.of(cell_of(far)) < 1.05
    assert 1.0 <= factors.of(cell_of(here)) < 1.001
    for _ in range(200):
        _ride(d, "c2", far, destination(far, 2000, 0), NOON, 2.0)
    assert abs(travel_factors(d, NOON).of(cell_of(far)) - 2.0) < 0.1  # enough rides: its own
    # without shrinkage the one ride is the cell's figure
    bare = Dispatcher(config=DispatchConfig(city="t", travel_prior_legs=0, promise_margin_share=0.0))
    assert _ride(bare, "c2", far, destination(far, 2000, 0), NOON, 2.0)
    assert travel_factors(bare, NOON).of(cell_of(far)) == pytest.approx(2.0, abs=1e-3)


def test_hours_are_learned_apart() -> None:
    d = Dispatcher(config=DispatchConfig(city="t", travel_prior_legs=1))
    for i in range(50):
        to = destination(CENTRE, 2000, i)
        _ride(d, "c1", CENTRE, to, 8 * 3600 + 60, 1.5)
        _ride(d, "c1", CENTRE, to, 22 * 3600 + 60, 0.9)
    assert travel_factors(d, 8 * 3600).hour == pytest.approx(1.5, abs=0.02)
    assert travel_factors(d, 22 * 3600).hour == pytest.approx(0.9, abs=0.02)
    assert travel_factors(d, 15 * 3600).hour == pytest.approx(math.sqrt(1.5 * 0.9), abs=0.02)


@pytest.mark.parametrize(
    ("to", "factor", "observed"),
    [
        (destination(CENTRE, 2000, 0), 1.2, True),  # an ordinary ride
        (destination(CENTRE, 100, 0), 1.2, False),  # the model says under a minute: rounding
        (destination(CENTRE, 2000, 0), MAX_RATIO * 1.1, False),  # it stopped on the way
        (destination(CENTRE, 2000, 0), 1 / (MAX_RATIO * 1.1), False),  # impossible: a stale note
    ],
)
def test_which_rides_are_observations(to: Location, factor: float, observed: bool) -> None:
    d = Dispatcher(config=DispatchConfig(city="t"))
    assert _ride(d, "c1", CENTRE, to, NOON, factor) is observed
    assert (d.store.learned(["travel:city"]) != {}) is observed


def test_a_ride_whose_plan_changed_on_the_way_is_no_observation() -> None:
    d = Dispatcher(config=DispatchConfig(city="t"))
    planned, reached = destination(CENTRE, 2000, 0), destination(CENTRE, 2500, 90)
    note_departure(d, {"c1": Leg(CENTRE, NOON, planned)})
    assert not observe_arrival(d, d.travel, "c1", reached, SPEED, NOON + 900)
    # and the note is used up: arriving at the old destination later says nothing either
    assert not observe_arrival(d, d.travel, "c1", planned, SPEED, NOON + 1200)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_engine_notes_rides_from_its_own_events(kind: str, request: pytest.FixtureRequest) -> None:
    """Through the Dispatcher, on both stores: a courier sent from idle to a merchant, then from
    the merchant to a door, each ride 1.5x the model; the plan after it is timed with 1.5."""
    d = Dispatcher(
        store=make_store(kind, "t", request),
        config=DispatchConfig(city="t", travel_prior_legs=0, promise_margin_share=0.0),
    )
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=900), now=0)
    start = destination(CENTRE, 1500, 200)
    d.start_shift("c1", start, now=0, shift_end=12 * 3600)
    order = d.place_order("o1", "m1", destination(CENTRE, 2000, 0), now=0)
    assert d.tick(now=order.ready_at - 600).assignments  # from where it waits idle, now
    leaves = order.ready_at - 600
    to_merchant = round(d.travel.travel_s(start, CENTRE, SPEED) * 1.5)
    d.update_position("c1", CENTRE, now=leaves + to_merchant)
    d.arrived("c1", now=leaves + to_merchant)
    assert travel_factors(d, leaves).of(cell_of(start)) == pytest.approx(1.5, abs=0.01)
    route = d.picked_up("c1", "o1", now=order.ready_at)
    door = route.stops[0]
    leaves = order.ready_at + 120  # the rest of the pickup service
    to_door = round(d.travel.travel_s(CENTRE, door.location, SPEED) * 1.5)
    # the plan after the pickup already times the ride with the factor learned from the first
    base_s = d.travel.travel_s(CENTRE, door.location, SPEED)
    assert door.arrive_at - leaves == d.travel_at(leaves).travel_s(CENTRE, door.location, SPEED)
    assert abs(door.arrive_at - leaves - 1.5 * base_s) <= 2
    d.update_position("c1", door.location, now=leaves + to_door)
    d.arrived("c1", now=leaves + to_door)
    assert travel_factors(d, leaves).of(cell_of(CENTRE)) == pytest.approx(1.5, abs=0.01)
    d.delivered("c1", "o1", now=leaves + to_door + 120)
    assert d.store.learned(["leg:c1"]) == {"leg:c1": ""}  # idle at the door: no ride under way


def test_the_matrix_and_the_reach_agree_with_the_rides() -> None:
    base = GreatCircleTravel()
    far = destination(CENTRE, 30_000, 90)
    travel = LearnedTravel(base, TravelFactors(0.8, {cell_of(far): 1.25}))
    points = [CENTRE, far, *(destination(CENTRE, 700 * i, 37 * i) for i in range(1, 8))]
    matrix = travel.matrix_s(points, points, SPEED)
    assert matrix.tolist() == [[travel.travel_s(a, b, SPEED) for b in points] for a in points]
    assert travel.travel_s(CENTRE, points[3], SPEED) < base.travel_s(CENTRE, points[3], SPEED)
    # every ride within the budget is within reach, even where rides are faster than the model
    budget = 600
    for p in points:
        if travel.travel_s(p, CENTRE, SPEED) <= budget:
            assert _gc_m(p, CENTRE) <= travel.reach_m(budget, SPEED)


def _gc_m(a: Location, b: Location) -> float:
    from dispatch.geo.distance import haversine_m

    return haversine_m(a, b)


def test_learned_travel_survives_a_redis_restart(redis_server: RedisServer, redis_url: str) -> None:
    config = DispatchConfig(city="learn")
    d = Dispatcher(store=RedisStore(redis_url, "learn"), config=config)
    for i in range(40):
        assert _ride(d, "c1", CENTRE, destination(CENTRE, 2000, i), NOON, 1.3)
    learned = travel_factors(d, NOON)
    assert learned.hour > 1.15
    redis_server.restart(hard=False)  # a clean shutdown saves the data set; a new process reads it
    again = Dispatcher(store=RedisStore(redis_url, "learn"), config=config)
    assert travel_factors(again, NOON) == learned
    a, b = CENTRE, destination(CENTRE, 2000, 0)
    assert again.travel_at(NOON).travel_s(a, b, SPEED) == d.travel_at(NOON).travel_s(a, b, SPEED)
    assert again.travel_at(NOON).travel_s(a, b, SPEED) > again.travel.travel_s(a, b, SPEED)
