"""The policy protocol and the records it decides on: the snapshot a policy sees, and the
decisions it returns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.models import Courier, Location, Merchant, Order, Placement

__all__ = ["Bundle", "Collecting", "CourierSupply", "Decision", "DispatchPolicy", "Snapshot"]


@dataclass(frozen=True, slots=True)
class Collecting:
    """A courier at a merchant, waiting to collect ``orders``, with nothing else planned.

    More of the merchant's orders may still join that pickup (an assignment update).
    """

    merchant_id: str
    orders: tuple[Order, ...]
    #: planned hand-over of the food at the merchant
    pickup_at: int
    #: planned hand-over at each customer's door, in ``orders`` order
    dropoff_at: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class CourierSupply:
    """A courier as the matcher sees it: where and when it can start new work."""

    courier: Courier
    free_at: int
    free_location: Location
    load: int = 0  # orders in its current plan
    #: no plan at all: waiting where it is
    idle: bool = False
    #: at a merchant waiting for food, with only that pickup's drop-offs planned after it
    collecting: Collecting | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: int
    orders: tuple[Order, ...]
    supply: tuple[CourierSupply, ...]
    merchants: Mapping[str, Merchant]
    #: orders placed earlier that this process may not have seen open: given on its first
    #: tick, after a pause and when it takes the lease (see
    #: :meth:`dispatch.engine.Dispatcher.tick`), so a new leader knows the demand
    placements: tuple[Placement, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    """Orders for a courier; or, with no orders, a merchant to go and wait at.

    With ``join``, the orders are added to the pickup the courier is waiting for (its
    :class:`Collecting`), and its drop-offs are planned again; otherwise they come after
    its plan.
    """

    courier_id: str
    order_ids: tuple[str, ...]
    cost: int
    reposition_to: str | None = None
    join: bool = False


@dataclass(frozen=True, slots=True)
class Bundle:
    """Orders of one merchant to be carried together, drop-offs in ``order_ids`` order."""

    merchant_id: str
    orders: tuple[Order, ...]

    @property
    def ready_at(self) -> int:
        return max(o.ready_at for o in self.orders)

    @property
    def size(self) -> int:
        return len(self.orders)

    @property
    def key(self) -> tuple[str, ...]:
        """Its orders' ids, sorted: two bundles of the same orders have the same key."""
        return tuple(sorted(o.id for o in self.orders))


class DispatchPolicy(Protocol):
    """Decides, for one snapshot, which courier takes which orders (and may send an idle
    courier to wait at a merchant: a :class:`Decision` without orders, ``reposition_to`` set)."""

    name: str

    def decide(self, snapshot: Snapshot, travel: TravelModel, config: DispatchConfig) -> list[Decision]: ...
