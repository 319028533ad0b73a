"""One bad record never stops a city's dispatch: it is found, left out of the tick, and named.

A tick decides for every courier and order at once, so one record that breaks the policy (a
value outside its physical range written before the ranges existed, or a case no test foresaw)
would fail every tick until it is gone. Here:

* :func:`screen` checks each courier and order against the ranges of :mod:`dispatch.ranges`
  and the records it refers to, before the policy sees them;
* :func:`decide` asks the policy, and when it fails, finds the couriers and then the orders
  that make it fail on their own by bisection (at most ``MAX_PROBES`` extra decisions), and
  decides again without them. A failure it cannot pin on single records is the tick's own,
  and is raised.

Every record left out is a :class:`Skipped`; the tick writes a ``tick.record_skipped`` event
for each and logs it with its id, once while it stays left out for the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

from dispatch import ranges
from dispatch.config import DispatchConfig
from dispatch.errors import DispatchError
from dispatch.geo import TravelModel
from dispatch.matching import Decision, DispatchPolicy, Snapshot
from dispatch.models import Courier, Merchant, Order

__all__ = ["MAX_PROBES", "Skipped", "courier_problem", "decide", "screen"]

#: Extra policy decisions a failed tick may spend to find the records that make it fail.
MAX_PROBES = 64

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Skipped:
    """A record left out of one tick: ``kind`` is ``courier`` or ``order``."""

    kind: str
    id: str
    reason: str


def courier_problem(courier: Courier) -> str | None:
    """Why a stored courier record cannot be dispatched (a value outside its range), or ``None``."""
    for r, value, name in (
        (ranges.SPEED_MPS, courier.speed_mps, "speed_mps"),
        (ranges.CAPACITY, courier.capacity, "capacity"),
        (ranges.TIMESTAMP, courier.shift_end, "shift_end"),
        (ranges.TIMESTAMP, courier.available_at, "available_at"),
    ):
        if not r.contains(value):
            return f"{name} {value!r} is outside {r.describe()}"
    return None


def _order_problem(order: Order, merchants: Mapping[str, Merchant]) -> str | None:
    if order.merchant_id not in merchants:
        return f"its merchant {order.merchant_id!r} does not exist"
    for value, name in ((order.ready_at, "ready_at"), (order.window.end, "deadline")):
        if not ranges.TIMESTAMP.contains(value):
            return f"{name} {value!r} is outside {ranges.TIMESTAMP.describe()}"
    return None


def screen(
    couriers: Sequence[Courier], orders: Sequence[Order], merchants: Mapping[str, Merchant]
) -> tuple[list[Courier], list[Order], list[Skipped]]:
    """The couriers and orders whose values are in range, and the ones left out (and why)."""
    skipped: list[Skipped] = []
    kept_couriers = []
    for courier in couriers:
        problem = courier_problem(courier)
        if problem is None:
            kept_couriers.append(courier)
        else:
            skipped.append(Skipped("courier", courier.id, problem))
    kept_orders = []
    for order in orders:
        problem = _order_problem(order, merchants)
        if problem is None:
            kept_orders.append(order)
        else:
            skipped.append(Skipped("order", order.id, problem))
    return kept_couriers, kept_orders, skipped


def decide(
    policy: DispatchPolicy, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig
) -> tuple[list[Decision], list[Skipped], Snapshot]:
    """The policy's decisions, the records left out to get them, and the snapshot decided on.

    A :class:`DispatchError` (the store out of reach, a lost lease) is never a record's fault:
    it is raised at once.
    """
    if not snapshot.supply:
        return [], [], snapshot
    try:
        return list(policy.decide(snapshot, travel, config)), [], snapshot
    except DispatchError:
        raise
    except Exception as exc:
        failure = exc
    probes = [MAX_PROBES]

    def fails(candidate: Snapshot) -> bool:
        if probes[0] <= 0:
            raise failure
        probes[0] -= 1
        try:
            policy.decide(candidate, travel, config)
        except DispatchError:
            raise
        except Exception:
            return True
        return False

    supply = snapshot.supply
    bad_supply = _bisect(list(supply), lambda part: fails(replace(snapshot, supply=tuple(part))))
    kept_supply = tuple(s for s in supply if s not in bad_supply)
    current = replace(snapshot, supply=kept_supply)
    bad_orders: list[Order] = []
    if kept_supply and fails(current):
        orders = list(snapshot.orders)
        bad_orders = _bisect(orders, lambda part: fails(replace(current, orders=tuple(part))))
        current = replace(current, orders=tuple(o for o in orders if o not in bad_orders))
    if not current.supply or not (bad_supply or bad_orders) or (bad_orders and not current.orders):
        # nothing pinned on single records, or every one of them fails: the tick's own failure
        raise failure
    reason = f"the policy fails with it: {type(failure).__name__}: {failure}"[:300]
    skipped = [Skipped("courier", s.courier.id, reason) for s in bad_supply]
    skipped += [Skipped("order", o.id, reason) for o in bad_orders]
    try:
        return list(policy.decide(current, travel, config)), skipped, current
    except DispatchError:
        raise
    except Exception:
        raise failure from None


def _bisect(items: list[T], fails: Callable[[list[T]], bool]) -> list[T]:
    """The items that make ``fails`` true on their own, found by halving (none if only together)."""
    if not items or not fails(items):
        return []
    if len(items) == 1:
        return items
    middle = len(items) // 2
    return _bisect(items[:middle], fails) + _bisect(items[middle:], fails)
