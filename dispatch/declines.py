"""Couriers turning down assignments: the orders go back to waiting, and for a while the
courier who declined is not offered them again.

A :class:`Declines` belongs to one :class:`~dispatch.engine.Dispatcher` (one process): it
remembers who declined what until when, and wraps the policy on the ticks where a decline
is still fresh, so that no decision hands an order back to a courier who just turned it
down. With nothing declined the policy runs untouched: the same decisions as without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from dispatch.config import DispatchConfig
from dispatch.errors import IllegalTransition, InvalidInput
from dispatch.geo import TravelModel
from dispatch.matching import Decision, DispatchPolicy, Snapshot
from dispatch.models import Order, OrderStatus

if TYPE_CHECKING:
    from dispatch.engine import Dispatcher

__all__ = ["Declines"]


class Declines:
    """Who declined which order, and until when they are not offered it again."""

    def __init__(self) -> None:
        self._until: dict[tuple[str, str], int] = {}  # (order id, courier id) -> barred until

    def decline(
        self, dispatcher: Dispatcher, courier_id: str, order_ids: Sequence[str], now: int
    ) -> list[Order]:
        """Release ``order_ids`` from ``courier_id``'s plan (all of them or, on an error, none)
        and bar the courier from them for ``decline_cooloff_s``."""
        ids = list(dict.fromkeys(order_ids))
        if not ids:
            raise InvalidInput("a decline names at least one order", field="order_ids")
        dispatcher.courier(courier_id)  # an unknown courier is an error before anything else
        for oid in ids:
            order = dispatcher.order(oid)
            if order.courier_id != courier_id or order.status is not OrderStatus.ASSIGNED:
                raise IllegalTransition(
                    f"order {oid!r} is not waiting for pickup by courier {courier_id!r}: cannot decline it"
                )
        released = [dispatcher.release(courier_id, oid, now) for oid in ids]
        until = now + dispatcher.config.decline_cooloff_s
        for oid in ids:
            self._until[(oid, courier_id)] = until
        return released

    def barred(self, now: int) -> dict[str, frozenset[str]]:
        """Order id -> the couriers not to be offered it at ``now`` (expired declines are forgotten)."""
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]
        found: dict[str, set[str]] = {}
        for oid, cid in self._until:
            found.setdefault(oid, set()).add(cid)
        return {oid: frozenset(cids) for oid, cids in found.items()}

    def guard(self, policy: DispatchPolicy, now: int) -> DispatchPolicy:
        """``policy`` itself when no decline is fresh; otherwise one that respects them."""
        barred = self.barred(now)
        return _RespectingDeclines(policy, barred) if barred else policy


class _RespectingDeclines:
    """Runs the policy; a decision that gives an order back to a courier who declined it is
    dropped, and its orders are decided once more among the couriers left over (minus those
    who declined any of them). What still finds nobody waits for the next tick."""

    def __init__(self, inner: DispatchPolicy, barred: Mapping[str, frozenset[str]]) -> None:
        self.inner = inner
        self.name = inner.name
        self._barred = barred

    def _offends(self, decision: Decision) -> bool:
        return any(decision.courier_id in self._barred.get(oid, ()) for oid in decision.order_ids)

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]:
        decisions = self.inner.decide(snapshot, travel, config)
        kept = [d for d in decisions if not self._offends(d)]
        if len(kept) == len(decisions):
            return decisions
        redo = {oid for d in decisions if self._offends(d) for oid in d.order_ids}
        excluded = {d.courier_id for d in kept} | set(_couriers_of(self._barred, redo))
        again = Snapshot(
            now=snapshot.now,
            orders=tuple(o for o in snapshot.orders if o.id in redo),
            supply=tuple(s for s in snapshot.supply if s.courier.id not in excluded),
            merchants=snapshot.merchants,
        )
        second = [d for d in self.inner.decide(again, travel, config) if d.order_ids and not self._offends(d)]
        return sorted([*kept, *second], key=lambda d: d.courier_id)


def _couriers_of(barred: Mapping[str, frozenset[str]], order_ids: Iterable[str]) -> set[str]:
    return {cid for oid in order_ids for cid in barred.get(oid, ())}
