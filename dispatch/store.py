"""State behind one protocol: the engine reads and writes only through :class:`Store`.

A write is a :class:`Change`, applied whole or not at all. Orders and couriers carry a
``version``; a change that writes version ``v`` of a record applies only if the stored one
is ``v - 1`` (or absent for ``v == 1``), so two deciders racing on the same record cannot
both win. A courier's plan (its route) is part of the courier: a change that writes a plan
writes the courier too, with its version bumped, so two deciders rewriting one plan cannot both
win either. Courier positions are telemetry: last write wins, no version, no event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

from dispatch.errors import DuplicateId, StaleWrite
from dispatch.models import (
    Courier,
    CourierStatus,
    Event,
    EventKind,
    Location,
    Merchant,
    Order,
    OrderStatus,
    Route,
)

__all__ = [
    "Change",
    "MemoryStore",
    "NewEvent",
    "Store",
    "check_plan_owners",
    "next_version",
    "version_error",
]

_Versioned = TypeVar("_Versioned", Order, Courier)


def next_version(record: _Versioned, **changes: Any) -> _Versioned:
    """The next version of a record, for a :class:`Change`."""
    return replace(record, version=record.version + 1, **changes)


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to append; the store gives it its sequence number and id."""

    kind: EventKind
    at: int
    order_id: str | None = None
    courier_id: str | None = None
    merchant_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def numbered(self, city: str, seq: int) -> Event:
        """This event as the ``seq``-th of ``city``'s log."""
        return Event(
            id=f"{city}-{seq}",
            seq=seq,
            at=self.at,
            kind=self.kind,
            order_id=self.order_id,
            courier_id=self.courier_id,
            merchant_id=self.merchant_id,
            data=dict(self.data),
        )


@dataclass(slots=True)
class Change:
    """Everything one engine call writes, applied atomically by :meth:`Store.apply`.

    ``routes`` maps a courier id to its new plan, or ``None`` to clear it.
    """

    merchants: list[Merchant] = field(default_factory=list)
    couriers: list[Courier] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    routes: dict[str, Route | None] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)
    #: H3 cell of each courier's position for the candidate index; ``None`` takes it out
    courier_cells: dict[str, str | None] = field(default_factory=dict)
    #: ids that must not exist yet (creation, not update)
    new_merchant_ids: set[str] = field(default_factory=set)


class Store(Protocol):
    """What the engine needs of state. Both stores pass ``tests/dispatch/test_store.py``."""

    def get_merchant(self, merchant_id: str) -> Merchant | None: ...
    def get_courier(self, courier_id: str) -> Courier | None: ...
    def get_order(self, order_id: str) -> Order | None: ...
    def get_route(self, courier_id: str) -> Route | None: ...
    def merchants(self) -> list[Merchant]: ...
    def couriers_on_shift(self) -> list[Courier]: ...
    def orders_with_status(self, status: OrderStatus) -> list[Order]: ...
    def orders_of_merchant(self, merchant_id: str) -> list[Order]: ...
    def routes(self, courier_ids: Sequence[str]) -> dict[str, Route]: ...
    def couriers_in_cells(self, cells: Iterable[str]) -> list[Courier]: ...
    def set_position(self, courier_id: str, location: Location, cell: str, seen_at: int) -> None: ...
    def apply(self, change: Change) -> list[Event]: ...
    def learned(self, keys: Sequence[str]) -> dict[str, str]: ...
    def set_learned(self, values: dict[str, str]) -> None: ...
    def events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]: ...
    def events_back(self, before_seq: int | None = None, limit: int = 1000) -> list[Event]: ...
    def last_seq(self) -> int:
        """The seq of the last event (the number of events), without reading the log."""
        ...


