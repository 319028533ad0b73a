"""The Store contract: atomic changes, version checks, events, the cell index.

Every test runs against both stores: the in-memory one and RedisStore on a real redis-server.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from dispatch import (
    DeliveryArea,
    DuplicateId,
    Location,
    Merchant,
    Order,
    OrderStatus,
    StaleWrite,
    Window,
)
from dispatch.models import Courier
from dispatch.store import Change, NewEvent, Store
from tests.conftest import make_store

HERE = Location(52.52, 13.405)


def _order(oid: str = "o1", **kw: object) -> Order:
    return Order(
        id=oid, merchant_id="m1", dropoff=HERE, placed_at=0, ready_at=600, window=Window(0, 1800), **kw
    )  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Store:
    s = make_store(request.param, "city", request)
    s.apply(Change(merchants=[Merchant("m1", HERE, DeliveryArea(radius_m=1000))], new_merchant_ids={"m1"}))
    return s


def test_change_applies_records_and_events_together(store: Store) -> None:
    events = store.apply(Change(orders=[_order()], events=[NewEvent("order.placed", 0, order_id="o1")]))
    assert [e.id for e in events] == ["city-1"]
    assert store.get_order("o1") == _order()
    assert [o.id for o in store.orders_with_status(OrderStatus.PLACED)] == ["o1"]
    assert [o.id for o in store.orders_of_merchant("m1")] == ["o1"]


def test_status_index_follows_updates(store: Store) -> None:
    store.apply(Change(orders=[_order()]))
    store.apply(Change(orders=[replace(_order(), status=OrderStatus.ASSIGNED, version=2)]))
    assert store.orders_with_status(OrderStatus.PLACED) == []
    assert [o.id for o in store.orders_with_status(OrderStatus.ASSIGNED)] == ["o1"]


def test_stale_write_changes_nothing(store: Store) -> None:
    store.apply(Change(orders=[_order()]))
    store.apply(Change(orders=[replace(_order(), status=OrderStatus.ASSIGNED, version=2)]))
    before = store.events()
    # a second decider that read version 1 tries to assign the same order, with another order
    with pytest.raises(StaleWrite, match="changed since it was read"):
        store.apply(
            Change(
                orders=[_order("o2"), replace(_order(), courier_id="c9", version=2)],
                events=[NewEvent("order.assigned", 5, order_id="o1")],
            )
        )
    assert store.get_order("o2") is None
    assert store.get_order("o1").courier_id is None  # type: ignore[union-attr]
    assert store.events() == before


def test_creating_an_existing_record_is_a_duplicate(store: Store) -> None:
    store.apply(Change(orders=[_order()]))
    with pytest.raises(DuplicateId):
        store.apply(Change(orders=[_order()]))
    with pytest.raises(DuplicateId):
        store.apply(
            Change(merchants=[Merchant("m1", HERE, DeliveryArea(radius_m=5))], new_merchant_ids={"m1"})
        )


def test_same_record_twice_in_one_change_is_refused(store: Store) -> None:
    with pytest.raises(StaleWrite):
        store.apply(Change(orders=[_order(), _order()]))
    assert store.get_order("o1") is None


def test_event_ids_are_unique_and_ordered(store: Store) -> None:
    for i in range(5):
        store.apply(Change(events=[NewEvent("x", i), NewEvent("y", i)]))
    events = store.events()
    assert len({e.id for e in events}) == 10
    assert [e.seq for e in events] == list(range(1, 11))
    assert [e.seq for e in store.events(after_seq=7)] == [8, 9, 10]
    assert [e.seq for e in store.events(after_seq=2, limit=2)] == [3, 4]


def test_cell_index_moves_and_forgets_couriers(store: Store) -> None:
    courier = Courier("c1", HERE, seen_at=0, shift_end=100)
    store.apply(Change(couriers=[courier], courier_cells={"c1": "cellA"}))
    assert [c.id for c in store.couriers_in_cells(["cellA"])] == ["c1"]
    store.set_position("c1", Location(52.53, 13.41), "cellB", 10)
    assert store.couriers_in_cells(["cellA"]) == []
    moved = store.couriers_in_cells(["cellB"])
    assert [c.id for c in moved] == ["c1"] and moved[0].seen_at == 10 and moved[0].version == 1
    store.apply(Change(courier_cells={"c1": None}))
    assert store.couriers_in_cells(["cellA", "cellB"]) == []
