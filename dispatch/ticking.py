r"""The decision cycle: one tick reads the city, asks the policy, and writes every plan at once.

The policy (:mod:`dispatch.matching`) decides who carries what; this module turns its
:class:`~dispatch.matching.Decision`\ s into timed plans (:mod:`dispatch.planning`) and one
:class:`~dispatch.store.Change`: new orders appended after a courier's plan, orders joining
the pickup a courier waits for at a merchant, or a move to wait at a merchant.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

from dispatch import isolation
from dispatch.config import DispatchConfig
from dispatch.errors import DispatchError
from dispatch.geo import TravelModel
from dispatch.matching import Collecting, CourierSupply, Decision, DispatchPolicy, Snapshot
from dispatch.models import (
    Assignment,
    Courier,
    CourierStatus,
    EventKind,
    Location,
    Order,
    OrderStatus,
    Placement,
    Route,
    Stop,
    StopKind,
    delivery_status,
)
from dispatch.planning import Planner
from dispatch.store import Change, NewEvent, Store, next_version

log = logging.getLogger("dispatch")

__all__ = ["EtaCause", "TickResult", "eta_changes", "recent_placements", "run_tick", "stops_of"]


class EtaCause(StrEnum):
    """Why an order's ETA moved (the ``cause`` of ``order.eta_changed``)."""

    COURIER_LATE = "courier_late"
    COURIER_EARLY = "courier_early"
    FOOD_LATE = "food_late"
    REPLANNED = "replanned"


#: the event log is read back in pages of this many events, at most ``_RECALL_PAGES`` of them
_RECALL_PAGE = 1000
_RECALL_PAGES = 200


class _PolicyError(RuntimeError):
    """The policy broke its contract (two plans for a courier, an order twice): the tick fails."""


@dataclass(frozen=True, slots=True)
class TickResult:
    """What one tick decided: the new plans, and what is still open."""

    now: int
    assignments: tuple[Assignment, ...]
    open_orders: int
    available_couriers: int
    #: idle couriers sent to wait at a merchant (plans of one reposition stop, no orders)
    repositions: tuple[Assignment, ...] = ()
    #: couriers and orders this tick left out because they failed on their own
    #: (:mod:`dispatch.isolation`); each has a ``tick.record_skipped`` event when it is newly
    #: left out (see ``run_tick``'s ``reported``)
    skipped: tuple[isolation.Skipped, ...] = ()


