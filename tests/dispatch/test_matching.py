"""Matching: the assignment is optimal for its costs; bundling and commitment behave."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, GreatCircleTravel, Merchant, Order, Window
from dispatch.matching import make_bundles, solve_assignment
from tests.conftest import CENTRE, destination


def _brute_force(n_left: int, n_right: int, arcs: dict[tuple[int, int], int], skip: list[int]) -> int:
    best = None
    options = [[-1] + [j for j in range(n_right) if (i, j) in arcs] for i in range(n_left)]
    for choice in itertools.product(*options):
        used = [j for j in choice if j >= 0]
        if len(used) != len(set(used)):
            continue
        total = sum(arcs[(i, j)] if j >= 0 else skip[i] for i, j in enumerate(choice))
        best = total if best is None else min(best, total)
    assert best is not None
    return best


@st.composite
def _assignment_cases(draw: st.DrawFn) -> tuple[int, int, dict[tuple[int, int], int], list[int]]:
    n_left = draw(st.integers(1, 5))
    n_right = draw(st.integers(1, 5))
    arcs = {}
    for i in range(n_left):
        for j in range(n_right):
            if draw(st.booleans()):
                arcs[(i, j)] = draw(st.integers(0, 1000))
    skip = [draw(st.integers(0, 1500)) for _ in range(n_left)]
    return n_left, n_right, arcs, skip


@settings(max_examples=300, deadline=None)
@given(_assignment_cases())
def test_assignment_is_optimal_against_brute_force(
    case: tuple[int, int, dict[tuple[int, int], int], list[int]],
) -> None:
    n_left, n_right, arcs, skip = case
    keys = sorted(arcs)
    left = np.array([i for i, _ in keys], dtype=np.int64)
    right = np.array([j for _, j in keys], dtype=np.int64)
    cost = np.array([arcs[k] for k in keys], dtype=np.int64)
    chosen = solve_assignment(n_left, n_right, left, right, cost, np.array(skip, dtype=np.int64))
    used = [int(j) for j in chosen if j >= 0]
    assert len(used) == len(set(used)), "a courier was given two bundles"
    total = sum(arcs[(i, int(j))] if j >= 0 else skip[i] for i, j in enumerate(chosen))
    assert total == _brute_force(n_left, n_right, arcs, skip)


def _city(**overrides: object) -> Dispatcher:
    # no confidence margin: these cities are exact to the second
    settings = {"promise_margin_share": 0.0, **overrides}
    d = Dispatcher(config=DispatchConfig(city="t", **settings))  # type: ignore[arg-type]
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    return d


def test_scarce_couriers_get_bundles_of_one_merchant() -> None:
    d = _city()
    d.start_shift("c1", destination(CENTRE, 300, 0), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1000, 10), now=0)
    d.place_order("o2", "m1", destination(CENTRE, 1100, 20), now=30)
    result = d.tick(now=500)
    assert [a.order_ids for a in result.assignments] == [("o1", "o2")]
    stops = result.assignments[0].route.stops
    assert stops[0].order_ids == ("o1", "o2")  # one pickup stop for the bundle
    for oid in ("o1", "o2"):
        drop = next(s for s in stops if s.order_ids == (oid,))
        assert drop.service_at <= d.order(oid).window.end


def test_food_already_waiting_counts_as_ready_now_when_bundling() -> None:
    merchant = Merchant("m1", CENTRE, DeliveryArea(radius_m=3000))
    orders = [
        Order(
            id=f"o{i}",
            merchant_id="m1",
            dropoff=destination(CENTRE, 1500, 90),
            placed_at=0,
            ready_at=ready_at,
            window=Window(0, 3600),
        )
        for i, ready_at in enumerate((0, 660))
    ]
    config = DispatchConfig(bundle_ready_gap_s=600)
    # ready 11 minutes apart: two bundles while the second is still cooking...
    assert len(make_bundles(orders, merchant, 2, config, GreatCircleTravel(), 4.5, now=0)) == 2
    # ...one once both wait at the counter
    assert len(make_bundles(orders, merchant, 2, config, GreatCircleTravel(), 4.5, now=660)) == 1


def test_no_bundle_that_breaks_a_promise() -> None:
    d = _city()
    d.start_shift("c1", destination(CENTRE, 300, 0), now=0, shift_end=4 * 3600)
    # two customers at opposite edges of the area: carrying both makes the second late
    d.place_order("o1", "m1", destination(CENTRE, 2900, 0), now=0)
    d.place_order("o2", "m1", destination(CENTRE, 2900, 180), now=0)
    result = d.tick(now=500)
    assert [len(a.order_ids) for a in result.assignments] == [1]


def test_plenty_of_couriers_means_no_bundles() -> None:
    d = _city()
    for i in range(4):
        d.start_shift(f"c{i}", destination(CENTRE, 300 + 100 * i, 90 * i), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1000, 10), now=0)
    d.place_order("o2", "m1", destination(CENTRE, 1100, 20), now=0)
    result = d.tick(now=500)
    assert sorted(a.order_ids for a in result.assignments) == [("o1",), ("o2",)]


def test_commitment_waits_until_the_food_is_nearly_ready() -> None:
    d = _city()
    d.update_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=1200), now=0)
    d.start_shift("c1", destination(CENTRE, 200, 0), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 800, 10), now=0)
    # the courier is a minute away and the food needs 20 minutes: committing now would park it
    assert d.tick(now=60).assignments == ()
    assert d.tick(now=600).assignments == ()
    committed = None
    for now in range(660, 1260, 60):
        if d.tick(now=now).assignments:
            committed = now
            break
    assert committed is not None
    pickup = d.route("c1").stops[0]
    # the courier arrives at most max_early_s before the food, and the food waits for no one
    assert pickup.arrive_at + d.config.pickup_service_s // 2 >= 1200 - d.config.max_early_s
    assert pickup.service_at == 1200


def test_couriers_beyond_the_travel_budget_are_not_candidates() -> None:
    # the order waits with no courier in reach: supply admission (on by default) would refuse it
    d = _city(max_pickup_travel_s=300, orphan_pickup_travel_s=300, supply_admission=False)
    d.start_shift("far", destination(CENTRE, 2500, 0), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 500, 10), now=0)
    assert d.tick(now=600).assignments == ()
    d.start_shift("near", destination(CENTRE, 500, 0), now=600, shift_end=4 * 3600)
    assert [a.courier_id for a in d.tick(now=610).assignments] == ["near"]


def test_no_pickup_after_shift_end() -> None:
    d = _city()
    d.start_shift("c1", destination(CENTRE, 300, 0), now=0, shift_end=800)
    d.place_order("o1", "m1", destination(CENTRE, 900, 10), now=0)  # ready at 600
    d.update_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=900), now=0)
    d.place_order("o2", "m1", destination(CENTRE, 900, 10), now=0)  # ready at 900: after the shift
    result = d.tick(now=500)
    assert [a.order_ids for a in result.assignments] == [("o1",)]


def test_a_remote_merchant_gets_a_far_courier_rather_than_none() -> None:
    # supply admission (on by default) counts couriers within max_pickup_travel_s only, not the
    # orphan budget: it would refuse this order, which the matching is here to serve
    d = _city(max_pickup_travel_s=300, orphan_pickup_travel_s=1800, supply_admission=False)
    d.start_shift("far", destination(CENTRE, 2500, 0), now=0, shift_end=4 * 3600)
    d.start_shift("farther", destination(CENTRE, 3500, 0), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 500, 10), now=0)
    # nobody within 5 minutes: the nearest courier within the orphan budget takes it
    assert [a.courier_id for a in d.tick(now=600).assignments] == ["far"]


def test_an_order_waits_for_a_better_courier_finishing_soon() -> None:
    d = _city()
    d.add_merchant(Merchant("m2", destination(CENTRE, 2000, 90), DeliveryArea(radius_m=3000)), now=0)
    d.start_shift("busy", destination(CENTRE, 200, 0), now=0, shift_end=4 * 3600)
    d.start_shift("far", destination(CENTRE, 3000, 270), now=0, shift_end=4 * 3600)
    # "busy" gets a short job next to the merchant; "far" is idle but 3 km away
    d.place_order("first", "m1", destination(CENTRE, 300, 180), now=0, ready_at=0)
    assert [a.courier_id for a in d.tick(now=0).assignments] == ["busy"]
    d.place_order("o2", "m1", destination(CENTRE, 800, 10), now=60, ready_at=240)
    # the best plan gives o2 to "busy" once it is free: nothing is committed to "far" meanwhile
    assert d.tick(now=60).assignments == ()
    assert d.order("o2").status.value == "placed"


def _one_free_courier_and_one_busy(**overrides: object) -> Dispatcher:
    d = _city(**overrides)
    d.start_shift("busy", destination(CENTRE, 200, 0), now=0, shift_end=4 * 3600)
    # a job that keeps "busy" away for about 15 minutes
    d.place_order("first", "m1", destination(CENTRE, 2000, 180), now=0, ready_at=0)
    assert [a.courier_id for a in d.tick(now=0).assignments] == ["busy"]
    d.start_shift("free", destination(CENTRE, 300, 90), now=60, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1000, 10), now=60, ready_at=60)
    d.place_order("o2", "m1", destination(CENTRE, 1100, 20), now=60, ready_at=60)
    return d


def test_the_assignment_bundles_an_order_that_would_wait_for_a_busy_courier() -> None:
    # two orders, two couriers: the ratio rule forms no bundle, and the flow alone gives o2 to
    # the courier still busy far away; choosing the pair carries both now
    d = _one_free_courier_and_one_busy()
    result = d.tick(now=60)
    assert [(a.courier_id, sorted(a.order_ids)) for a in result.assignments] == [("free", ["o1", "o2"])]
    for oid in ("o1", "o2"):
        assert d.order(oid).status.value == "assigned"


def test_without_bundle_choice_the_second_order_waits_for_the_busy_courier() -> None:
    d = _one_free_courier_and_one_busy(bundle_choice_max_orders=0)
    result = d.tick(now=60)
    assert [(a.courier_id, len(a.order_ids)) for a in result.assignments] == [("free", 1)]


_PackingCase = tuple[list[tuple[int, ...]], int, dict[tuple[int, int], tuple[int, bool]], list[int], int, int]


@st.composite
def _packing_cases(draw: st.DrawFn) -> _PackingCase:
    n_orders = draw(st.integers(1, 4))
    subsets = [c for size in (1, 2, 3) for c in itertools.combinations(range(n_orders), size)]
    chosen = draw(st.lists(st.sampled_from(subsets), min_size=1, max_size=5, unique=True))
    n_couriers = draw(st.integers(1, 3))
    arcs = {}  # (bundle, courier) -> (cost, timely)
    for b in range(len(chosen)):
        for j in range(n_couriers):
            if draw(st.booleans()):
                arcs[(b, j)] = (draw(st.integers(0, 1000)), draw(st.booleans()))
    waited = [draw(st.integers(0, 500)) for _ in range(n_orders)]
    return chosen, n_couriers, arcs, waited, draw(st.integers(1, 3)), draw(st.integers(0, 2**16))


@settings(max_examples=150, deadline=None)
@given(_packing_cases())
def test_bundle_choice_is_an_optimal_packing_against_brute_force(case: _PackingCase) -> None:
    import random

    from dispatch.matching import Bundle
    from dispatch.matching.assignment import Match
    from dispatch.matching.packing import PACK_WORTH, pack

    members, n_couriers, arcs, waited, k, seed = case
    if not arcs:
        return
    orders = [
        Order(f"o{i}", "m1", destination(CENTRE, 500, 10), placed_at=0, ready_at=0, window=Window(0, 3600))
        for i in range(len(waited))
    ]
    bundles = [Bundle("m1", tuple(orders[i] for i in m)) for m in members]
    options = []
    for b in range(len(bundles)):
        mine = sorted((c, j) for (bb, j), (c, _) in arcs.items() if bb == b)
        options.append(
            (
                np.array([j for _, j in mine], dtype=np.int64),
                np.array([c for c, _ in mine], dtype=np.int64),
                np.array([arcs[(b, j)][1] for _, j in mine], dtype=bool),
            )
        )
    worth = PACK_WORTH * (1 + max(c for c, _ in arcs.values()))

    def valid(choice: dict[int, int]) -> bool:
        covered = [i for b in choice for i in members[b]]
        return len(set(choice.values())) == len(choice) and len(set(covered)) == len(covered)

    def value(choice: dict[int, int]) -> int:
        covered = [i for b in choice for i in members[b]]
        return sum(arcs[(b, j)][0] for b, j in choice.items()) - sum(worth + waited[i] for i in covered)

    choices = [
        {b: j for b, j in enumerate(combo) if j >= 0}
        for combo in itertools.product(
            *[[-1] + [j for j in range(n_couriers) if (b, j) in arcs] for b in range(len(bundles))]
        )
    ]
    feasible = [c for c in choices if valid(c)]
    # a hint: any feasible matching, possibly poor and using arcs beyond the k cheapest
    start = random.Random(seed).choice(feasible)
    hint = {b: Match(j, *arcs[(b, j)]) for b, j in start.items()}
    waited_of = {o.id: w for o, w in zip(orders, waited, strict=True)}
    packed = pack(bundles, options, waited_of, hint, DispatchConfig(candidates_per_bundle=k))
    got = {b: j for b, (j, _, _) in packed.items()}
    assert valid(got), "a courier carries two bundles, or an order is in two"
    assert all(packed[b][1:] == arcs[(b, j)] for b, j in got.items())
    assert value(got) <= value(start)
    # among the k cheapest arcs of each bundle and the hint's, nothing is better
    allowed = {
        (b, int(options[b][0][a])) for b in range(len(bundles)) for a in range(min(k, options[b][0].size))
    }
    allowed |= set(start.items())
    assert value(got) == min(value(c) for c in feasible if set(c.items()) <= allowed)
