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
    """Records in a dict, oldest first, dropped ``ttl_s`` after they were made."""

    def __init__(self, ttl_s: int) -> None:
        self.ttl_s = ttl_s
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()

    def __len__(self) -> int:
        return len(self._records)

    async def begin(self, scope: str, key: str, request_fingerprint: str, now: int) -> Begin:
        self._expire(now)
        record = self._records.get((scope, key))
        if record is None:
            self._records[(scope, key)] = _Record(request_fingerprint, now)
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
        self._records.pop((scope, key), None)

    def _expire(self, now: int) -> None:
        while self._records:
            first = next(iter(self._records.values()))
            if first.created_at + self.ttl_s > now:
                break
            self._records.popitem(last=False)


class RedisIdempotencyStore:
    """Records shared by every worker of a city: ``SET NX PX`` claims a key for exactly one request.

    A claim in flight lasts ``in_flight_ttl_s``: if the worker holding it dies, the key is free
    again after that long, and a retry runs the request. Running it twice cannot place two
    orders (the order id is the merchant's external id, created at most once): a retry after a
    worker died having placed the order meets it as ``duplicate-id``. A completed record lasts
    ``ttl_s`` from completion.
    """

    def __init__(self, client: Client, city: str, ttl_s: int, *, in_flight_ttl_s: int = 10) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.in_flight_ttl_s = in_flight_ttl_s
        self._prefix = city_prefix(city) + "idem:"

    def _key(self, scope: str, key: str) -> str:
        # the key is client-chosen: hashed, it cannot collide with the scope separator or run long
        return self._prefix + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()

    # Each call runs in a worker thread: with appendfsync always a write waits for the disk,
    # and the event loop should not.
    async def begin(self, scope: str, key: str, request_fingerprint: str, now: int) -> Begin:
        return await asyncio.to_thread(self._begin, self._key(scope, key), request_fingerprint, now)

    @redis_errors_as_unavailable
    def _begin(self, name: str, request_fingerprint: str, now: int) -> Begin:
        claim = json.dumps({"fp": request_fingerprint, "at": now})
        for _ in range(3):  # a record that expires between SET NX and GET is claimed on the next try
            if self.client.set(name, claim, nx=True, px=self.in_flight_ttl_s * 1000):
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
        await asyncio.to_thread(redis_errors_as_unavailable(self.client.delete), self._key(scope, key))
