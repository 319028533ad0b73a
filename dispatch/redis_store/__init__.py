"""State in Redis: the :class:`~dispatch.store.Store` protocol for many processes, and the city's
dispatcher lease.

The only package of :mod:`dispatch` that imports the Redis client. Every key of a city starts
with ``dispatch:{<city>}:``: the hash tag ``{<city>}`` puts all of them in one slot, so each
multi-key script below runs unchanged on Redis Cluster (the scripts build the names of the
per-cell and per-status keys from that prefix, as BullMQ does; all stay in the city's slot).

==============================  =======  ==================================================
key (after the prefix)          type     holds
==============================  =======  ==================================================
``merchants``                   hash     merchant id -> record (JSON)
``couriers``                    hash     courier id -> record (JSON, with ``version``)
``positions``                   hash     courier id -> last ping newer than the record
``on_shift``                    set      ids of couriers not off shift
``cell_of``                     hash     courier id -> H3 cell of its position
``cell:<h3>``                   set      couriers in that cell: candidate search is a lookup
``orders``                      hash     order id -> record (JSON, with ``version``)
``status:<status>``             zset     order ids by status, in the order they got it
``merchant_orders:<id>``        zset     a merchant's order ids, in placement order
``routes``                      hash     courier id -> plan (JSON)
``events``                      stream   one entry per event, entry id ``<seq>-0``
``seq``                         string   the last event seq (dense 1..n: the API pages on it)
``ordinal``                     string   a counter that orders the zsets
``lease`` / ``lease_token``     string   the dispatcher lease ``<token>:<owner>`` (PX) and
                                         its monotonically increasing fencing token
==============================  =======  ==================================================

:meth:`RedisStore.apply` is one Lua script: it checks the fencing token, new ids and versions
exactly like :class:`~dispatch.store.MemoryStore` (same errors, same messages), and only then
writes records, indexes and events. A script runs alone on the server, and it writes nothing
before every check has passed, so a change is applied whole or not at all.

Position pings are telemetry (last write wins, no version): they go to ``positions`` without
touching the versioned record, so a ping never makes a concurrent decision stale and a
decision never loses a newer ping. Reads merge the two.

Four modules: :mod:`~dispatch.redis_store.client` (connections, key prefixes, errors),
:mod:`~dispatch.redis_store.codec` (records <-> JSON), :mod:`~dispatch.redis_store.store`
(:class:`RedisStore` and its scripts) and :mod:`~dispatch.redis_store.lease` (the fenced
:class:`Lease`).
"""

from dispatch.redis_store.client import Client, city_prefix, connect, redis_errors_as_unavailable
from dispatch.redis_store.codec import (
    decode_courier,
    decode_merchant,
    decode_order,
    decode_route,
    encode_courier,
    encode_merchant,
    encode_order,
    encode_route,
)
from dispatch.redis_store.lease import Lease
from dispatch.redis_store.store import RedisStore

__all__ = [
    "Client",
    "Lease",
    "RedisStore",
    "city_prefix",
    "connect",
    "decode_courier",
    "decode_merchant",
    "decode_order",
    "decode_route",
    "encode_courier",
    "encode_merchant",
    "encode_order",
    "encode_route",
    "redis_errors_as_unavailable",
]
