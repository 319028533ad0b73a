"""The :class:`~dispatch.store.Store` of one city in Redis (see :mod:`dispatch.redis_store`)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import cast

from dispatch.errors import DuplicateId, LeaseLost
from dispatch.models import (
    Courier,
    CourierStatus,
    Event,
    Location,
    Merchant,
    Order,
    OrderStatus,
    Route,
)
from dispatch.redis_store.client import Client, city_prefix, connect, redis_errors_as_unavailable
from dispatch.redis_store.codec import (
    decode_courier,
    decode_merchant,
    decode_order,
    decode_route,
    dumps,
    encode_courier,
    encode_merchant,
    encode_order,
    encode_position,
    encode_route,
)
from dispatch.store import Change, check_plan_owners, version_error

__all__ = ["RedisStore"]

_CHUNK = 1000  # ids per HMGET inside a script (Lua's unpack has a stack limit)
_DECODED_MAX = 200_000  # decoded couriers kept per store before the cache starts over

#: (key prefix, token) of the lease the writes in this context are fenced with (see RedisStore.fencing)
_FENCE: ContextVar[tuple[str, int] | None] = ContextVar("dispatch_redis_fence", default=None)


# -- scripts ------------------------------------------------------------------------------------

_APPLY = """
local K_MERCHANTS, K_COURIERS, K_ORDERS, K_ROUTES = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local K_POSITIONS, K_CELL_OF, K_ON_SHIFT, K_SEQ = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local K_EVENTS, K_ORDINAL, K_LEASE = KEYS[9], KEYS[10], KEYS[11]
local prefix = ARGV[1]
local c = cjson.decode(ARGV[2])

-- checks first: nothing is written unless every one passes
if c.fence >= 0 then
  local holder = redis.call('GET', K_LEASE)
  if (not holder) or string.match(holder, '^(%d+):') ~= tostring(c.fence) then
    return {'lease', holder or ''}
  end
end
for _, mid in ipairs(c.new_merchants) do
  if redis.call('HEXISTS', K_MERCHANTS, mid) == 1 then return {'dup-merchant', mid} end
end
local function check(records, key, what)
  local seen, olds = {}, {}
  for i, r in ipairs(records) do
    local id, version = r[1], r[2]
    if seen[id] then return {'twice', what, id}, olds end
    seen[id] = true
    local raw = redis.call('HGET', key, id)
    local stored = -1
    if raw then
      olds[i] = cjson.decode(raw)
      stored = olds[i].version
    end
    local expected = 1
    if stored >= 0 then expected = stored + 1 end
    if version ~= expected then return {'version', what, id, stored, version}, olds end
  end
  return nil, olds
end
local failed, old_orders
failed = check(c.couriers, K_COURIERS, 'courier')
if failed then return failed end
failed, old_orders = check(c.orders, K_ORDERS, 'order')
if failed then return failed end

local function move(id, cell)
  local old = redis.call('HGET', K_CELL_OF, id)
  if old == cell then return end
  if old then redis.call('SREM', prefix .. 'cell:' .. old, id) end
  if cell == '' then
    redis.call('HDEL', K_CELL_OF, id)
  else
    redis.call('SADD', prefix .. 'cell:' .. cell, id)
    redis.call('HSET', K_CELL_OF, id, cell)
  end
end

for _, m in ipairs(c.merchants) do redis.call('HSET', K_MERCHANTS, m[1], m[2]) end
for _, r in ipairs(c.couriers) do
  local id = r[1]
  redis.call('HSET', K_COURIERS, id, r[5])
  if r[3] == 1 then redis.call('SADD', K_ON_SHIFT, id) else redis.call('SREM', K_ON_SHIFT, id) end
  local pos = redis.call('HGET', K_POSITIONS, id)
  if pos and cjson.decode(pos)[1] <= r[4] then redis.call('HDEL', K_POSITIONS, id) end
end
for i, r in ipairs(c.orders) do
  local id, status, mid = r[1], r[3], r[4]
  local old = old_orders[i]
  if old then redis.call('ZREM', prefix .. 'status:' .. old.status, id) end
  local n = redis.call('INCR', K_ORDINAL)
  redis.call('ZADD', prefix .. 'status:' .. status, n, id)
  if not old then redis.call('ZADD', prefix .. 'merchant_orders:' .. mid, n, id) end
  redis.call('HSET', K_ORDERS, id, r[5])
