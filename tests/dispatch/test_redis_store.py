"""What only a shared store has to get right: the lease and its fencing token, racing deciders in
several processes (here: several clients), one hash slot per city, and surviving a Redis restart.

The contract every store meets is in ``test_store.py``; these run on a real redis-server.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, Location, Merchant, OrderStatus, StaleWrite
from dispatch.errors import DispatchError, InvalidInput, LeaseLost, StoreUnavailable
from dispatch.models import Courier
from dispatch.redis_store import Lease, RedisStore, connect
from dispatch.store import Change, MemoryStore, NewEvent
from tests.conftest import CENTRE, destination
from tests.redis_server import RedisServer


class _Interleaved(RedisStore):
    """A store that lets another caller act between this caller's reads and its write."""

    before_apply: Callable[[], None] | None = None

    def apply(self, change: Change) -> list:  # type: ignore[type-arg]
        hook, self.before_apply = self.before_apply, None
        if hook is not None:
            hook()
        return super().apply(change)


def _city(store: RedisStore | MemoryStore, *, supply_admission: bool = True) -> Dispatcher:
    d = Dispatcher(store=store, config=DispatchConfig(city=store.city, supply_admission=supply_admission))
    if store.get_merchant("m1") is None:
        d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=300), now=0)
    return d


def _two_processes(url: str) -> tuple[Dispatcher, Dispatcher]:
    """Two dispatchers over one city, each with its own connection, as two processes have."""
    first = _city(RedisStore(url, "race"))
    second = Dispatcher(store=_Interleaved(url, "race"), config=DispatchConfig(city="race"))
    return first, second


def test_racing_ticks_assign_each_order_once(redis_url: str) -> None:
    a, b = _two_processes(redis_url)
    for i in range(3):
        a.start_shift(f"c{i}", destination(CENTRE, 300 + 100 * i, 90 * i), now=0, shift_end=4 * 3600)
    for i in range(4):
        a.place_order(f"o{i}", "m1", destination(CENTRE, 800 + 150 * i, 45 * i), now=10)
    decided: list[object] = []
    assert isinstance(b.store, _Interleaved)
    # b reads the snapshot, then a ticks and writes, then b writes what it decided on the old snapshot
    b.store.before_apply = lambda: decided.append(a.tick(now=400))
    with pytest.raises(StaleWrite, match="changed since it was read"):
        b.tick(now=400)
    assigned = [e for e in a.store.events() if e.kind == "order.assigned"]
    assert len(assigned) == sum(len(x.order_ids) for x in decided[0].assignments) > 0  # type: ignore[attr-defined]
    assert len({e.order_id for e in assigned}) == len(assigned)
    # the loser's next tick starts from the winner's decisions: nothing is assigned twice
    b.tick(now=460)
    assigned = [e.order_id for e in a.store.events() if e.kind == "order.assigned"]
    assert Counter(assigned).most_common(1)[0][1] == 1


def test_a_plan_changed_meanwhile_refuses_the_second_writer(redis_url: str) -> None:
    a, b = _two_processes(redis_url)
    a.start_shift("c1", destination(CENTRE, 200, 0), now=0, shift_end=4 * 3600)
    a.place_order("o1", "m1", destination(CENTRE, 900, 90), now=10)
    a.place_order("o2", "m1", destination(CENTRE, 950, 100), now=10)
    a.tick(now=400)
    route = a.route("c1")
    assert set(route.order_ids) == {"o1", "o2"}
    assert isinstance(b.store, _Interleaved)
    # the courier arrives (process a) while the app cancels o1 (process b) on the plan it read before
    b.store.before_apply = lambda: a.arrived("c1", now=route.stops[0].arrive_at)
    with pytest.raises(StaleWrite):
        b.cancel_order("o1", now=route.stops[0].arrive_at)
    assert a.route("c1").arrived_at == route.stops[0].arrive_at
    # retried on fresh state, the cancel keeps the arrival and drops only o1
    b.cancel_order("o1", now=route.stops[0].arrive_at + 1)
    after = a.route("c1")
    assert after.order_ids == ("o2",) and after.arrived_at == route.stops[0].arrive_at