def run_tick(
    store: Store,
    policy: DispatchPolicy,
    travel: TravelModel,
    config: DispatchConfig,
    now: int,
    *,
    recall: bool = False,
    reported: dict[tuple[str, str], str] | None = None,
) -> TickResult:
    """Decide on the open orders and write every decision, or none.

    With ``recall``, the policy is also told the orders placed within the demand window,
    read back from the event log (:func:`recent_placements`).

    ``reported`` is the caller's memory of the records left out by its previous tick (kind and
    id to reason): a record left out again for the same reason gets no new
    ``tick.record_skipped`` event, so a record that stays bad is named once, not every tick.
    It is updated in place to this tick's; ``None`` names every skipped record every tick.
    """
    merchants = {m.id: m for m in store.merchants()}
    couriers, placed, skipped = isolation.screen(
        store.couriers_on_shift(), store.orders_with_status(OrderStatus.PLACED), merchants
    )
    routes = store.routes([c.id for c in couriers])
    couriers = _retime_late(store, Planner(config, travel, merchants), config, couriers, routes, now)
    # Couriers waiting at a merchant that has open orders may take some into their pickup;
    # only then are their orders read (in one read).
    open_at = {o.merchant_id for o in placed} if config.pickup_updates else set()
    waiting = {cid for cid, r in routes.items() if _waits_to_collect(r) and r.stops[0].merchant_id in open_at}
    held = {o.id: o for o in store.orders_with_status(OrderStatus.ASSIGNED)} if waiting else {}
    supply = []
    for courier in couriers:
        route = routes.get(courier.id)
        if route is not None and route.stops:
            last = route.stops[-1]
            collecting = _collecting(route, held) if courier.id in waiting else None
            supply.append(
                CourierSupply(
                    courier, last.depart_at, last.location, len(route.order_ids), collecting=collecting
                )
            )
        else:
            supply.append(
                CourierSupply(courier, max(now, courier.available_at), courier.location, 0, idle=True)
            )
    supply.sort(key=lambda s: s.courier.id)
    placed.sort(key=lambda o: o.id)
    snapshot = Snapshot(
        now=now,
        orders=tuple(placed),
        supply=tuple(supply),
        merchants=merchants,
        placements=recent_placements(store, now, config.demand_window_s) if recall else (),
    )
    decisions, left_out, snapshot = isolation.decide(policy, snapshot, travel, config)
    skipped += left_out

    by_id = {o.id: o for o in snapshot.orders}
    supply_of = {s.courier.id: s for s in snapshot.supply}
    tick = _Tick(policy, Planner(config, travel, merchants), now, Change())
    change = tick.change
    assignments = []
    repositions = []
    taken: set[str] = set()
    for decision in decisions:
        if decision.courier_id in taken or decision.courier_id not in supply_of:
            raise _PolicyError(f"policy {policy.name} gave courier {decision.courier_id!r} two plans")
        taken.add(decision.courier_id)
        s = supply_of[decision.courier_id]
        if not decision.order_ids:
            repositions.append(tick.reposition(s, decision))
            continue
        orders = []
        for oid in decision.order_ids:
            if oid not in by_id:
                raise _PolicyError(f"policy {policy.name} assigned order {oid!r} twice or not open")
            orders.append(by_id.pop(oid))
        old = routes.get(s.courier.id)
        moved: list[Order] = []  # orders it held whose pickup or hand-over the decision moves
        try:
            if decision.join:
                route, moved = tick.join_pickup(s, old, orders)
            else:
                route = tick.after_plan(s, old, orders)
        except (DispatchError, _PolicyError):
            raise
        except Exception as exc:  # this courier's plan cannot be made: the rest of the city goes on
            skipped.append(isolation.Skipped("courier", s.courier.id, f"{type(exc).__name__}: {exc}"[:300]))
            continue
        change.routes[s.courier.id] = route
        change.couriers.append(next_version(s.courier, status=CourierStatus.BUSY))
        offer = offer_of(config, s.courier.id, decision.order_ids, now)
        for order in orders:
            change.orders.append(
                next_version(
                    order,
                    status=OrderStatus.ASSIGNED,
                    courier_id=s.courier.id,
                    assigned_at=now,
                    offer_id=offer[0] if offer else None,
                    offer_expires_at=offer[1] if offer else None,
                )
            )
            event = _timed_event(EventKind.ORDER_ASSIGNED, now, change.orders[-1], s.courier.id, route)
            if offer is not None:
                event.data.update(offer_id=offer[0], offer_expires_at=offer[1])
            change.events.append(event)
        for order in moved:
            change.events.append(_timed_event(EventKind.ORDER_RESCHEDULED, now, order, s.courier.id, route))
        if moved:
            change.events += eta_changes(store, config, old, route, now, EtaCause.REPLANNED)
        assignments.append(Assignment(s.courier.id, decision.order_ids, route, float(decision.cost)))
    before = {} if reported is None else dict(reported)
    if reported is not None:
        reported.clear()
        reported.update({(item.kind, item.id): item.reason for item in skipped})
    for item in skipped:
        if before.get((item.kind, item.id)) == item.reason:
            continue
        log.warning("dispatch tick leaves %s %r out: %s", item.kind, item.id, item.reason)
        change.events.append(
            NewEvent(
                EventKind.TICK_RECORD_SKIPPED,
                now,
                courier_id=item.id if item.kind == "courier" else None,
                order_id=item.id if item.kind == "order" else None,
                data={"kind": item.kind, "reason": item.reason},
            )
        )
    if assignments or repositions or change.events:  # a record named before writes nothing new
        store.apply(change)
    return TickResult(
        now=now,
        assignments=tuple(assignments),
        open_orders=len(placed) - sum(len(a.order_ids) for a in assignments),
        available_couriers=len(supply),
        repositions=tuple(repositions),
        skipped=tuple(skipped),
    )


