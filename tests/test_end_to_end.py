"""A simulated city day through the real dispatcher: every order delivered once, correctly."""

from __future__ import annotations

from collections import Counter

import pytest

from dispatch import DispatchConfig, Dispatcher, GreedyPolicy, OptimizingPolicy
from simulations.city import synthetic_city
from simulations.world import World
from tests.conftest import make_store

#: per supply admission: the refusal codes, and at least how many of the 48 orders are taken
#: (with supply admission, its confidence margin, 0.1 by default, refuses the thinnest ones)
ADMISSION = {
    True: ({"outside-delivery-area", "window-infeasible", "no-courier-capacity"}, 20),
    False: ({"outside-delivery-area", "window-infeasible"}, 30),
}


@pytest.mark.parametrize("supply_admission", [True, False], ids=["supply-admission", "no-supply-admission"])
@pytest.mark.parametrize("store_kind", ["memory", "redis"])
@pytest.mark.parametrize("policy", [OptimizingPolicy(), GreedyPolicy()], ids=["optimizing", "greedy"])
def test_a_city_is_served_end_to_end(
    policy: object, store_kind: str, supply_admission: bool, request: pytest.FixtureRequest
) -> None:
    plan = synthetic_city(seed=11, n_orders=48, n_couriers=8)
    store = make_store(store_kind, "e2e", request)
    config = DispatchConfig(city="e2e", supply_admission=supply_admission)
    d = Dispatcher(store=store, config=config, policy=policy)  # type: ignore[arg-type]
    report = World(d, plan).run()
    codes, least = ADMISSION[supply_admission]
    accepted = report.placed
    assert accepted >= least and report.refusals, "the plan must exercise both acceptance and refusal"
    if supply_admission:  # the default: some order is refused for want of a courier in time
        assert "no-courier-capacity" in {r.code for r in report.refusals}
    assert report.undelivered == []
    assert len(report.delivered) == accepted

    events = d.store.events()
    delivered = Counter(e.order_id for e in events if e.kind == "order.delivered")
    assert set(delivered.values()) == {1}, "an order was delivered twice"
    assigned_to = {}
    for e in events:
        if e.kind == "order.assigned":
            assert e.order_id not in assigned_to, "an order was assigned twice"
            assigned_to[e.order_id] = e.courier_id
    for oid, (courier, placed, ready, picked, dropped) in report.delivered.items():
        assert assigned_to[oid] == courier, "delivered by a courier it was not assigned to"
        assert placed <= ready <= picked < dropped
    # refusals say why, in numbers
    for r in report.refusals:
        assert r.code in codes
        assert any(ch.isdigit() for ch in r.reason)


def test_both_stores_make_the_same_decisions(request: pytest.FixtureRequest) -> None:
    """The store holds state, it does not decide: the same city day gives the same event log,
    in memory, in Redis and in a Redis Cluster."""
    logs = []
    for kind in ("memory", "redis", "cluster"):
        plan = synthetic_city(seed=5, n_orders=30, n_couriers=6)
        d = Dispatcher(store=make_store(kind, "same", request), config=DispatchConfig(city="same"))
        World(d, plan).run()
        logs.append([(e.seq, e.at, e.kind, e.order_id, e.courier_id, e.data) for e in d.store.events()])
    assert len(logs[0]) > 100
    assert logs[0] == logs[1] == logs[2]
