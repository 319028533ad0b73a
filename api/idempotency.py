"""``Idempotency-Key`` records: a retry gets the first response back, whatever happened meanwhile.

A record is scoped to the API key that made it (two clients may pick the same key) and holds a
fingerprint of the request, so the same key with another body is refused instead of replayed.
The store is a protocol of async calls so that a Redis implementation (``SET NX PX`` for
:meth:`begin`, a plain ``SET`` for :meth:`complete`) can replace the in-memory one unchanged.
"""

from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

__all__ = ["Begin", "IdempotencyStore", "MemoryIdempotencyStore", "StoredResponse", "fingerprint"]


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