def offer_of(
    config: DispatchConfig, courier_id: str, order_ids: tuple[str, ...], now: int
) -> tuple[str, int] | None:
    """The offer of an assignment, ``(offer id, answer by)``; ``None`` when the city auto-accepts.

    The id is the same for the same decision (same inputs, same ids), unique per courier.
    """
    if config.auto_accept:
        return None
    digest = hashlib.sha256("\0".join((courier_id, *order_ids)).encode()).hexdigest()[:10]
    return f"of-{now}-{digest}", now + config.offer_timeout_s


def _retime_late(
    store: Store,
    planner: Planner,
    config: DispatchConfig,
    couriers: list[Courier],
    routes: dict[str, Route],
    now: int,
) -> list[Courier]:
    """Re-time the plans of couriers past their planned arrival at their first stop (not yet
    reported there): they arrive ``now`` at the earliest. A plan whose hand-overs move by
    ``eta_change_threshold_s`` or more is written (with ``order.eta_changed`` events, cause
    ``courier_late``) before the decisions; ``routes`` is updated and the couriers returned with
    their new versions. Smaller moves are left alone, so ETAs do not creep with every tick."""
    change = Change()
    bumped: dict[str, Courier] = {}
    for courier in couriers:
        route = routes.get(courier.id)
        if (
            route is None
            or not route.stops
            or route.arrived_at is not None
            or now <= route.stops[0].arrive_at
        ):
            continue
        if not route.order_ids:
            continue  # a reposition: nobody waits on it
        orders: dict[str, Order] = {}
        for oid in route.order_ids:
            order = store.get_order(oid)
            if order is None:
                break
            orders[oid] = order
        else:
            first = route.stops[0]
            # it is on its way to the first stop: at the earliest, it gets there now
            stops = planner.retime(
                speed_mps=courier.speed_mps,
                start=first.location,
                start_at=now,
                stops=route.stops,
                orders=orders,
                on_board=frozenset(o for o, r in orders.items() if r.status is OrderStatus.PICKED_UP),
            )
            new = Route(courier.id, stops, planned_at=now, arrived_at=None)
            events = eta_changes(store, config, route, new, now, EtaCause.COURIER_LATE)
            if events:
                bumped[courier.id] = next_version(courier)
                change.couriers.append(bumped[courier.id])
                change.routes[courier.id] = new
                change.events += events
    if not bumped:
        return couriers
    store.apply(change)
    routes.update({cid: r for cid, r in change.routes.items() if r is not None})
    return [bumped.get(c.id, c) for c in couriers]


def _handovers(route: Route, order_id: str) -> tuple[int | None, int | None, int | None]:
    pickup, dropoff = stops_of(route, order_id)
    return (
        pickup.arrive_at if pickup else None,
        pickup.service_at if pickup else None,
        dropoff.service_at if dropoff else None,
    )


def eta_changes(
    store: Store, config: DispatchConfig, old: Route | None, new: Route | None, now: int, cause: EtaCause
) -> list[NewEvent]:
    """An ``order.eta_changed`` event for each order in both plans whose pickup or drop-off
    hand-over moves by ``eta_change_threshold_s`` or more from ``old`` to ``new``."""
    if old is None or new is None:
        return []
    threshold = config.eta_change_threshold_s
    events = []
    kept = set(old.order_ids)
    for order_id in new.order_ids:
        if order_id not in kept:
            continue
        _, was_pickup, was_dropoff = _handovers(old, order_id)
        arrival, pickup, dropoff = _handovers(new, order_id)
        moved = [
            abs(b - a)
            for a, b in ((was_pickup, pickup), (was_dropoff, dropoff))
            if a is not None and b is not None
        ]
        if not moved or max(moved) < threshold:
            continue
        order = store.get_order(order_id)
        events.append(
            NewEvent(
                EventKind.ORDER_ETA_CHANGED,
                now,
                order_id=order_id,
                courier_id=new.courier_id,
                merchant_id=order.merchant_id if order is not None else None,
                data={
                    "cause": cause.value,
                    "courier_arrival_at": arrival,
                    "pickup_at": pickup,
                    "dropoff_at": dropoff,
                    "previous_pickup_at": was_pickup,
                    "previous_dropoff_at": was_dropoff,
                },
            )
        )
    return events


