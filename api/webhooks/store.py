"""Webhook state: endpoints, the deliveries still to make, and each endpoint's log of attempts.

Two implementations of one protocol: :class:`MemoryWebhookStore` (one process, in-memory
dispatch state) and :class:`RedisWebhookStore` (many workers over the city's Redis; every key
under the city's hash tag, next to the dispatch state):

==============================  =======  ==================================================
key (after ``dispatch:{city}:``) type     holds
==============================  =======  ==================================================
``webhooks:endpoints``          hash     endpoint id -> record (JSON, with its secret)
``webhooks:due``                zset     ``<endpoint id>|<event seq>`` by when it is due
``webhooks:attempts``           hash     the same member -> attempts made so far
``webhooks:log:<endpoint id>``  list     the newest attempts first (JSON), at most 1,000
``events`` (consumer group      stream   the city's event log, read by the delivery loop
``webhooks``)                             through the consumer group ``webhooks``
==============================  =======  ==================================================

A delivery is *claimed* by moving its due time past the claim period; a worker that dies with
claimed deliveries leaves them to come due again then. An event read from the stream is
acknowledged only once its deliveries are scheduled; one a dead worker had read is taken over
with ``XAUTOCLAIM``. So every delivery is made at least once.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, cast

from dispatch.redis_store import city_prefix, redis_errors_as_unavailable

if TYPE_CHECKING:
    from dispatch.redis_store import Client

__all__ = [
    "LOG_MAX",
    "Attempt",
    "Endpoint",
    "Job",
    "MemoryWebhookStore",
    "RedisWebhookStore",
    "WebhookStore",
]

#: Attempts kept per endpoint; older ones are dropped.
LOG_MAX = 1000
GROUP = "webhooks"


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    #: the tenant: the role and merchant ids of the key that made it (empty for all merchants)
    role: str
    tenants: tuple[str, ...]
    url: str
    #: event kinds it receives; ``("*",)`` for all
    event_types: tuple[str, ...]
    secret: str
    description: str
    created_at: int
    #: only events after this seq go to it (the log's end when it was made)
    after_seq: int
    failing_since: int | None = None
    disabled_at: int | None = None
    disabled_reason: str | None = None

    def wants(self, kind: str) -> bool:
        return "*" in self.event_types or kind in self.event_types

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Endpoint:
        d = json.loads(raw)
        d["tenants"] = tuple(d["tenants"])
        d["event_types"] = tuple(d["event_types"])
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST of one event to one endpoint, and what came of it."""

    event_id: str
    event_kind: str
    attempt: int
    at: int
    outcome: str  # delivered | retrying | gave-up | dropped
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    next_attempt_at: int | None = None


@dataclass(frozen=True, slots=True)
class Job:
    endpoint_id: str
    seq: int
    #: attempts already made
    attempts: int

    @property
    def member(self) -> str:
        return f"{self.endpoint_id}|{self.seq}"


def _job(member: str, attempts: int) -> Job:
    endpoint_id, seq = member.rsplit("|", 1)
    return Job(endpoint_id, int(seq), attempts)


class WebhookStore(Protocol):
    """Blocking calls (a Redis one runs in a worker thread)."""

    def add_endpoint(self, endpoint: Endpoint) -> None: ...
    def put_endpoint(self, endpoint: Endpoint) -> None: ...
    def endpoint(self, endpoint_id: str) -> Endpoint | None: ...
    def endpoints(self) -> list[Endpoint]: ...
    def delete_endpoint(self, endpoint_id: str) -> bool: ...
    def log(self, endpoint_id: str, attempt: Attempt) -> None: ...
    def attempts(self, endpoint_id: str, limit: int) -> list[Attempt]: ...
    def schedule(self, jobs: list[Job], due_at: float) -> None: ...
    def claim(self, now: float, until: float, limit: int) -> list[Job]: ...
    def settle(
        self, done: list[Job], retries: list[tuple[Job, float]], logs: list[tuple[str, Attempt]]
    ) -> None:
        """Drop the ``done`` deliveries, re-schedule the ``retries``, and append ``logs`` at once."""