end
for _, r in ipairs(c.cells) do
  local id, cell = r[1], r[2]
  if cell ~= '' then
    -- a ping newer than the record written with this cell: the ping's cell stands
    local pos = redis.call('HGET', K_POSITIONS, id)
    if pos then cell = cjson.decode(pos)[2] end
  end
  move(id, cell)
end
for _, r in ipairs(c.routes) do
  if r[2] == '' then redis.call('HDEL', K_ROUTES, r[1]) else redis.call('HSET', K_ROUTES, r[1], r[2]) end
end
local first = 0
for i, e in ipairs(c.events) do
  local seq = redis.call('INCR', K_SEQ)
  if i == 1 then first = seq end
  redis.call('XADD', K_EVENTS, seq .. '-0', 'e', e)
end
return {'ok', first}
"""

_SET_POSITION = """
if redis.call('HEXISTS', KEYS[1], ARGV[2]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local old = redis.call('HGET', KEYS[3], ARGV[2])
-- a courier taken out of the index (off shift) stays out
if old and old ~= ARGV[4] then
  redis.call('SREM', ARGV[1] .. 'cell:' .. old, ARGV[2])
  redis.call('SADD', ARGV[1] .. 'cell:' .. ARGV[4], ARGV[2])
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[4])
end
return 1
"""

# KEYS: couriers, positions, then the sets whose union names the couriers (or none: ids in ARGV)
_COURIERS = """
local ids = ARGV
if #KEYS > 2 then ids = redis.call('SUNION', unpack(KEYS, 3)) end
local recs, poss = {}, {}
for i = 1, #ids, {chunk} do
  local last = math.min(i + {chunk} - 1, #ids)
  local r = redis.call('HMGET', KEYS[1], unpack(ids, i, last))
  local p = redis.call('HMGET', KEYS[2], unpack(ids, i, last))
  for j = 1, #r do recs[#recs + 1] = r[j]; poss[#poss + 1] = p[j] end
end
return {ids, recs, poss}
""".replace("{chunk}", str(_CHUNK))

# KEYS: an index zset, the records hash
_INDEXED = """
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for i = 1, #ids, {chunk} do
  local r = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + {chunk} - 1, #ids)))
  for j = 1, #r do out[#out + 1] = r[j] end
end
return out
""".replace("{chunk}", str(_CHUNK))


class _Scripts:
    """The scripts, registered once per client (EVALSHA; reloaded by redis-py after a restart)."""

    def __init__(self, client: Client) -> None:
        self.apply = client.register_script(_APPLY)
        self.set_position = client.register_script(_SET_POSITION)
        self.couriers = client.register_script(_COURIERS)
        self.indexed = client.register_script(_INDEXED)


class RedisStore:
    """The :class:`~dispatch.store.Store` of one city in Redis, shared by any number of processes.

    ``client`` is a URL (``redis://127.0.0.1:6379/0``) or a client made with
    ``decode_responses=True`` (see :func:`connect`). A store made by :meth:`fenced` refuses
    its writes with :class:`~dispatch.errors.LeaseLost` once ``token`` is no longer the
    city's lease: that is the store a dispatcher ticks through.
    """

    def __init__(self, client: Client | str, city: str = "default", *, timeout_s: float = 2.0) -> None:
        self.prefix = city_prefix(city)
        if isinstance(client, str):
            client = connect(client, timeout_s=timeout_s)
        if not client.get_encoder().decode_responses:
            raise ValueError("RedisStore needs a client made with decode_responses=True (see connect())")
        self.client = client
        self.city = city
        self.fence: int | None = None
        self._scripts = _Scripts(client)
        # Records are immutable and a stored JSON string names exactly one record, so decoded
        # couriers are kept by (record, ping): a candidate search decodes only what changed.
        self._decoded: dict[tuple[str, str | None], Courier] = {}
        self._decoded_orders: dict[str, Order] = {}
        k = self.key
        self._apply_keys = [
            k("merchants"),
            k("couriers"),
            k("orders"),
            k("routes"),
            k("positions"),
            k("cell_of"),
            k("on_shift"),
            k("seq"),
            k("events"),
            k("ordinal"),
            k("lease"),
        ]

    def key(self, name: str) -> str:
        """The full name of one of this city's keys."""
        return self.prefix + name

    def fenced(self, token: int) -> RedisStore:
        """The same store, whose writes apply only while ``token`` holds the city's lease."""
        view = _view(self)
        view.fence = token
        return view

    @contextlib.contextmanager
    def fencing(self, token: int) -> Iterator[None]:
        """Fence this store's writes with ``token`` within this context only.

        Code run in the context (and threads started from it by ``asyncio.to_thread``, which
        copies the context) is fenced; concurrent calls in other contexts, such as API requests
        next to a tick, are not.
        """
        reset = _FENCE.set((self.prefix, token))
        try:
            yield
        finally:
            _FENCE.reset(reset)

    def _fence(self) -> int | None:
        if self.fence is not None:
            return self.fence
        context = _FENCE.get()
        return context[1] if context is not None and context[0] == self.prefix else None

    # -- reads ------------------------------------------------------------------------------

    @redis_errors_as_unavailable
    def get_merchant(self, merchant_id: str) -> Merchant | None:
        raw = self.client.hget(self.key("merchants"), merchant_id)
        return None if raw is None else decode_merchant(raw)

    @redis_errors_as_unavailable
    def get_courier(self, courier_id: str) -> Courier | None:
        found = self._couriers([], [courier_id])
        return found[0] if found else None

    @redis_errors_as_unavailable
    def get_order(self, order_id: str) -> Order | None:
        raw = self.client.hget(self.key("orders"), order_id)
        return None if raw is None else decode_order(raw)

    @redis_errors_as_unavailable
    def get_route(self, courier_id: str) -> Route | None:
        raw = self.client.hget(self.key("routes"), courier_id)
        return None if raw is None else decode_route(raw)

    @redis_errors_as_unavailable
    def merchants(self) -> list[Merchant]:
        return [decode_merchant(raw) for raw in self.client.hvals(self.key("merchants"))]

    @redis_errors_as_unavailable
    def couriers_on_shift(self) -> list[Courier]:
        return self._couriers([self.key("on_shift")], [])

    @redis_errors_as_unavailable
    def orders_with_status(self, status: OrderStatus) -> list[Order]:
        return self._indexed(self.key(f"status:{OrderStatus(status).value}"))

    @redis_errors_as_unavailable
    def orders_of_merchant(self, merchant_id: str) -> list[Order]:
        return self._indexed(self.key(f"merchant_orders:{merchant_id}"))

    @redis_errors_as_unavailable
    def routes(self, courier_ids: Sequence[str]) -> dict[str, Route]:
        ids = list(courier_ids)
        found: dict[str, Route] = {}
        for i in range(0, len(ids), _CHUNK * 4):
            chunk = ids[i : i + _CHUNK * 4]
            for cid, raw in zip(chunk, self.client.hmget(self.key("routes"), chunk), strict=True):
                if raw is not None:
                    found[cid] = decode_route(raw)
        return found

    @redis_errors_as_unavailable
    def couriers_in_cells(self, cells: Iterable[str]) -> list[Courier]:
        keys = [self.key(f"cell:{cell}") for cell in dict.fromkeys(cells)]
        return self._couriers(keys, []) if keys else []

    @redis_errors_as_unavailable
    def events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        if limit is not None and limit <= 0:
            return []
        start = f"{max(after_seq, 0) + 1}-0"
        entries = cast(
            list[tuple[str, dict[str, str]]], self.client.xrange(self.key("events"), start, count=limit)
        )
        return [self._event(entry_id, fields) for entry_id, fields in entries]

    @redis_errors_as_unavailable
    def events_back(self, before_seq: int | None = None, limit: int = 1000) -> list[Event]:
        """The log backwards from the newest event (or from ``before_seq``, exclusive)."""
        if limit <= 0 or (before_seq is not None and before_seq <= 1):
            return []
        top = "+" if before_seq is None else f"{before_seq - 1}-0"
        entries = cast(
            list[tuple[str, dict[str, str]]],
            self.client.xrevrange(self.key("events"), top, "-", count=limit),
        )
        return [self._event(entry_id, fields) for entry_id, fields in entries]

    def _event(self, entry_id: str, fields: dict[str, str]) -> Event:
        seq = int(entry_id.split("-", 1)[0])
        d = json.loads(fields["e"])
        return Event(f"{self.city}-{seq}", seq, d["at"], d["kind"], d["o"], d["c"], d["m"], d["d"])

    @redis_errors_as_unavailable
    def last_seq(self) -> int:
        """The seq of the last event (the number of events): one read, not the log."""
        return int(self.client.get(self.key("seq")) or 0)

    def _couriers(self, set_keys: list[str], ids: list[str]) -> list[Courier]:
        keys = [self.key("couriers"), self.key("positions"), *set_keys]
        found_ids, records, positions = self._scripts.couriers(keys=keys, args=ids)
        cache = self._decoded
        if len(cache) > _DECODED_MAX:
            cache.clear()
        couriers = []
        for _, raw, pos in sorted(zip(found_ids, records, positions, strict=True)):
            if raw is None:
                continue
            courier = cache.get((raw, pos))
            if courier is None:
                courier = cache[(raw, pos)] = decode_courier(raw, pos)
            couriers.append(courier)
        return couriers

    def _indexed(self, index_key: str) -> list[Order]:
        raws = self._scripts.indexed(keys=[index_key, self.key("orders")])
        # Like couriers, a stored JSON string names exactly one (immutable) order: the open
        # orders read again by every quote and tick are decoded once.
        if len(self._decoded_orders) > _DECODED_ORDERS_MAX:
            self._decoded_orders.clear()
        out = []
        for raw in raws:
            if raw is None:
                continue
            key = str(raw)
            order = self._decoded_orders.get(key)
            if order is None:
                order = self._decoded_orders[key] = decode_order(raw)
            out.append(order)
        return out

    @redis_errors_as_unavailable
    def learned(self, keys: Sequence[str]) -> dict[str, str]:
        """What the engine has learned under ``keys`` (those it has), as stored (JSON)."""
        if not keys:
            return {}
        raws = self.client.hmget(self.key("learned"), list(keys))
        return {k: str(raw) for k, raw in zip(keys, raws, strict=True) if raw is not None}

    # -- writes -----------------------------------------------------------------------------

    @redis_errors_as_unavailable
    def set_learned(self, values: dict[str, str]) -> None:
        """Keep learned estimates (last write wins, like positions: no version, no event)."""
        if values:
            self.client.hset(self.key("learned"), mapping=dict(values))  # type: ignore[arg-type]

    @redis_errors_as_unavailable
    def set_position(self, courier_id: str, location: Location, cell: str, seen_at: int) -> None:
        self._scripts.set_position(
            keys=[self.key("couriers"), self.key("positions"), self.key("cell_of")],
            args=[self.prefix, courier_id, encode_position(location, cell, seen_at), cell],
        )

    @redis_errors_as_unavailable
    def apply(self, change: Change) -> list[Event]:
        check_plan_owners(change)
        fence = self._fence()
        payload = {
            "fence": -1 if fence is None else fence,
            "new_merchants": sorted(change.new_merchant_ids),
            "merchants": [[m.id, encode_merchant(m)] for m in change.merchants],
            "couriers": [
                [c.id, c.version, int(c.status is not CourierStatus.OFF_SHIFT), c.seen_at, encode_courier(c)]
                for c in change.couriers
            ],
            "orders": [
                [o.id, o.version, o.status.value, o.merchant_id, encode_order(o)] for o in change.orders
            ],
            "cells": [[cid, cell or ""] for cid, cell in change.courier_cells.items()],
            "routes": [[cid, "" if r is None else encode_route(r)] for cid, r in change.routes.items()],
            "events": [
                dumps(
                    {"at": e.at, "kind": e.kind, "o": e.order_id, "c": e.courier_id, "m": e.merchant_id}
                    | {"d": e.data}
                )
                for e in change.events
            ],
        }
        reply = self._scripts.apply(keys=self._apply_keys, args=[self.prefix, dumps(payload)])
        outcome = reply[0]
        if outcome == "ok":
            first = int(reply[1])
            return [new.numbered(self.city, first + i) for i, new in enumerate(change.events)]
        if outcome == "lease":
            holder = reply[1] or "nobody (it expired)"
            raise LeaseLost(
                f"this dispatcher's lease (token {fence}) of city {self.city!r} is gone; "
                f"it is held by {holder}: the decision is dropped",
                token=fence,
            )
        if outcome == "dup-merchant":
            raise DuplicateId(f"merchant {reply[1]!r} already exists", id=reply[1])
        if outcome == "twice":
            raise version_error(reply[1], reply[2], None, 0, twice=True)
        if outcome == "version":
            stored = int(reply[3])
            raise version_error(reply[1], reply[2], None if stored < 0 else stored, int(reply[4]))
        raise RuntimeError(f"unexpected reply from the apply script: {reply!r}")


#: decoded open orders kept (by their stored JSON) before the memo starts again
_DECODED_ORDERS_MAX = 50_000


def _view(store: RedisStore) -> RedisStore:
    """A shallow copy sharing the client and scripts (for :meth:`RedisStore.fenced`)."""
    view = object.__new__(RedisStore)
    view.__dict__.update(store.__dict__)
    return view