def recent_placements(store: Store, now: int, window_s: int) -> tuple[Placement, ...]:
    """The orders placed within ``window_s`` before
    ``now``, newest first, from the ``order.placed`` events: the log is read backwards until an
    event older than the window (or at most ``_RECALL_PAGES`` pages)."""
    found: list[Placement] = []
    before: int | None = None
    for _ in range(_RECALL_PAGES):
        page = store.events_back(before, limit=_RECALL_PAGE)
        for event in page:
            if event.at < now - window_s:
                return tuple(found)
            if (
                event.kind == EventKind.ORDER_PLACED
                and event.order_id
                and event.merchant_id
                and event.at <= now
            ):
                found.append(Placement(event.at, event.order_id, event.merchant_id))
        if len(page) < _RECALL_PAGE:
            break
        before = page[-1].seq
    return tuple(found)


class _Times(NamedTuple):
    """When the courier reaches an order's food, collects it and hands it over."""

    arrival: int | None
    pickup: int | None
    dropoff: int | None


def _times_of(route: Route, order_id: str) -> _Times:
    pickup, dropoff = stops_of(route, order_id)
    return _Times(
        pickup.arrive_at if pickup else None,
        pickup.service_at if pickup else None,
        dropoff.service_at if dropoff else None,
    )


def _timed_event(kind: EventKind, now: int, order: Order, courier_id: str, route: Route) -> NewEvent:
    """An event about ``order``'s place in ``route``, with its planned times."""
    times = _times_of(route, order.id)
    return NewEvent(
        kind,
        now,
        order_id=order.id,
        courier_id=courier_id,
        merchant_id=order.merchant_id,
        data={
            "courier_arrival_at": times.arrival,
            "pickup_at": times.pickup,
            "dropoff_at": times.dropoff,
            "status": delivery_status(order, route).value,
        },
    )


