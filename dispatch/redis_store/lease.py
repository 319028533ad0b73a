"""The city's dispatcher lease, with a fencing token (see :meth:`RedisStore.fenced`)."""

from __future__ import annotations

import os
import socket
import time

from dispatch.redis_store.client import Client, city_prefix, redis_errors_as_unavailable

__all__ = ["Lease"]

_LEASE_ACQUIRE = """
local v = redis.call('GET', KEYS[1])
if v then
  if ARGV[3] ~= '' and string.match(v, '^(%d+):') == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    return tonumber(ARGV[3])
  end
  return 0
end
local t = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], t .. ':' .. ARGV[2], 'PX', ARGV[1])
return t
"""

_LEASE_RENEW = """
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(%d+):') == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return 1
end
return 0
"""

_LEASE_RELEASE = """
local v = redis.call('GET', KEYS[1])
if v and string.match(v, '^(%d+):') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class Lease:
    """The city's dispatcher lease: one holder at a time, with an expiry and a fencing token.

    :meth:`acquire` takes a free lease and gets a token larger than every earlier one;
    :meth:`renew` extends it only while this holder still has it. When a holder dies its lease
    expires after ``ttl_s`` and the next :meth:`acquire` elsewhere succeeds; a write made
    through ``store.fenced(old_token)`` after that is refused by the store.
    """

    def __init__(self, client: Client, city: str, *, ttl_s: float = 5.0, owner: str | None = None) -> None:
        if not ttl_s > 0:
            raise ValueError(f"a lease lasts a positive number of seconds, got {ttl_s!r}")
        prefix = city_prefix(city)
        self.city = city
        self.ttl_s = ttl_s
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}"
        self.token: int | None = None
        self._keys = [prefix + "lease", prefix + "lease_token"]
        self._valid_until = 0.0
        self._acquire = client.register_script(_LEASE_ACQUIRE)
        self._renew = client.register_script(_LEASE_RENEW)
        self._release = client.register_script(_LEASE_RELEASE)
        self._client = client

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.ttl_s * 1000))

    @property
    def held(self) -> bool:
        """Whether this process holds the lease, as far as it knows (it may have expired since)."""
        return self.token is not None and time.monotonic() < self._valid_until

    @redis_errors_as_unavailable
    def acquire(self) -> bool:
        """Take the lease if it is free (or extend it if this holder has it); whether it is held."""
        started = time.monotonic()
        mine = "" if self.token is None else str(self.token)
        token = int(self._acquire(keys=self._keys, args=[self.ttl_ms, self.owner, mine]))
        if token:
            self.token, self._valid_until = token, started + self.ttl_s
            return True
        self.token = None
        return False

    @redis_errors_as_unavailable
    def renew(self) -> bool:
        """Extend the lease; ``False`` (and no token any more) when another process has it now."""
        if self.token is None:
            return False
        started = time.monotonic()
        if int(self._renew(keys=self._keys, args=[self.ttl_ms, str(self.token)])):
            self._valid_until = started + self.ttl_s
            return True
        self.token = None
        return False

    @redis_errors_as_unavailable
    def release(self) -> None:
        """Give the lease up now (a clean shutdown), so another process takes over at once."""
        token, self.token = self.token, None
        if token is not None:
            self._release(keys=self._keys, args=[str(token)])

    @redis_errors_as_unavailable
    def holder(self) -> tuple[int, str] | None:
        """``(token, owner)`` of whoever holds the lease now, or ``None``."""
        value = self._client.get(self._keys[0])
        if value is None:
            return None
        token, _, owner = str(value).partition(":")
        return int(token), owner