def test_threads_racing_never_assign_twice(redis_url: str) -> None:
    setup = _city(RedisStore(redis_url, "threads"))
    for i in range(6):
        setup.start_shift(f"c{i}", destination(CENTRE, 200 + 150 * i, 60 * i), now=0, shift_end=8 * 3600)
    errors: list[BaseException] = []

    def ticker(seed: int) -> None:
        d = Dispatcher(store=RedisStore(redis_url, "threads"), config=DispatchConfig(city="threads"))
        for n in range(15):
            try:
                d.tick(now=600 + 60 * n + seed)
            except StaleWrite:
                pass  # the other dispatcher won this one; the next tick reads its decisions
            except BaseException as exc:
                errors.append(exc)

    def placer() -> None:
        # without supply admission: whether 6 couriers can still take an order would depend on
        # how the threads interleave; this test is about the races, not admission
        config = DispatchConfig(city="threads", supply_admission=False)
        d = Dispatcher(store=RedisStore(redis_url, "threads"), config=config)
        for i in range(12):
            try:
                d.place_order(f"o{i}", "m1", destination(CENTRE, 500 + 80 * i, 30 * i), now=300 + i)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=ticker, args=(s,)) for s in (0, 1)] + [threading.Thread(target=placer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = setup.store
    assigned = Counter(e.order_id for e in store.events() if e.kind == "order.assigned")
    assert assigned and max(assigned.values()) == 1
    in_routes = Counter(
        oid for r in store.routes([f"c{i}" for i in range(6)]).values() for oid in r.order_ids
    )
    assert max(in_routes.values()) == 1
    for order in store.orders_with_status(OrderStatus.ASSIGNED):
        assert order.courier_id is not None and order.id in store.get_route(order.courier_id).order_ids  # type: ignore[union-attr]


def test_the_lease_has_one_holder_and_fences_the_last_one(redis_url: str) -> None:
    client = connect(redis_url)
    first, second = Lease(client, "fence", ttl_s=30, owner="p1"), Lease(client, "fence", ttl_s=30, owner="p2")
    assert first.acquire() and first.token == 1 and first.held
    assert not second.acquire() and second.token is None
    assert first.renew() and first.holder() == (1, "p1")
    store = RedisStore(client, "fence")
    store.fenced(1).apply(Change(events=[NewEvent("tick", 1)]))  # the holder's write goes through

    first.release()
    assert second.acquire() and second.token == 2  # a new holder gets a larger token
    late = Change(
        couriers=[Courier("c1", CENTRE, 0, 3600)], events=[NewEvent("late", 2)], routes={"c1": None}
    )
    with pytest.raises(LeaseLost, match="token 1"):
        store.fenced(1).apply(late)
    assert [e.kind for e in store.events()] == ["tick"]  # nothing of the late write
    assert store.get_courier("c1") is None
    assert not first.renew()  # and the old holder cannot take it back by renewing
    store.fenced(2).apply(Change(events=[NewEvent("tick", 3)]))
    second.release()
    with pytest.raises(LeaseLost, match="nobody"):
        store.fenced(2).apply(Change(events=[NewEvent("late", 4)]))
    assert store.apply(Change(events=[NewEvent("api", 5)]))[0].seq == 3  # unfenced writes need no lease


def test_an_expired_lease_is_taken_over(redis_url: str) -> None:
    client = connect(redis_url)
    dead, alive = (
        Lease(client, "expiry", ttl_s=0.05, owner="dead"),
        Lease(client, "expiry", ttl_s=5, owner="alive"),
    )
    assert dead.acquire()
    for _ in range(200):  # the dead holder never renews; its key expires on the server
        if alive.acquire():
            break
        threading.Event().wait(0.01)
    assert alive.token == 2 and alive.holder() == (2, "alive")


def test_every_key_of_a_city_is_in_one_slot(redis_url: str) -> None:
    d = _city(RedisStore(redis_url, "berlin"))
    d.start_shift("c1", destination(CENTRE, 300, 0), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 900, 90), now=10)
    d.tick(now=400)
    Lease(connect(redis_url), "berlin").acquire()
    keys = redis.Redis.from_url(redis_url, decode_responses=True).keys("*")
    assert len(keys) >= 10 and all(k.startswith("dispatch:{berlin}:") for k in keys)
    assert {key_slot(k.encode()) for k in keys} == {key_slot(b"berlin")}
    assert any(k.startswith("dispatch:{berlin}:cell:") for k in keys)  # the H3 cell index


def test_a_city_ticks_fenced_on_a_cluster(redis_cluster_url: str) -> None:
    """On a three-node cluster, cities land on different nodes; each one's scripts run whole."""
    client = connect(redis_cluster_url, cluster=True)
    slots = set()
    for city in ("berlin", "paris", "rome"):
        store = RedisStore(client, city)
        d = _city(store)
        d.start_shift("c1", destination(CENTRE, 300, 0), now=0, shift_end=4 * 3600)
        d.place_order("o1", "m1", destination(CENTRE, 900, 90), now=10)
        lease = Lease(client, city, ttl_s=30)
        assert lease.acquire() and lease.token is not None
        token = lease.token
        with store.fencing(token):
            assert [a.order_ids for a in d.tick(now=400).assignments] == [("o1",)]
        lease.release()
        with store.fencing(token), pytest.raises(LeaseLost):
            store.apply(Change(events=[NewEvent("late", 500)]))
        slots.add(key_slot(store.key("orders").encode()))
    assert len(slots) == 3


def test_nothing_acknowledged_is_lost_when_redis_is_killed(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "aof")  # appendonly yes, appendfsync always
    server.start()
    try:
        # orders with no courier on shift: supply admission (on by default) would refuse them, and
        # this test is about what was acknowledged, not admission
        d = _city(RedisStore(server.url, "durable"), supply_admission=False)
        placed = [
            d.place_order(f"o{i}", "m1", destination(CENTRE, 500 + 10 * i, 7 * i), now=i) for i in range(20)
        ]
        server.kill()  # kill -9: no shutdown, no final fsync
        with pytest.raises(StoreUnavailable) as refused:
            d.place_order("o-down", "m1", destination(CENTRE, 500, 0), now=30)
        assert refused.value.retry_after_s >= 1
        server.start()
        # the same store object reconnects by itself; every acknowledged order is there once
        assert [d.order(o.id) for o in placed] == placed
        events = d.store.events()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert Counter(e.order_id for e in events if e.kind == "order.placed") == {o.id: 1 for o in placed}
        d.place_order("o-up", "m1", destination(CENTRE, 500, 0), now=31)
        assert d.store.events()[-1].seq == len(events) + 1
    finally:
        server.stop()


def test_an_unreachable_redis_is_unavailable_not_a_crash() -> None:
    from tests.redis_server import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", "nowhere", timeout_s=0.5)
    for call in (
        lambda: store.get_order("o1"),
        lambda: store.couriers_on_shift(),
        lambda: store.apply(Change()),
    ):
        with pytest.raises(StoreUnavailable, match="unavailable") as err:
            call()
        assert isinstance(err.value, DispatchError) and "127.0.0.1" not in str(err.value)


def test_a_bad_city_name_or_client_is_refused(redis_url: str) -> None:
    with pytest.raises(ValueError, match="city name"):
        RedisStore(redis_url, "a{b}")
    with pytest.raises(ValueError, match="decode_responses"):
        RedisStore(redis.Redis.from_url(redis_url), "ok")


def test_a_location_round_trips_exactly(redis_url: str) -> None:
    d = _city(RedisStore(redis_url, "exact"))
    where = Location(52.520000000000003, 13.404999999999999)
    d.start_shift("c1", where, now=0, shift_end=3600)
    d.update_position("c1", Location(52.52345678901234, 13.40567890123456), now=5)
    assert d.courier("c1").location == Location(52.52345678901234, 13.40567890123456)


def test_the_codecs_cover_every_field() -> None:
    """A field added to a record must be added to its Redis encoding too (or it would be dropped)."""
    import json
    from dataclasses import fields

    from dispatch import redis_store as rs
    from dispatch.models import DeliveryArea, Order, Route, Stop, StopKind, Window

    merchant = Merchant("m1", CENTRE, DeliveryArea(radius_m=1000))
    order = Order("o1", "m1", CENTRE, 0, 0, Window(0, 60))
    stop = Stop(StopKind.PICKUP, ("o1",), CENTRE, 1, 2, 3, "m1")
    route = Route("c1", (stop,), 0)
    courier = Courier("c1", CENTRE, 0, 3600)
    assert len(json.loads(rs.encode_merchant(merchant))) == len(fields(Merchant))
    assert len(json.loads(rs.encode_order(order))) == len(fields(Order))
    assert len(json.loads(rs.encode_courier(courier))) == len(fields(Courier))
    assert len(json.loads(rs.encode_route(route))) == len(fields(Route))
    assert len(json.loads(rs.encode_route(route))["stops"][0]) == len(fields(Stop))


def test_fencing_covers_the_tick_context_only(redis_url: str) -> None:
    import asyncio

    client = connect(redis_url)
    lease, rival = Lease(client, "ctx", ttl_s=30, owner="me"), Lease(client, "ctx", ttl_s=30, owner="rival")
    store = RedisStore(client, "ctx")
    assert lease.acquire()
    token = lease.token
    assert token is not None
    lease.release()
    assert rival.acquire()  # the lease moved on while "my" tick was running

    async def tick_and_request() -> tuple[BaseException | None, int]:
        async def tick() -> BaseException | None:
            with store.fencing(token):  # what Runtime.tick does around the tick's thread
                try:
                    await asyncio.to_thread(store.apply, Change(events=[NewEvent("late tick", 1)]))
                except LeaseLost as exc:
                    return exc
            return None

        async def request() -> int:  # an API request next to it, in its own context
            return (await asyncio.to_thread(store.apply, Change(events=[NewEvent("request", 2)])))[0].seq

        return await asyncio.gather(tick(), request())  # type: ignore[return-value]

    refused, seq = asyncio.run(tick_and_request())
    assert isinstance(refused, LeaseLost) and seq == 1
    assert [e.kind for e in store.events()] == ["request"]


@pytest.mark.parametrize("after, limit", [(-1, None), (2**64, None), (1.5, None), (0, -1), (0, 2**64)])
def test_event_reads_out_of_range_are_refused_alike_in_both_stores(
    redis_url: str, after: object, limit: object
) -> None:
    """A negative ``after`` once read the memory log's tail, and one past Redis's stream ids was a
    server error; the engine refuses both, in both stores, naming the argument."""
    for store in (MemoryStore(), RedisStore(redis_url, "ranges")):
        city = _city(store)  # adding the merchant writes one event
        assert len(city.events()) == 1
        with pytest.raises(InvalidInput, match="after_seq" if limit is None else "limit"):
            city.events(after, limit)  # type: ignore[arg-type]
        assert len(city.events(0, 5)) == 1