@dataclass(slots=True)
class _Tick:
    """What turning one tick's decisions into plans needs: the policy (named in its errors),
    the planner, the time, and the change being assembled."""

    policy: DispatchPolicy
    planner: Planner
    now: int
    change: Change

    def plan_fresh(
        self, courier: Courier, start: Location, start_at: int, orders: Sequence[Order]
    ) -> tuple[Stop, ...]:
        """Stops for ``orders``, none of them on board yet, from ``start`` at ``start_at``."""
        return self.planner.plan(
            speed_mps=courier.speed_mps,
            capacity=courier.capacity,
            start=start,
            start_at=start_at,
            orders=list(orders),
        ).stops

    def after_plan(self, supply: CourierSupply, old: Route | None, orders: list[Order]) -> Route:
        """The courier's plan with ``orders`` after it, from where and when it is free."""
        now = self.now
        new = self.plan_fresh(supply.courier, supply.free_location, max(now, supply.free_at), orders)
        before = old.stops if old else ()
        if before and before[-1].kind is StopKind.REPOSITION and before[-1].location == new[0].location:
            before = before[:-1]  # on its way to wait where its new work starts: just go there
        return Route(
            supply.courier.id, before + new, planned_at=now, arrived_at=old.arrived_at if old else None
        )

    def join_pickup(
        self, supply: CourierSupply, old: Route | None, orders: list[Order]
    ) -> tuple[Route, list[Order]]:
        """Add ``orders`` to the pickup the courier waits for; its drop-offs are planned again.

        Returns the plan, and the orders it held whose pickup or hand-over moves.
        """
        held = supply.collecting
        if (
            held is None
            or old is None
            or old.arrived_at is None
            or any(o.merchant_id != held.merchant_id for o in orders)
        ):
            raise _PolicyError(
                f"policy {self.policy.name} joined orders to courier {supply.courier.id!r}, "
                "which is not waiting at their merchant"
            )
        merchant = self.planner.merchants[held.merchant_id]
        together = [*held.orders, *orders]
        # from the moment it arrived, as when it reported arriving: nothing of its wait is lost
        start_at = old.arrived_at
        stops = self.plan_fresh(supply.courier, merchant.location, start_at, together)
        if sum(stop.kind is StopKind.PICKUP for stop in stops) > 1:
            # The router would come back later for some of them; the decision was to collect
            # them all in this pickup. One pickup, then the drop-offs in the router's sequence.
            pickup = Stop(
                StopKind.PICKUP, tuple(o.id for o in together), merchant.location, 0, 0, 0, merchant.id
            )
            stops = self.planner.retime(
                speed_mps=supply.courier.speed_mps,
                start=merchant.location,
                start_at=start_at,
                stops=[pickup, *(stop for stop in stops if stop.kind is StopKind.DROPOFF)],
                orders={o.id: o for o in together},
            )
        route = Route(supply.courier.id, stops, planned_at=self.now, arrived_at=old.arrived_at)

        def handed_over(r: Route, order_id: str) -> tuple[int | None, int | None]:
            times = _times_of(r, order_id)
            return times.pickup, times.dropoff

        moved = [o for o in held.orders if handed_over(old, o.id) != handed_over(route, o.id)]
        return route, moved

    def reposition(self, supply: CourierSupply, decision: Decision) -> Assignment:
        """Send an idle courier to wait at a merchant: a plan of one stop without orders."""
        now, courier = self.now, supply.courier
        merchant = self.planner.merchants.get(decision.reposition_to or "")
        if merchant is None or not supply.idle:
            raise _PolicyError(
                f"policy {self.policy.name} repositioned courier {courier.id!r} "
                f"{'to an unknown merchant' if merchant is None else 'that has a plan'}"
            )
        arrive = max(now, supply.free_at) + self.planner.travel.travel_s(
            supply.free_location, merchant.location, courier.speed_mps
        )
        stop = Stop(StopKind.REPOSITION, (), merchant.location, arrive, arrive, arrive, merchant.id)
        route = Route(courier.id, (stop,), planned_at=now)
        self.change.routes[courier.id] = route
        self.change.couriers.append(next_version(courier, status=CourierStatus.BUSY))
        self.change.events.append(
            NewEvent(
                EventKind.COURIER_REPOSITIONED,
                now,
                courier_id=courier.id,
                merchant_id=merchant.id,
                data={"arrive_at": arrive},
            )
        )
        return Assignment(courier.id, (), route, float(decision.cost))


def _collecting(route: Route, orders: dict[str, Order]) -> Collecting:
    """The pickup a courier waits for (see :func:`_waits_to_collect`), for the policy."""
    first = route.stops[0]
    assert first.merchant_id is not None
    at_door = {stop.order_ids[0]: stop.service_at for stop in route.stops[1:]}
    return Collecting(
        first.merchant_id,
        tuple(orders[oid] for oid in first.order_ids),
        first.service_at,
        tuple(at_door[oid] for oid in first.order_ids),
    )


def _waits_to_collect(route: Route) -> bool:
    """At a merchant for a pickup, with only that pickup's drop-offs after it."""
    if not route.stops or route.arrived_at is None:
        return False
    first, rest = route.stops[0], route.stops[1:]
    return (
        first.kind is StopKind.PICKUP
        and first.merchant_id is not None
        and len(rest) == len(first.order_ids)
        and all(stop.kind is StopKind.DROPOFF and stop.order_ids[0] in first.order_ids for stop in rest)
    )


def stops_of(route: Route, order_id: str) -> tuple[Stop | None, Stop | None]:
    """The pickup and the drop-off of ``order_id`` in ``route`` (``None`` where there is none)."""
    pickup = dropoff = None
    for stop in route.stops:
        if order_id in stop.order_ids:
            if stop.kind is StopKind.PICKUP:
                pickup = stop
            else:
                dropoff = stop
    return pickup, dropoff
