from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import redis

from dispatch import DeliveryArea, DispatchConfig, Dispatcher, Location, MemoryStore, Merchant
from dispatch.store import Store
from tests.redis_server import RedisClusterServers, RedisServer

CENTRE = Location(52.5200, 13.4050)


def destination(origin: Location, distance_m: float, bearing_deg: float) -> Location:
    """The point ``distance_m`` from ``origin`` along a great circle (same sphere as geo)."""
    r = 6_371_008.8
    d = distance_m / r
    b = math.radians(bearing_deg)
    lat1, lng1 = math.radians(origin.lat), math.radians(origin.lng)
    lat2 = math.asin(math.sin(lat1) * math.cos(d) + math.cos(lat1) * math.sin(d) * math.cos(b))
    lng2 = lng1 + math.atan2(
        math.sin(b) * math.sin(d) * math.cos(lat1), math.cos(d) - math.sin(lat1) * math.sin(lat2)
    )
    return Location(math.degrees(lat2), math.degrees(lng2))


@pytest.fixture
def config() -> DispatchConfig:
    # The engine's tests build cities exact to the second: no confidence margin (its default,
    # 0.1, has its own tests in tests/dispatch/test_supply_admission.py).
    return DispatchConfig(city="test", promise_margin_share=0.0)


@pytest.fixture(params=["memory", "redis"])
def dispatcher(config: DispatchConfig, request: pytest.FixtureRequest) -> Dispatcher:
    """The engine over each store: every engine test runs on both."""
    d = Dispatcher(store=make_store(request.param, config.city, request), config=config)
    d.add_merchant(Merchant("m1", CENTRE, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    return d


# -- a real redis-server for the RedisStore tests ------------------------------------------------


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session (its own port and directory), flushed per test."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """The session's redis-server, empty."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()  # a test that killed it left it down
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A three-node Redis Cluster for the whole session, flushed per test."""
    cluster = RedisClusterServers(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_url(redis_cluster: RedisClusterServers) -> str:
    redis_cluster.flush()
    return redis_cluster.url


def make_store(kind: str, city: str, request: pytest.FixtureRequest) -> Store:
    """A store of ``kind`` for ``city``: one contract, two implementations ("memory", "redis"),
    the second also on a Redis Cluster ("cluster")."""
    if kind == "memory":
        return MemoryStore(city)
    from dispatch.redis_store import RedisStore, connect

    if kind == "cluster":
        return RedisStore(connect(request.getfixturevalue("redis_cluster_url"), cluster=True), city)
    return RedisStore(request.getfixturevalue("redis_url"), city)