class MemoryWebhookStore:
    def __init__(self) -> None:
        self._endpoints: dict[str, Endpoint] = {}
        self._logs: dict[str, deque[Attempt]] = {}
        self._due: dict[str, float] = {}
        self._attempts: dict[str, int] = {}

    def add_endpoint(self, endpoint: Endpoint) -> None:
        self._endpoints[endpoint.id] = endpoint

    def put_endpoint(self, endpoint: Endpoint) -> None:
        if endpoint.id in self._endpoints:  # a delivery finishing after a delete does not bring it back
            self._endpoints[endpoint.id] = endpoint

    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        return self._endpoints.get(endpoint_id)

    def endpoints(self) -> list[Endpoint]:
        return sorted(self._endpoints.values(), key=lambda e: (e.created_at, e.id))

    def delete_endpoint(self, endpoint_id: str) -> bool:
        self._logs.pop(endpoint_id, None)
        return self._endpoints.pop(endpoint_id, None) is not None

    def log(self, endpoint_id: str, attempt: Attempt) -> None:
        if endpoint_id in self._endpoints:
            self._logs.setdefault(endpoint_id, deque(maxlen=LOG_MAX)).appendleft(attempt)

    def attempts(self, endpoint_id: str, limit: int) -> list[Attempt]:
        return list(self._logs.get(endpoint_id, ()))[:limit]

    def schedule(self, jobs: list[Job], due_at: float) -> None:
        for job in jobs:
            self._due.setdefault(job.member, due_at)

    def claim(self, now: float, until: float, limit: int) -> list[Job]:
        due = sorted((at, m) for m, at in self._due.items() if at <= now)[:limit]
        for _, member in due:
            self._due[member] = until
        return [_job(m, self._attempts.get(m, 0)) for _, m in due]

    def settle(
        self, done: list[Job], retries: list[tuple[Job, float]], logs: list[tuple[str, Attempt]]
    ) -> None:
        for job in done:
            self._due.pop(job.member, None)
            self._attempts.pop(job.member, None)
        for job, due_at in retries:
            self._due[job.member] = due_at
            self._attempts[job.member] = job.attempts + 1
        for endpoint_id, attempt in logs:
            self.log(endpoint_id, attempt)

    def __len__(self) -> int:
        """Deliveries pending (scheduled or claimed)."""
        return len(self._due)


