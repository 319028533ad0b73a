"""``Idempotency-Key`` records: a retry gets the first response back, whatever happened meanwhile.

A record is scoped to the API key that made it (two clients may pick the same key) and holds a
fingerprint of the request, so the same key with another body is refused instead of replayed.
The store is a protocol of async calls so that a Redis implementation (``SET NX PX`` for
:meth:`begin`, a plain ``SET`` for :meth:`complete`) can replace the in-memory one unchanged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol

from dispatch.redis_store import city_prefix, redis_errors_as_unavailable

if TYPE_CHECKING:
    from dispatch.redis_store import Client

__all__ = [
    "Begin",
    "IdempotencyStore",
    "MemoryIdempotencyStore",
    "RecordsExhausted",
    "RedisIdempotencyStore",
    "StoredResponse",
    "fingerprint",
]


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class Outcome(Enum):
    STARTED = "started"  # the caller owns the key now: do the work, then complete() or abandon()
    REPLAY = "replay"  # done before with the same request: send ``response`` again
    IN_FLIGHT = "in-flight"  # another request with this key is being processed
    MISMATCH = "mismatch"  # the key was used with another request


@dataclass(frozen=True, slots=True)
class Begin:
    outcome: Outcome
    response: StoredResponse | None = None


class RecordsExhausted(Exception):
    """The API key holds as many idempotency records as it may (``max_records``) within the TTL."""

    def __init__(self, max_records: int, retry_after_s: int) -> None:
        super().__init__(f"this API key holds {max_records} idempotency records, the most it may keep")
        self.max_records = max_records
        self.retry_after_s = retry_after_s


def fingerprint(method: str, path: str, body: Any) -> str:
    """A digest of what makes two requests "the same": method, path and the parsed body.

    >>> a = fingerprint("POST", "/v1/orders", {"b": 1, "a": 2})
    >>> a == fingerprint("POST", "/v1/orders", {"a": 2, "b": 1})
    True
    >>> a == fingerprint("POST", "/v1/orders", {"a": 3})
    False
    """
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


class IdempotencyStore(Protocol):
    async def begin(self, scope: str, key: str, request_fingerprint: str, now: int) -> Begin: ...
    async def complete(self, scope: str, key: str, response: StoredResponse) -> None: ...
    async def abandon(self, scope: str, key: str) -> None: ...


@dataclass(slots=True)
class _Record:
    fingerprint: str
    created_at: int
    response: StoredResponse | None = None


class MemoryIdempotencyStore:
    """Records in a dict, oldest first, dropped ``ttl_s`` after they were made; at most
    ``max_records`` per scope (API key) at once."""

    def __init__(self, ttl_s: int, *, max_records: int = 100_000) -> None:
        self.ttl_s = ttl_s
        self.max_records = max_records
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()
        self._per_scope: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._records)

    async def begin(self, scope: str, key: str, request_fingerprint: str, now: int) -> Begin:
        self._expire(now)
        record = self._records.get((scope, key))
        if record is None:
            if self._per_scope.get(scope, 0) >= self.max_records:
                oldest = next(r for (s, _), r in self._records.items() if s == scope)
                raise RecordsExhausted(self.max_records, max(1, oldest.created_at + self.ttl_s - now))
            self._records[(scope, key)] = _Record(request_fingerprint, now)
            self._per_scope[scope] = self._per_scope.get(scope, 0) + 1
            return Begin(Outcome.STARTED)
        if record.fingerprint != request_fingerprint:
            return Begin(Outcome.MISMATCH)
        if record.response is None:
            return Begin(Outcome.IN_FLIGHT)
        return Begin(Outcome.REPLAY, record.response)

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        record = self._records.get((scope, key))
        if record is not None:
            record.response = response

    async def abandon(self, scope: str, key: str) -> None:
        if self._records.pop((scope, key), None) is not None:
            self._forget(scope)

    def _forget(self, scope: str) -> None:
        left = self._per_scope[scope] - 1
        if left:
            self._per_scope[scope] = left
        else:
            del self._per_scope[scope]

    def _expire(self, now: int) -> None:
        while self._records:
            first = next(iter(self._records.values()))
            if first.created_at + self.ttl_s > now:
                break
            (scope, _), _ = self._records.popitem(last=False)
            self._forget(scope)


class RedisIdempotencyStore:
    """Records shared by every worker of a city: ``SET NX PX`` claims a key for exactly one request.

    A claim in flight lasts ``in_flight_ttl_s``: if the worker holding it dies, the key is free
    again after that long, and a retry runs the request. Running it twice cannot place two
    orders (the order id is the merchant's external id, created at most once): a retry after a
    worker died having placed the order meets it as ``duplicate-id``. A completed record lasts
    ``ttl_s`` from completion.

    Each scope (API key) holds at most ``max_records`` records at once: a sorted set per scope
    scores each record's name by when it expires, and a new key past the cap is refused with
    :class:`RecordsExhausted`. A claim given back with :meth:`abandon` is deleted only while it is
    still this request's claim (a Lua compare-and-delete), so a late release never frees another
    request's claim.
    """

    def __init__(
        self,
        client: Client,
        city: str,
        ttl_s: int,
        *,
        in_flight_ttl_s: int = 10,
        max_records: int = 100_000,
    ) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.in_flight_ttl_s = in_flight_ttl_s
        self.max_records = max_records
        self._prefix = city_prefix(city) + "idem:"
        self._claims: dict[str, str] = {}  # this process's claims in flight, by record name

    def _key(self, scope: str, key: str) -> str:
        # the key is client-chosen: hashed, it cannot collide with the scope separator or run long
        return self._prefix + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()

    def _scope_key(self, scope: str) -> str:
        return self._prefix + "n:" + hashlib.sha256(scope.encode()).hexdigest()

    # Each call runs in a worker thread: with appendfsync always a write waits for the disk,
    # and the event loop should not.
    async def begin(self, scope: str, key: str, request_fingerprint: str, now: int) -> Begin:
        name = self._key(scope, key)
        return await asyncio.to_thread(self._begin, self._scope_key(scope), name, request_fingerprint, now)

    @redis_errors_as_unavailable
    def _begin(self, counter: str, name: str, request_fingerprint: str, now: int) -> Begin:
        claim = json.dumps({"fp": request_fingerprint, "at": now, "claim": secrets.token_hex(8)})
        for _ in range(3):  # a record that expires between SET NX and GET is claimed on the next try
            if self.client.exists(name) == 0:
                self.client.zremrangebyscore(counter, "-inf", now)
                if self.client.zcard(counter) >= self.max_records:
                    oldest = self.client.zrange(counter, 0, 0, withscores=True)
                    retry_after = int(oldest[0][1]) - now if oldest else 1
                    raise RecordsExhausted(self.max_records, max(1, retry_after))
            if self.client.set(name, claim, nx=True, px=self.in_flight_ttl_s * 1000):
                self._claims[name] = claim
                self.client.zadd(counter, {name: now + self.ttl_s})
                self.client.expire(counter, self.ttl_s)
                return Begin(Outcome.STARTED)
            raw = self.client.get(name)
            if raw is None:
                continue
            record = json.loads(raw)
            if record["fp"] != request_fingerprint:
                return Begin(Outcome.MISMATCH)
            response = record.get("response")
            if response is None:
                return Begin(Outcome.IN_FLIGHT)
            return Begin(
                Outcome.REPLAY,
                StoredResponse(response["status"], base64.b64decode(response["body"]), response["headers"]),
            )
        return Begin(Outcome.IN_FLIGHT)

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        await asyncio.to_thread(self._complete, self._key(scope, key), response)

    @redis_errors_as_unavailable
    def _complete(self, name: str, response: StoredResponse) -> None:
        self._claims.pop(name, None)
        raw = self.client.get(name)
        if raw is None:
            return
        record = json.loads(raw)
        record["response"] = {
            "status": response.status,
            "body": base64.b64encode(response.body).decode(),
            "headers": response.headers,
        }
        self.client.set(name, json.dumps(record), xx=True, px=self.ttl_s * 1000)

    async def abandon(self, scope: str, key: str) -> None:
        name = self._key(scope, key)
        claim = self._claims.get(name)
        if claim is not None:
            await asyncio.to_thread(self._abandon, name, claim, self._scope_key(scope))
            self._claims.pop(name, None)

    @redis_errors_as_unavailable
    def _abandon(self, name: str, claim: str, counter: str) -> None:
        if self.client.eval(_DELETE_IF_SAME, 1, name, claim):
            self.client.zrem(counter, name)


#: Deletes KEYS[1] only while it holds ARGV[1] (this request's claim).
_DELETE_IF_SAME = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
