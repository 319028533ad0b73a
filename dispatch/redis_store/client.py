"""Connections to Redis: the client, the key prefix of a city, and failures as
:class:`~dispatch.errors.StoreUnavailable`."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from dispatch.errors import StoreUnavailable

__all__ = ["Client", "city_prefix", "connect", "redis_errors_as_unavailable"]

_CITY = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
#: Error replies that mean "not now" rather than "never": the server is loading its AOF, is a
#: read-only replica after a failover, or cannot persist.
_TRANSIENT_REPLIES = ("LOADING", "READONLY", "MISCONF", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN")

P = ParamSpec("P")
R = TypeVar("R")

#: A single Redis server or a Redis Cluster (every key of a city lives in one slot of it).
Client = redis.Redis | RedisCluster


def city_prefix(city: str) -> str:
    """The prefix of every key of ``city``; ``{city}`` is the Redis Cluster hash tag.

    >>> city_prefix("berlin")
    'dispatch:{berlin}:'
    """
    if not isinstance(city, str) or not _CITY.match(city):
        raise ValueError(f"a city name is 1-64 of A-Z a-z 0-9 . _ -, got {city!r}")
    return f"dispatch:{{{city}}}:"


def connect(url: str, *, timeout_s: float = 2.0, cluster: bool = False) -> Client:
    """A client for ``url`` (``redis://host:port/db``) that fails fast instead of hanging.

    Socket and connect timeouts are ``timeout_s``; a command is re-sent once on a dropped
    connection (a restarted server), never after a timeout (it may have run). ``cluster``:
    ``url`` names one node of a Redis Cluster, and the client finds the others.
    """
    if cluster:
        return RedisCluster.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        protocol=2,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,)),
    )


def _unavailable(exc: Exception) -> StoreUnavailable:
    # the client is told what kind of failure, not where the server is
    return StoreUnavailable(
        f"the shared state (Redis) is unavailable ({type(exc).__name__}); retry shortly",
        retry_after_s=1,
    )


def redis_errors_as_unavailable(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn Redis connection failures, timeouts and transient replies into :class:`StoreUnavailable`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            raise _unavailable(exc) from exc
        except redis.exceptions.ResponseError as exc:
            if str(exc).startswith(_TRANSIENT_REPLIES):
                raise _unavailable(exc) from exc
            raise

    return wrapper
