"""Learned travel times from position pings: on a ride noted at its departure, each ping that
brings the courier nearer its destination teaches the stretch since the ride's checkpoint
(where it left, or the last ping learned from) and becomes the checkpoint, so the arrival
observes only the rest; a ping away from the destination, standing still, too short or too far
off the model teaches nothing and keeps the checkpoint. One read per ping of a courier with a
plan (none for an idle one), a write only when it teaches; nothing with learning off; kept in
the Store (over Redis, across a restart)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest

from dispatch import (
    DeliveryArea,
    DispatchConfig,
    Dispatcher,
    Location,
    Merchant,
    PlanarTravel,
)
from dispatch.estimates import Leg, note_departure, observe_ping, travel_factors
from dispatch.estimates.travel import MAX_RATIO, MIN_LEG_S, cell_of
from dispatch.redis_store import RedisStore
from dispatch.store import MemoryStore, Store
from tests.conftest import CENTRE, destination, make_store
from tests.redis_server import RedisServer

SPEED = 4.5
NOON = 12 * 3600
#: 4 km north of CENTRE: some 1,160 s by the base model at SPEED
FAR = destination(CENTRE, 4000, 0)


def _on_the_way(km: float) -> Location:
    return destination(CENTRE, 1000 * km, 0)


def _dispatcher(
    kind: str = "memory",
    request: pytest.FixtureRequest | None = None,
    store: Store | None = None,
    **config: object,
) -> Dispatcher:
    """A city with courier ``c1`` on shift at CENTRE, idle, and a merchant ``m-far`` at FAR."""
    cfg = DispatchConfig(city="t", **config)  # type: ignore[arg-type]
    if store is None:
        store = MemoryStore("t") if request is None else make_store(kind, "t", request)
    d = Dispatcher(store=store, config=cfg)
    d.start_shift("c1", CENTRE, now=0, shift_end=20 * 3600)
    d.add_merchant(Merchant("m-far", FAR, DeliveryArea(radius_m=3000), prep_s=600, promise_s=3600), now=0)
    return d


def _riding(d: Dispatcher, at: int = NOON) -> None:
    """Send ``c1`` from CENTRE to FAR at ``at``: an order at ``m-far``, and a tick (which notes
    the ride, with learning on)."""
    d.place_order(f"o-{at}", "m-far", destination(FAR, 1000, 90), now=at)
    assert [a.courier_id for a in d.tick(now=at).assignments] == ["c1"]
    if d.config.learning:
        assert _leg(d) == Leg(CENTRE, at, FAR)


def _base_s(d: Dispatcher, a: Location, b: Location) -> int:
    return d.travel.travel_s(a, b, SPEED)


def _city(d: Dispatcher) -> tuple[int, float]:
    """The city's observed rides: how many, and the sum of their log(actual / model)."""
    raw = d.store.learned(["travel:city"]).get("travel:city")
    if not raw:
        return 0, 0.0
    n, total = json.loads(raw)
    return int(n), float(total)


