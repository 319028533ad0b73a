"""Quotes handed out, kept until they expire, so that an order can be placed "from a quote"."""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass

from dispatch.engine import Quote

__all__ = ["IssuedQuote", "QuoteBook"]


@dataclass(frozen=True, slots=True)
class IssuedQuote:
    id: str
    owner: str  # the key id that asked for it: nobody else can order from it
    quote: Quote
    created_at: int
    requested_ready_at: int | None  # what the client asked for; None = the merchant's prep time


class QuoteBook:
    """In-memory quotes, oldest first; expired ones are dropped as new ones come in."""

    def __init__(self, max_quotes: int = 100_000) -> None:
        self.max_quotes = max_quotes
        self._quotes: OrderedDict[str, IssuedQuote] = OrderedDict()

    def issue(
        self, owner: str, quote: Quote, now: int, *, requested_ready_at: int | None = None
    ) -> IssuedQuote:
        while self._quotes:
            first = next(iter(self._quotes.values()))
            if first.quote.valid_until >= now and len(self._quotes) < self.max_quotes:
                break
            self._quotes.popitem(last=False)
        issued = IssuedQuote(f"q_{secrets.token_urlsafe(16)}", owner, quote, now, requested_ready_at)
        self._quotes[issued.id] = issued
        return issued

    def get(self, quote_id: str, owner: str) -> IssuedQuote | None:
        """The quote, if it exists and belongs to ``owner`` (another key's quote is not found)."""
        issued = self._quotes.get(quote_id)
        return issued if issued is not None and issued.owner == owner else None
