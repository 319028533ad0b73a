"""Quotes handed out, kept until they expire, so that an order can be placed "from a quote"."""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from dispatch.engine import Quote
from dispatch.models import Location, Window
from dispatch.redis_store import city_prefix, redis_errors_as_unavailable

if TYPE_CHECKING:
    from dispatch.redis_store import Client

__all__ = ["IssuedQuote", "QuoteBook", "QuoteStore", "RedisQuoteBook"]


@dataclass(frozen=True, slots=True)
class IssuedQuote:
    id: str
    owner: str  # the key id that asked for it: nobody else can order from it
    quote: Quote
    created_at: int
    requested_ready_at: int | None  # what the client asked for; None = the merchant's prep time


class QuoteStore(Protocol):
    def issue(
        self, owner: str, quote: Quote, now: int, *, requested_ready_at: int | None = None
    ) -> IssuedQuote: ...
    def get(self, quote_id: str, owner: str) -> IssuedQuote | None: ...
    def claim(self, issued: IssuedQuote, order_id: str, now: int) -> str | None:
        """Mark the quote used by ``order_id``; the order that used it already, or ``None``."""
        ...

    def unclaim(self, issued: IssuedQuote, order_id: str) -> None:
        """Give a claim back (the order it was for was refused, so nothing used the quote)."""
        ...


def _new_id() -> str:
    return f"q_{secrets.token_urlsafe(16)}"


class QuoteBook:
    """In-memory quotes, oldest first; expired ones are dropped as new ones come in."""

    def __init__(self, max_quotes: int = 100_000) -> None:
        self.max_quotes = max_quotes
        self._quotes: OrderedDict[str, IssuedQuote] = OrderedDict()
        self._used: dict[str, str] = {}  # quote id -> the order placed from it

    def issue(
        self, owner: str, quote: Quote, now: int, *, requested_ready_at: int | None = None
    ) -> IssuedQuote:
        while self._quotes:
            first = next(iter(self._quotes.values()))
            if first.quote.valid_until >= now and len(self._quotes) < self.max_quotes:
                break
            gone, _ = self._quotes.popitem(last=False)
            self._used.pop(gone, None)
        issued = IssuedQuote(_new_id(), owner, quote, now, requested_ready_at)
        self._quotes[issued.id] = issued
        return issued

    def get(self, quote_id: str, owner: str) -> IssuedQuote | None:
        """The quote, if it exists and belongs to ``owner`` (another key's quote is not found)."""
        issued = self._quotes.get(quote_id)
        return issued if issued is not None and issued.owner == owner else None

    def claim(self, issued: IssuedQuote, order_id: str, now: int) -> str | None:
        used = self._used.setdefault(issued.id, order_id)
        return None if used == order_id else used

    def unclaim(self, issued: IssuedQuote, order_id: str) -> None:
        if self._used.get(issued.id) == order_id:
            del self._used[issued.id]


class RedisQuoteBook:
    """Quotes shared by every worker of a city: one key each, gone ``keep_s`` after it expires.

    Kept a while past its expiry so that ordering from it says "expired", not "unknown".
    """

    def __init__(self, client: Client, city: str, *, keep_s: int = 600) -> None:
        self.client = client
        self.keep_s = keep_s
        self._prefix = city_prefix(city) + "quote:"

    @redis_errors_as_unavailable
    def issue(
        self, owner: str, quote: Quote, now: int, *, requested_ready_at: int | None = None
    ) -> IssuedQuote:
        issued = IssuedQuote(_new_id(), owner, quote, now, requested_ready_at)
        q = quote
        record = {
            "owner": owner,
            "at": now,
            "ready": requested_ready_at,
            "q": [
                q.merchant_id,
                [q.dropoff.lat, q.dropoff.lng],
                q.distance_m,
                q.ready_at,
                [q.window.start, q.window.end],
                q.scheduled,
                q.pickup_eta,
                q.dropoff_eta,
                q.valid_until,
            ],
            "offered": q.offered_instead,
        }
        ttl_s = max(1, q.valid_until - now) + self.keep_s
        self.client.set(self._prefix + issued.id, json.dumps(record), ex=ttl_s)
        return issued

    @redis_errors_as_unavailable
    def get(self, quote_id: str, owner: str) -> IssuedQuote | None:
        raw = self.client.get(self._prefix + quote_id)
        if raw is None:
            return None
        r = json.loads(raw)
        if r["owner"] != owner:
            return None
        mid, drop, distance, ready, window, scheduled, pickup, dropoff, valid = r["q"]
        quote = Quote(
            mid,
            Location(*drop),
            distance,
            ready,
            Window(*window),
            scheduled,
            pickup,
            dropoff,
            valid,
            offered_instead=bool(r.get("offered", False)),
        )
        return IssuedQuote(quote_id, owner, quote, r["at"], r["ready"])

    @redis_errors_as_unavailable
    def claim(self, issued: IssuedQuote, order_id: str, now: int) -> str | None:
        # SET NX: of two workers placing from one quote at once, one wins
        ttl_s = max(1, issued.quote.valid_until - now) + self.keep_s
        key = self._prefix + "used:" + issued.id
        if self.client.set(key, order_id, nx=True, ex=ttl_s):
            return None
        used = self.client.get(key)
        used_by = used.decode() if isinstance(used, bytes) else str(used)
        return None if used_by == order_id else used_by

    @redis_errors_as_unavailable
    def unclaim(self, issued: IssuedQuote, order_id: str) -> None:
        key = self._prefix + "used:" + issued.id
        used = self.client.get(key)
        if used is not None and (used.decode() if isinstance(used, bytes) else str(used)) == order_id:
            self.client.delete(key)