class MemoryStore:
    """The embedded default: plain dictionaries in one process.

    ``cell_of`` maps a courier to the H3 cell of its last position; ``apply`` validates the
    whole change before touching anything.
    """

    def __init__(self, city: str = "default") -> None:
        self.city = city
        self._merchants: dict[str, Merchant] = {}
        self._couriers: dict[str, Courier] = {}
        self._orders: dict[str, Order] = {}
        self._routes: dict[str, Route] = {}
        self._by_status: dict[OrderStatus, dict[str, None]] = {s: {} for s in OrderStatus}
        self._by_merchant: dict[str, dict[str, None]] = {}
        self._cell_of: dict[str, str] = {}
        self._in_cell: dict[str, set[str]] = {}
        self._events: list[Event] = []
        self._learned: dict[str, str] = {}

    # -- reads ------------------------------------------------------------------------------

    def get_merchant(self, merchant_id: str) -> Merchant | None:
        return self._merchants.get(merchant_id)

    def get_courier(self, courier_id: str) -> Courier | None:
        return self._couriers.get(courier_id)

    def get_order(self, order_id: str) -> Order | None:
        return self._orders.get(order_id)

    def get_route(self, courier_id: str) -> Route | None:
        return self._routes.get(courier_id)

    def merchants(self) -> list[Merchant]:
        return list(self._merchants.values())

    def couriers_on_shift(self) -> list[Courier]:
        return [c for c in self._couriers.values() if c.status is not CourierStatus.OFF_SHIFT]

    def orders_with_status(self, status: OrderStatus) -> list[Order]:
        return [self._orders[oid] for oid in self._by_status[status]]

    def orders_of_merchant(self, merchant_id: str) -> list[Order]:
        return [self._orders[oid] for oid in self._by_merchant.get(merchant_id, {})]

    def routes(self, courier_ids: Sequence[str]) -> dict[str, Route]:
        return {cid: self._routes[cid] for cid in courier_ids if cid in self._routes}

    def couriers_in_cells(self, cells: Iterable[str]) -> list[Courier]:
        in_cell, couriers = self._in_cell, self._couriers
        return [couriers[cid] for cell in cells if (ids := in_cell.get(cell)) for cid in ids]

    def events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        selected = self._events[after_seq:]  # seq n lives at index n - 1
        return selected if limit is None else selected[:limit]

    def last_seq(self) -> int:
        return len(self._events)  # seq n lives at index n - 1

    def events_back(self, before_seq: int | None = None, limit: int = 1000) -> list[Event]:
        end = len(self._events) if before_seq is None else min(max(before_seq - 1, 0), len(self._events))
        return self._events[max(0, end - limit) : end][::-1] if limit > 0 else []

    def learned(self, keys: Sequence[str]) -> dict[str, str]:
        """What the engine has learned under ``keys`` (those it has), as stored (JSON)."""
        return {k: self._learned[k] for k in keys if k in self._learned}

    # -- writes -----------------------------------------------------------------------------

    def set_learned(self, values: dict[str, str]) -> None:
        """Keep learned estimates (last write wins, like positions: no version, no event)."""
        self._learned.update(values)

    def set_position(self, courier_id: str, location: Location, cell: str, seen_at: int) -> None:
        courier = self._couriers.get(courier_id)
        if courier is None:
            return
        self._couriers[courier_id] = replace(courier, location=location, seen_at=seen_at)
        if courier_id in self._cell_of:  # a courier taken out of the index (off shift) stays out
            self._move_to_cell(courier_id, cell)

    def apply(self, change: Change) -> list[Event]:
        self._check(change)
        for merchant in change.merchants:
            self._merchants[merchant.id] = merchant
        for courier in change.couriers:
            self._couriers[courier.id] = courier
        for order in change.orders:
            old = self._orders.get(order.id)
            if old is not None:
                del self._by_status[old.status][order.id]
            self._by_status[order.status][order.id] = None
            self._by_merchant.setdefault(order.merchant_id, {})[order.id] = None
            self._orders[order.id] = order
        for courier_id, cell in change.courier_cells.items():
            self._index_cell(courier_id, cell)
        for courier_id, route in change.routes.items():
            if route is None:
                self._routes.pop(courier_id, None)
            else:
                self._routes[courier_id] = route
        appended = []
        for new in change.events:
            event = new.numbered(self.city, len(self._events) + 1)
            self._events.append(event)
            appended.append(event)
        return appended

    def _index_cell(self, courier_id: str, cell: str | None) -> None:
        if cell is None:
            old = self._cell_of.pop(courier_id, None)
            if old is not None:
                self._in_cell[old].discard(courier_id)
        else:
            self._move_to_cell(courier_id, cell)

    def _move_to_cell(self, courier_id: str, cell: str) -> None:
        old = self._cell_of.get(courier_id)
        if old == cell:
            return
        if old is not None:
            self._in_cell[old].discard(courier_id)
        self._in_cell.setdefault(cell, set()).add(courier_id)
        self._cell_of[courier_id] = cell

    def _check(self, change: Change) -> None:
        check_plan_owners(change)
        for mid in change.new_merchant_ids:
            if mid in self._merchants:
                raise DuplicateId(f"merchant {mid!r} already exists", id=mid)
        _check_versions(change.couriers, self._couriers, "courier")
        _check_versions(change.orders, self._orders, "order")


def check_plan_owners(change: Change) -> None:
    """Refuse a change that writes a courier's plan without writing (and so version-checking) the courier.

    A plan read together with its courier is only safe to rewrite if nobody changed it since;
    the courier's version is what says so. This is a rule for the engine's own code, so breaking
    it is a ``ValueError``, not a user-facing error.
    """
    written = {c.id for c in change.couriers}
    missing = sorted(cid for cid in change.routes if cid not in written)
    if missing:
        raise ValueError(
            f"a change writes the plan of courier(s) {missing} without the courier record: "
            "bump its version in the same change"
        )


def _check_versions(records: Sequence[Courier] | Sequence[Order], current: Any, what: str) -> None:
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            raise version_error(what, record.id, None, record.version, twice=True)
        seen.add(record.id)
        old = current.get(record.id)
        expected = 1 if old is None else old.version + 1
        if record.version != expected:
            raise version_error(what, record.id, None if old is None else old.version, record.version)


def version_error(
    what: str, record_id: str, stored: int | None, written: int, *, twice: bool = False
) -> DuplicateId | StaleWrite:
    """The error for writing version ``written`` over ``stored`` (``None``: absent), for every store."""
    if twice:
        return StaleWrite(f"{what} {record_id!r} written twice in one change", id=record_id)
    if stored is not None and written == 1:
        return DuplicateId(f"{what} {record_id!r} already exists", id=record_id)
    if stored is None:
        return StaleWrite(f"{what} {record_id!r} does not exist any more", id=record_id)
    return StaleWrite(
        f"{what} {record_id!r} changed since it was read (stored version {stored}, "
        f"write based on {written - 1})",
        id=record_id,
    )