def _leg(d: Dispatcher, courier_id: str = "c1") -> Leg | None:
    raw = d.store.learned([f"leg:{courier_id}"]).get(f"leg:{courier_id}")
    return Leg.parse(raw)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_pings_of_a_slow_ride_teach_its_speed_before_it_arrives(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """A courier riding 1.3x slower than the model, pinging every 800 m: each ping teaches, and
    the factor climbs towards 1.3 before the courier arrives."""
    d = _dispatcher(kind, request)
    _riding(d)
    factors = [travel_factors(d, NOON).hour]
    assert factors == [1.0]
    for i in range(1, 5):
        here = _on_the_way(0.8 * i)
        d.update_position("c1", here, now=NOON + round(_base_s(d, CENTRE, here) * 1.3))
        factors.append(travel_factors(d, NOON).of(cell_of(CENTRE)))
    assert factors == sorted(factors) and len(set(factors)) == 5  # it moved with every ping
    assert 1.05 < factors[-1] < 1.3  # (4 stretches against 20 pseudo-rides of the prior 1.0)
    assert _city(d)[0] == 4
    leg = _leg(d)
    assert leg is not None and leg.origin == _on_the_way(3.2) and leg.destination == FAR  # the checkpoint

    # without the prior, one stretch is the figure, to the rounding of whole seconds
    bare = _dispatcher(travel_prior_legs=0)
    _riding(bare)
    here = _on_the_way(1.0)
    bare.update_position("c1", here, now=NOON + round(_base_s(bare, CENTRE, here) * 1.3))
    assert travel_factors(bare, NOON).hour == pytest.approx(1.3, abs=0.005)
    assert travel_factors(bare, NOON).of(cell_of(CENTRE)) == pytest.approx(1.3, abs=0.005)


def test_the_arrival_after_pings_observes_only_the_rest_of_the_ride() -> None:
    """First 2 km at 2x the model, the last 2 km at the model's speed: the ping at half way
    teaches 2.0, the arrival 1.0 for the rest, and the two stretches' seconds are the ride's."""
    d = _dispatcher(travel_prior_legs=0)
    half = _on_the_way(2.0)
    first_base, rest_base = _base_s(d, CENTRE, half), _base_s(d, half, FAR)
    at_half = NOON + 2 * first_base
    arrive = at_half + rest_base
    _riding(d)
    d.update_position("c1", half, now=at_half)
    assert _city(d) == (1, pytest.approx(math.log(2.0)))
    checkpoint = _leg(d)
    assert checkpoint == Leg(half, at_half, FAR)
    d.arrived("c1", now=arrive)
    n, total = _city(d)
    assert n == 2 and total == pytest.approx(math.log(2.0) + math.log(1.0))
    # the seconds observed: the first stretch's and the rest's, together exactly the ride
    assert (at_half - NOON) + (arrive - checkpoint.depart_at) == arrive - NOON
    # the whole ride counted again would have added log(arrive - NOON over the whole ride's model)
    whole = math.log((arrive - NOON) / _base_s(d, CENTRE, FAR))
    assert abs(total - (math.log(2.0) + whole)) > 0.1
    assert _leg(d) is None  # the ride is over

    # a ping at the stop itself as the courier arrives (the simulated world sends one) teaches
    # the rest of the ride, and the arrival then nothing more: still each second once
    again = _dispatcher(travel_prior_legs=0)
    _riding(again)
    again.update_position("c1", half, now=at_half)
    again.update_position("c1", FAR, now=arrive)
    assert _city(again) == (2, pytest.approx(total))
    again.arrived("c1", now=arrive)
    assert _city(again) == (2, pytest.approx(total))


@pytest.mark.parametrize(
    ("where", "after_s"),
    [
        (destination(CENTRE, 1500, 180), 560),  # 1.5 km the wrong way, at about the model's speed
        (destination(CENTRE, 1500, 90), 560),  # 1.5 km sideways: no nearer the destination
        (CENTRE, 600),  # standing where it left
        (destination(CENTRE, 30, 0), 600),  # a few metres on: standing still, by the model
        (_on_the_way(0.15), 50),  # nearer, but under MIN_LEG_S by the model
        (_on_the_way(1.0), round(289 * MAX_RATIO * 1.2)),  # nearer, but it stopped on the way
        (_on_the_way(1.0), round(289 / (MAX_RATIO * 1.2))),  # nearer, impossibly fast
        (_on_the_way(1.0), 0),  # nearer, no time passed (a repeated ping)
        (_on_the_way(1.0), -60),  # nearer, before it left (it still waits for the hand-over)
    ],
)
def test_a_ping_that_says_nothing_about_speed_teaches_nothing_and_keeps_the_checkpoint(
    where: Location, after_s: int
) -> None:
    d = _dispatcher(travel_prior_legs=0)
    assert _base_s(d, CENTRE, _on_the_way(1.0)) == 289
    assert _base_s(d, CENTRE, _on_the_way(0.15)) < MIN_LEG_S
    _riding(d)
    noted = _leg(d)
    assert not observe_ping(d, d.travel, "c1", where, SPEED, NOON + after_s)
    d.update_position("c1", where, now=NOON + after_s)
    assert _city(d) == (0, 0.0) and d.store.learned(["travel:h12"]) == {}
    assert _leg(d) == noted
    # the next ping on the way teaches the stretch from where the courier left, not from there
    here = _on_the_way(2.0)
    at = NOON + 900
    d.update_position("c1", here, now=at)
    assert _city(d) == (1, pytest.approx(math.log(900 / _base_s(d, CENTRE, here))))


def test_stretches_are_learned_for_the_cell_and_hour_they_start_in() -> None:
    """A ride leaving at 12:55 from one cell: its ping at 13:05 in the next cell teaches hour 12
    and the cell it left from; the stretch after it, hour 13 and the cell of that ping."""
    d = _dispatcher(travel_prior_legs=0)
    start = NOON + 55 * 60
    _riding(d, start)
    mid = _on_the_way(2.0)
    assert cell_of(mid) != cell_of(CENTRE)
    at_mid = start + 10 * 60
    d.update_position("c1", mid, now=at_mid)
    at_far = at_mid + round(_base_s(d, mid, FAR) * 1.5)
    d.arrived("c1", now=at_far)
    noon, one = travel_factors(d, NOON), travel_factors(d, NOON + 3600)
    assert noon.hour == pytest.approx(600 / _base_s(d, CENTRE, mid), abs=1e-9)
    assert one.hour == pytest.approx(1.5, abs=0.005)
    assert set(noon.cells) == {cell_of(CENTRE)} and set(one.cells) == {cell_of(mid)}


class _CountingStore(MemoryStore):
    """A memory store that counts its learned reads and writes."""

    def __init__(self, city: str) -> None:
        super().__init__(city)
        self.reads: list[tuple[str, ...]] = []
        self.writes: list[dict[str, str]] = []

    def learned(self, keys: Sequence[str]) -> dict[str, str]:
        self.reads.append(tuple(keys))
        return super().learned(keys)

    def set_learned(self, values: dict[str, str]) -> None:
        self.writes.append(dict(values))
        super().set_learned(values)


def test_a_ping_reads_only_its_ride_note_and_writes_only_when_it_teaches() -> None:
    store = _CountingStore("t")
    d = _dispatcher(store=store)
    _riding(d)
    d.start_shift("c2", CENTRE, now=NOON, shift_end=20 * 3600)
    store.reads.clear()
    store.writes.clear()
    d.update_position("c2", _on_the_way(0.5), now=NOON + 60)  # idle: no plan, nothing to read
    assert store.reads == [] and store.writes == []
    d.update_position("c1", destination(CENTRE, 1500, 180), now=NOON + 560)  # the wrong way
    assert store.reads == [("leg:c1",)] and store.writes == []
    d.update_position("c1", _on_the_way(2.0), now=NOON + 900)  # teaches: the tables, and a write
    assert store.reads[1:] == [("leg:c1",), ("travel:city", "travel:h12")]
    assert len(store.writes) == 1 and set(store.writes[0]) == {"leg:c1", "travel:city", "travel:h12"}


def test_a_courier_whose_plan_was_dropped_on_the_way_teaches_nothing() -> None:
    """Its order is cancelled while it rides: it is idle, and its pings say nothing about the
    ride it was on (its note stays until its next ride, and is not read)."""
    store = _CountingStore("t")
    d = _dispatcher(store=store)
    _riding(d)
    d.cancel_order(f"o-{NOON}", now=NOON + 300)
    assert d.courier("c1").status.value == "idle" and _leg(d) is not None
    store.reads.clear()
    for km in (1.0, 2.0):
        here = _on_the_way(km)
        d.update_position("c1", here, now=NOON + round(_base_s(d, CENTRE, here) * 1.3))
    assert store.reads == [] and _city(d) == (0, 0.0)


def test_learning_off_pings_teach_nothing_and_read_nothing() -> None:
    store = _CountingStore("t")
    d = _dispatcher(store=store, learning=False)
    _riding(d)
    assert store.writes == []  # learning off notes no ride
    # a note left from when learning was on is not learned from either
    noted = Leg(CENTRE, NOON, FAR).dump()
    store.set_learned({"leg:c1": noted})
    store.reads.clear()
    store.writes.clear()
    for i in range(1, 5):
        here = _on_the_way(0.8 * i)
        d.update_position("c1", here, now=NOON + round(_base_s(d, CENTRE, here) * 1.3))
    assert d.courier("c1").status.value == "busy"
    assert store.reads == [] and store.writes == []
    assert not observe_ping(d, d.travel, "c1", _on_the_way(3.5), SPEED, NOON + 1300)
    assert store.learned(["leg:c1", "travel:city", "travel:h12"]) == {"leg:c1": noted}
    assert d.travel_at(NOON) is d.travel


def test_a_point_the_base_model_cannot_time_teaches_nothing() -> None:
    """Over the planar (Grubhub) model a ping without planar coordinates (which the engine takes
    as a position) teaches nothing, and raises nothing; one with them teaches."""
    config = DispatchConfig(city="t", travel_prior_legs=0)
    d = Dispatcher(config=config, travel=PlanarTravel())
    speed = 427 / 60
    origin = Location(41.88, -87.63, x_m=0.0, y_m=0.0)
    target = Location(41.88, -87.60, x_m=4270.0, y_m=0.0)  # 10 minutes by the model
    note_departure(d, {"c1": Leg(origin, NOON, target)})
    assert _leg(d) == Leg(origin, NOON, target)  # the destination keeps its planar coordinates
    assert not observe_ping(d, d.travel, "c1", Location(41.88, -87.615), speed, NOON + 400)
    assert _city(d) == (0, 0.0)
    assert observe_ping(d, d.travel, "c1", Location(41.88, -87.615, x_m=2135.0, y_m=0.0), speed, NOON + 450)
    assert _city(d) == (1, pytest.approx(math.log(450 / 300)))


def test_a_ride_note_written_before_destinations_kept_planar_coordinates_still_parses() -> None:
    old = json.dumps([52.52, 13.405, None, None, NOON, 52.556, 13.405])
    assert Leg.parse(old) == Leg(Location(52.52, 13.405), NOON, Location(52.556, 13.405))


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_the_engine_learns_from_pings_on_the_rides_it_notes(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """Through the Dispatcher: a courier sent by a tick from where it waits to a merchant 2.4 km
    away pings on the way, riding 1.4x the model; the pings teach, the arrival the rest."""
    d = Dispatcher(store=make_store(kind, "t", request), config=DispatchConfig(city="t", travel_prior_legs=0))
    merchant = destination(CENTRE, 2400, 0)
    d.add_merchant(Merchant("m1", merchant, DeliveryArea(radius_m=3000), prep_s=900), now=0)
    d.start_shift("c1", CENTRE, now=0, shift_end=12 * 3600)
    d.place_order("o1", "m1", destination(merchant, 1500, 90), now=0)
    leaves = 60
    assert d.tick(now=leaves).assignments
    assert _leg(d) == Leg(CENTRE, leaves, merchant)
    for km in (0.8, 1.6):
        here = destination(CENTRE, 1000 * km, 0)
        d.update_position("c1", here, now=leaves + round(_base_s(d, CENTRE, here) * 1.4))
    assert _city(d)[0] == 2
    assert travel_factors(d, leaves).of(cell_of(CENTRE)) == pytest.approx(1.4, abs=0.01)
    arrive = leaves + round(_base_s(d, CENTRE, merchant) * 1.4)
    d.arrived("c1", now=arrive)
    n, total = _city(d)
    assert n == 3 and math.exp(total / n) == pytest.approx(1.4, abs=0.01)
    assert _leg(d) is None


def test_what_pings_taught_survives_a_redis_restart(redis_server: RedisServer, redis_url: str) -> None:
    """Over Redis the factors and the ride's checkpoint outlive the process and the server: after
    a restart the arrival observes only the rest of the ride, from the last ping learned from."""
    d = _dispatcher(store=RedisStore(redis_url, "t"), travel_prior_legs=0)
    _riding(d)
    here = _on_the_way(2.0)
    at = NOON + round(_base_s(d, CENTRE, here) * 1.3)
    d.update_position("c1", here, now=at)
    learned = travel_factors(d, NOON)
    assert learned.hour == pytest.approx(1.3, abs=0.005)
    redis_server.restart(hard=False)  # a clean shutdown saves the data set; a new process reads it
    again = Dispatcher(store=RedisStore(redis_url, "t"), config=d.config)
    assert travel_factors(again, NOON) == learned
    assert _leg(again) == Leg(here, at, FAR)
    arrive = at + round(_base_s(again, here, FAR) * 1.3)
    again.arrived("c1", now=arrive)
    assert _city(again)[0] == 2 and _leg(again) is None
    assert travel_factors(again, NOON).hour == pytest.approx(1.3, abs=0.005)