_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], m)
  out[#out + 1] = m
  out[#out + 1] = redis.call('HGET', KEYS[2], m) or '0'
end
return out
"""


class RedisWebhookStore:
    """The webhook state of one city in Redis (see the module docstring for the keys)."""

    def __init__(self, client: Client, city: str) -> None:
        self.client = client
        self.prefix = city_prefix(city)
        self._claim = client.register_script(_CLAIM)

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    @redis_errors_as_unavailable
    def add_endpoint(self, endpoint: Endpoint) -> None:
        self.ensure_group()
        self.client.hset(self.key("webhooks:endpoints"), endpoint.id, endpoint.to_json())

    @redis_errors_as_unavailable
    def put_endpoint(self, endpoint: Endpoint) -> None:
        # only while it exists: a delivery finishing after a delete does not bring it back
        script = (
            "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then "
            "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end"
        )
        self.client.eval(script, 1, self.key("webhooks:endpoints"), endpoint.id, endpoint.to_json())

    @redis_errors_as_unavailable
    def endpoint(self, endpoint_id: str) -> Endpoint | None:
        raw = self.client.hget(self.key("webhooks:endpoints"), endpoint_id)
        return Endpoint.from_json(raw) if raw is not None else None

    @redis_errors_as_unavailable
    def endpoints(self) -> list[Endpoint]:
        raws = cast(dict[Any, Any], self.client.hgetall(self.key("webhooks:endpoints")))
        return sorted((Endpoint.from_json(r) for r in raws.values()), key=lambda e: (e.created_at, e.id))

    @redis_errors_as_unavailable
    def delete_endpoint(self, endpoint_id: str) -> bool:
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.key("webhooks:endpoints"), endpoint_id)
        pipe.delete(self.key(f"webhooks:log:{endpoint_id}"))
        deleted, _ = pipe.execute()
        return bool(deleted)

    @redis_errors_as_unavailable
    def log(self, endpoint_id: str, attempt: Attempt) -> None:
        key = self.key(f"webhooks:log:{endpoint_id}")
        pipe = self.client.pipeline(transaction=True)
        pipe.lpush(key, json.dumps(asdict(attempt)))
        pipe.ltrim(key, 0, LOG_MAX - 1)
        pipe.execute()

    @redis_errors_as_unavailable
    def attempts(self, endpoint_id: str, limit: int) -> list[Attempt]:
        raws = cast(list[str], self.client.lrange(self.key(f"webhooks:log:{endpoint_id}"), 0, limit - 1))
        return [Attempt(**json.loads(r)) for r in raws]

    @redis_errors_as_unavailable
    def schedule(self, jobs: list[Job], due_at: float) -> None:
        if jobs:
            self.client.zadd(self.key("webhooks:due"), {j.member: due_at for j in jobs}, nx=True)

    @redis_errors_as_unavailable
    def claim(self, now: float, until: float, limit: int) -> list[Job]:
        flat = self._claim(
            keys=[self.key("webhooks:due"), self.key("webhooks:attempts")], args=[now, until, limit]
        )
        return [_job(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    @redis_errors_as_unavailable
    def settle(
        self, done: list[Job], retries: list[tuple[Job, float]], logs: list[tuple[str, Attempt]]
    ) -> None:
        pipe = self.client.pipeline(transaction=True)
        if done:
            pipe.zrem(self.key("webhooks:due"), *(j.member for j in done))
            pipe.hdel(self.key("webhooks:attempts"), *(j.member for j in done))
        if retries:
            pipe.zadd(self.key("webhooks:due"), {j.member: due for j, due in retries})
            pipe.hset(self.key("webhooks:attempts"), mapping={j.member: j.attempts + 1 for j, _ in retries})
        trimmed = set()
        for endpoint_id, attempt in logs:
            key = self.key(f"webhooks:log:{endpoint_id}")
            pipe.lpush(key, json.dumps(asdict(attempt)))
            trimmed.add(key)
        for key in trimmed:
            pipe.ltrim(key, 0, LOG_MAX - 1)
        pipe.execute()

    # -- the city's event stream, through the consumer group ------------------------------------

    @redis_errors_as_unavailable
    def ensure_group(self) -> None:
        """The consumer group, made at the stream's end if missing (events before it go nowhere)."""
        try:
            self.client.xgroup_create(self.key("events"), GROUP, id="$", mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    @redis_errors_as_unavailable
    def read_events(self, consumer: str, count: int, *, idle_ms: int) -> list[int]:
        """Entries a dead consumer left unacknowledged for ``idle_ms`` (taken over), then new ones."""
        stream = self.key("events")
        claimed: list[Any] = self.client.xautoclaim(stream, GROUP, consumer, idle_ms, "0-0", count=count)
        # an entry trimmed from the stream comes back as None: nothing left to deliver
        entries = [e for e in claimed[1] if e is not None and e[1] is not None] if len(claimed) > 1 else []
        if len(entries) < count:
            fresh = cast(
                list[Any],
                self.client.xreadgroup(GROUP, consumer, {stream: ">"}, count=count - len(entries)),
            )
            for _, items in fresh or []:
                entries += items
        return sorted(int(str(i).split("-", 1)[0]) for i, _ in entries)

    @redis_errors_as_unavailable
    def ack(self, seqs: list[int]) -> None:
        if seqs:
            self.client.xack(self.key("events"), GROUP, *(f"{s}-0" for s in seqs))


def disabled(endpoint: Endpoint, now: int, reason: str) -> Endpoint:
    return replace(endpoint, disabled_at=now, disabled_reason=reason)
