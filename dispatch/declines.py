"""Couriers turning down assignments: the orders go back to waiting, and for a while the
courier who declined is not offered them again.

Who declined what, until when, lives on the order itself (``Order.declined_by``), so it is in
the Store: it works over Redis, from any worker, and survives a restart. :func:`guard` wraps
the policy so that no decision hands an order back to a courier who turned it down. With no
bar in force the policy runs untouched: the same decisions as without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.matching import Decision, DispatchPolicy, Snapshot
from dispatch.models import Order

__all__ = ["barred", "guard", "with_bar"]


def with_bar(order: Order, courier_id: str, until: int, now: int) -> tuple[tuple[str, int], ...]:
    """``order``'s bars with ``courier_id`` barred until ``until`` (bars over by ``now`` dropped)."""
    kept = tuple((cid, t) for cid, t in order.declined_by if t > now and cid != courier_id)
    return (*kept, (courier_id, until))


def barred(orders: Iterable[Order], now: int) -> dict[str, frozenset[str]]:
    """Order id -> the couriers not to be offered it at ``now``."""
    found: dict[str, frozenset[str]] = {}
    for order in orders:
        cids = frozenset(cid for cid, until in order.declined_by if until > now)
        if cids:
            found[order.id] = cids
    return found


def guard(policy: DispatchPolicy) -> DispatchPolicy:
    """``policy``, made to respect the bars of the orders it is given."""
    return _RespectingDeclines(policy)


class _RespectingDeclines:
    """Runs the policy; a decision that gives an order back to a courier who declined it is
    dropped, and its orders are decided once more among the couriers left over (minus those
    who declined any of them). What still finds nobody waits for the next tick."""

    def __init__(self, inner: DispatchPolicy) -> None:
        self.inner = inner
        self.name = inner.name

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]:
        bars = barred(snapshot.orders, snapshot.now)
        decisions = self.inner.decide(snapshot, travel, config)
        if not bars:
            return decisions

        def offends(decision: Decision) -> bool:
            return any(decision.courier_id in bars.get(oid, ()) for oid in decision.order_ids)

        kept = [d for d in decisions if not offends(d)]
        if len(kept) == len(decisions):
            return decisions
        redo = {oid for d in decisions if offends(d) for oid in d.order_ids}
        excluded = {d.courier_id for d in kept} | set(_couriers_of(bars, redo))
        again = Snapshot(
            now=snapshot.now,
            orders=tuple(o for o in snapshot.orders if o.id in redo),
            supply=tuple(s for s in snapshot.supply if s.courier.id not in excluded),
            merchants=snapshot.merchants,
        )
        second = [d for d in self.inner.decide(again, travel, config) if d.order_ids and not offends(d)]
        return sorted([*kept, *second], key=lambda d: d.courier_id)


def _couriers_of(barred: Mapping[str, frozenset[str]], order_ids: Iterable[str]) -> set[str]:
    return {cid for oid in order_ids for cid in barred.get(oid, ())}
