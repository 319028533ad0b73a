"""The Store contract: atomic changes, version checks, events, the cell index.

Every test runs against both stores: the in-memory one and RedisStore on a real redis-server,
and RedisStore again on a three-node Redis Cluster (a city's keys share one slot).
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
from dispatch.models import Courier, CourierStatus, Route, Stop, StopKind
from dispatch.store import Change, NewEvent, Store
from tests.conftest import make_store

HERE = Location(52.52, 13.405)


def _order(oid: str = "o1", **kw: object) -> Order:
    return Order(
        id=oid, merchant_id="m1", dropoff=HERE, placed_at=0, ready_at=600, window=Window(0, 1800), **kw
    )  # type: ignore[arg-type]


@pytest.fixture(params=["memory", "redis", "cluster"])
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


def _courier(cid: str = "c1", **kw: object) -> Courier:
    return Courier(cid, HERE, seen_at=0, shift_end=3600, **kw)  # type: ignore[arg-type]


def test_updating_a_missing_record_is_stale(store: Store) -> None:
    with pytest.raises(StaleWrite, match="'o1' does not exist any more"):
        store.apply(Change(orders=[replace(_order(), version=2)], events=[NewEvent("x", 0)]))
    assert store.get_order("o1") is None and store.events() == []


def test_a_stale_courier_write_names_both_versions(store: Store) -> None:
    store.apply(Change(couriers=[_courier()]))
    store.apply(Change(couriers=[_courier(version=2)]))
    with pytest.raises(
        StaleWrite, match=r"courier 'c1' changed since it was read \(stored version 2, write based on 1\)"
    ):
        store.apply(Change(couriers=[_courier(version=2)], routes={"c1": None}))
    assert store.get_courier("c1").version == 2  # type: ignore[union-attr]


def test_a_failed_change_writes_no_route_cell_or_event(store: Store) -> None:
    store.apply(Change(couriers=[_courier()], courier_cells={"c1": "cellA"}))
    route = Route("c1", (Stop(StopKind.PICKUP, ("o1",), HERE, 10, 20, 30, "m1"),), planned_at=5)
    with pytest.raises(StaleWrite):
        store.apply(
            Change(
                couriers=[_courier(version=3)],  # based on a version 2 that never was
                routes={"c1": route},
                courier_cells={"c1": "cellB"},
                events=[NewEvent("order.assigned", 5, order_id="o1")],
            )
        )
    assert store.get_route("c1") is None
    assert [c.id for c in store.couriers_in_cells(["cellA"])] == ["c1"]
    assert store.events() == []


def test_records_read_back_equal(store: Store) -> None:
    polygon = {"type": "Polygon", "coordinates": [[[13.4, 52.5], [13.5, 52.5], [13.5, 52.6], [13.4, 52.5]]]}
    zone = Merchant(
        "m2", Location(52.123456789012345, 13.987654321098765), DeliveryArea(polygon=polygon), 300, 1500
    )
    planar = Courier("c1", Location(41.1, -87.2, x_m=1234.5678, y_m=-0.001), 7, 9000, 7.0, 2, available_at=99)
    order = replace(
        _order(), status=OrderStatus.PICKED_UP, courier_id="c1", assigned_at=5, picked_up_at=700, version=3
    )
    route = Route(
        "c1",
        (
            Stop(StopKind.PICKUP, ("o1", "o2"), HERE, 10, 20, 30, "m1"),
            Stop(StopKind.DROPOFF, ("o1",), Location(52.53, 13.41), 40, 50, 60),
        ),
        planned_at=5,
        arrived_at=12,
    )
    store.apply(
        Change(
            merchants=[zone],
            couriers=[planar],
            orders=[replace(order, version=1)],
            routes={"c1": route},
            new_merchant_ids={"m2"},
        )
    )
    assert store.get_merchant("m2") == zone
    assert store.get_merchant("m2").area.polygon == polygon  # type: ignore[union-attr]
    assert store.get_courier("c1") == planar
    assert store.get_order("o1") == replace(order, version=1)
    assert store.get_route("c1") == route
    assert store.routes(["c1", "c9"]) == {"c1": route}
    store.apply(Change(couriers=[replace(planar, version=2)], routes={"c1": None}))
    assert store.get_route("c1") is None


def test_a_plan_is_written_with_its_courier(store: Store) -> None:
    store.apply(Change(couriers=[_courier()]))
    route = Route("c1", (Stop(StopKind.PICKUP, ("o1",), HERE, 10, 20, 30, "m1"),), planned_at=5)
    with pytest.raises(ValueError, match=r"plan of courier\(s\) \['c1'\] without the courier record"):
        store.apply(Change(routes={"c1": route}, events=[NewEvent("x", 0)]))
    assert store.get_route("c1") is None and store.events() == []
    store.apply(Change(couriers=[_courier(version=2)], routes={"c1": route}))
    assert store.get_route("c1") == route


def test_indexes_keep_the_order_records_entered_them(store: Store) -> None:
    for oid in ("o3", "o1", "o2"):
        store.apply(Change(orders=[_order(oid)]))
    store.apply(Change(orders=[replace(_order("o3"), status=OrderStatus.ASSIGNED, version=2)]))
    store.apply(Change(orders=[replace(_order("o3"), status=OrderStatus.PLACED, version=3)]))
    assert [o.id for o in store.orders_with_status(OrderStatus.PLACED)] == ["o1", "o2", "o3"]
    assert [o.id for o in store.orders_of_merchant("m1")] == ["o3", "o1", "o2"]
    assert store.orders_of_merchant("nobody") == []
    assert store.orders_with_status(OrderStatus.DELIVERED) == []


def test_only_couriers_on_shift_are_listed(store: Store) -> None:
    store.apply(Change(couriers=[_courier("c1"), _courier("c2", status=CourierStatus.BUSY)]))
    store.apply(Change(couriers=[_courier("c3", status=CourierStatus.OFF_SHIFT)]))
    assert sorted(c.id for c in store.couriers_on_shift()) == ["c1", "c2"]
    store.apply(Change(couriers=[_courier("c1", status=CourierStatus.OFF_SHIFT, version=2)]))
    assert [c.id for c in store.couriers_on_shift()] == ["c2"]


def test_a_ping_is_telemetry(store: Store) -> None:
    store.apply(Change(couriers=[_courier()], courier_cells={"c1": "cellA"}))
    store.set_position("nobody", HERE, "cellA", 5)  # an unknown courier: nothing happens
    assert store.get_courier("nobody") is None
    store.set_position("c1", Location(52.6, 13.5), "cellB", 20)
    moved = store.get_courier("c1")
    assert moved is not None and moved.location == Location(52.6, 13.5) and moved.seen_at == 20
    assert moved.version == 1 and store.events() == []
    # a decision based on that read keeps the ping; the next ping wins again
    store.apply(Change(couriers=[replace(moved, status=CourierStatus.BUSY, version=2)]))
    busy = store.get_courier("c1")
    assert busy is not None and busy.location == Location(52.6, 13.5) and busy.status is CourierStatus.BUSY
    # off shift: out of the index, and a late ping does not put it back
    store.apply(
        Change(
            couriers=[replace(busy, status=CourierStatus.OFF_SHIFT, version=3)], courier_cells={"c1": None}
        )
    )
    store.set_position("c1", HERE, "cellA", 30)
    assert store.couriers_in_cells(["cellA", "cellB"]) == []


def test_cells_index_many_couriers(store: Store) -> None:
    couriers = [_courier(f"c{i}") for i in range(30)]
    store.apply(Change(couriers=couriers, courier_cells={c.id: f"cell{int(c.id[1:]) % 3}" for c in couriers}))
    found = store.couriers_in_cells(["cell0", "cell2", "elsewhere"])
    assert sorted(c.id for c in found) == sorted(f"c{i}" for i in range(30) if i % 3 != 1)
    assert store.couriers_in_cells([]) == []


def test_event_pages_cover_the_log_once(store: Store) -> None:
    store.apply(
        Change(events=[NewEvent("order.placed", i, order_id=f"o{i}", data={"n": i}) for i in range(7)])
    )
    events = store.events()
    assert events[0].id == "city-1" and events[0].data == {"n": 0} and events[0].order_id == "o0"
    pages, after = [], 0
    while page := store.events(after, limit=3):
        pages.append([e.seq for e in page])
        after = page[-1].seq
    assert pages == [[1, 2, 3], [4, 5, 6], [7]]
    assert store.events(after_seq=7) == [] and store.events(after_seq=100) == []
    assert store.apply(Change()) == []


def test_the_log_reads_backwards_in_pages(store: Store) -> None:
    assert store.events_back() == []
    store.apply(Change(events=[NewEvent("order.placed", i, order_id=f"o{i}") for i in range(7)]))
    assert [e.seq for e in store.events_back(limit=3)] == [7, 6, 5]
    assert [e.seq for e in store.events_back(5, limit=3)] == [4, 3, 2]
    assert [e.seq for e in store.events_back(2)] == [1]
    assert store.events_back(1) == [] and store.events_back(limit=0) == []
    assert [(e.order_id, e.at) for e in store.events_back(limit=1)] == [("o6", 6)]
    assert store.events_back(100, limit=2) == store.events_back(limit=2)
