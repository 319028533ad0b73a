"""The Dispatcher: the one object every caller drives.

It is a facade: admission and quotes live in :mod:`dispatch.admission`, the courier state
machine in :mod:`dispatch.couriers`, ETAs in :mod:`dispatch.etas` and the decision cycle in
:mod:`dispatch.ticking`; the math in :mod:`dispatch.geo`, :mod:`dispatch.matching` and
:mod:`dispatch.routing`. It never reads the wall clock: every call is given ``now``
(integer seconds). Every call either writes all of its changes, through one
:meth:`Store.apply`, or raises a :class:`~dispatch.errors.DispatchError` having written
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from dispatch import admission, couriers, declines, estimates, etas, ranges
from dispatch.admission import AreaCache, Quote, Supply
from dispatch.config import DispatchConfig
from dispatch.errors import IllegalTransition
from dispatch.estimates import TravelMemo
from dispatch.etas import BoardRow, Eta
from dispatch.geo import GreatCircleTravel, TravelModel
from dispatch.lookups import Engine, check_now, courier_of, merchant_of, order_of
from dispatch.matching import DispatchPolicy, OptimizingPolicy
from dispatch.models import (
    CancelledBy,
    Courier,
    CourierStatus,
    Event,
    EventKind,
    Location,
    Merchant,
    Order,
    OrderDetails,
    OrderStatus,
    Route,
    Window,
)
from dispatch.store import Change, MemoryStore, NewEvent, Store
from dispatch.ticking import EtaCause, TickResult, eta_changes, run_tick, stops_of
from dispatch.timing import leave_s

__all__ = ["BoardRow", "CityCounts", "Dispatcher", "Eta", "Quote", "TickResult"]


class CityCounts(NamedTuple):
    """What the city holds now, for statistics."""

    orders: dict[OrderStatus, int]
    couriers_on_shift: tuple[Courier, ...]
    merchants: int


#: A process that has not ticked for this long recalls the recent demand from the event log
#: on its next tick (another process may have dispatched meanwhile).
_RECALL_AFTER_S = 300


@dataclass(slots=True)
class _At:
    """The engine as its modules see it at one moment: the travel model corrected by what was
    learned for that hour (see :mod:`dispatch.estimates.travel`)."""

    store: Store
    config: DispatchConfig
    travel: TravelModel


class Dispatcher:
    """Admission, dispatch ticks, courier events and ETAs for one city.

    Examples
    --------
    >>> from dispatch import DeliveryArea, Dispatcher, Location, Merchant
    >>> d = Dispatcher()
    >>> _ = d.add_merchant(Merchant("m1", Location(52.5200, 13.4050), DeliveryArea(radius_m=3000)), now=0)
    >>> _ = d.start_shift("c1", Location(52.5210, 13.4100), now=0, shift_end=4 * 3600)
    >>> order = d.place_order("o1", "m1", Location(52.5300, 13.4150), now=60)
    >>> [a.order_ids for a in d.tick(now=600).assignments]
    [('o1',)]
    """

    def __init__(
        self,
        store: Store | None = None,
        config: DispatchConfig | None = None,
        travel: TravelModel | None = None,
        policy: DispatchPolicy | None = None,
    ) -> None:
        self.config = config or DispatchConfig()
        self.store: Store = store if store is not None else MemoryStore(self.config.city)
        #: the base travel model; admission, dispatch and ETAs use it corrected by what was
        #: learned (:meth:`travel_at`)
        self.travel: TravelModel = travel or GreatCircleTravel()
        self.policy: DispatchPolicy = policy or OptimizingPolicy()
        self._areas = AreaCache()
        self._ticked_at: int | None = None  # this process's last tick
        self._skipped: dict[tuple[str, str], str] = {}  # records its last tick left out, named
        self._learned_travel = TravelMemo()
        #: the supply :meth:`place_order` counted the order it just placed on, for that order's
        #: :meth:`eta` at the same ``now`` (the 201 of an order shows its ETA) while the event
        #: log has not moved since; a ping or any call that times things drops it
        self._just_placed: tuple[str, int, int, Supply] | None = None

    def travel_at(self, now: int) -> TravelModel:
        """The travel model for rides at ``now``: the base one corrected by the factors learned
        for that hour of day, or the base one itself where there are none (learning off)."""
        return self._learned_travel.model(self, self.travel, check_now(now))

    def _at(self, now: int) -> Engine:
        self._just_placed = None
        travel = self.travel_at(now)
        return self if travel is self.travel else _At(self.store, self.config, travel)

    # -- merchants ---------------------------------------------------------------------------

    def add_merchant(self, merchant: Merchant, now: int) -> Merchant:
        """Register a merchant; its delivery area is checked now (a bad polygon is refused)."""
        check_now(now)
        self._areas.get(merchant, self.config.area_resolution)
        self.store.apply(
            Change(
                merchants=[merchant],
                new_merchant_ids={merchant.id},
                events=[NewEvent(EventKind.MERCHANT_CREATED, now, merchant_id=merchant.id)],
            )
        )
        return merchant

    def update_merchant(self, merchant: Merchant, now: int) -> Merchant:
        check_now(now)
        merchant_of(self, merchant.id)
        self._areas.get(merchant, self.config.area_resolution)
        self.store.apply(
            Change(
                merchants=[merchant],
                events=[NewEvent(EventKind.MERCHANT_UPDATED, now, merchant_id=merchant.id)],
            )
        )
        return merchant

    def merchant(self, merchant_id: str) -> Merchant:
        return merchant_of(self, merchant_id)

    # -- admission ---------------------------------------------------------------------------

    def quote(
        self,
        merchant_id: str,
        dropoff: Location,
        now: int,
        *,
        window: Window | None = None,
        ready_at: int | None = None,
    ) -> Quote:
        """Whether an order could be accepted now, and its promise and ETAs if so.

        Raises :class:`OutsideDeliveryArea` (with the distance and radius) or
        :class:`WindowInfeasible` (with the minutes it would be late) when it could not.
        """
        return admission.quote(
            self._at(now), self._areas, merchant_id, dropoff, now, window=window, ready_at=ready_at
        )

    def place_order(
        self,
        order_id: str,
        merchant_id: str,
        dropoff: Location,
        now: int,
        *,
        window: Window | None = None,
        ready_at: int | None = None,
        details: OrderDetails | None = None,
    ) -> Order:
        """Accept an order (same rules as :meth:`quote`) and record it as placed, with its
        contacts, "leave at the door" and delivery PIN (``details``)."""
        order, supply = admission.place_order(
            self._at(now),
            self._areas,
            order_id,
            merchant_id,
            dropoff,
            now,
            window=window,
            ready_at=ready_at,
            details=details,
        )
        if supply is not None:
            self._just_placed = (order.id, now, self.store.last_seq(), supply)
        return order

    def cancel_order(
        self,
        order_id: str,
        now: int,
        *,
        reason: str = "unspecified",
        by: CancelledBy = CancelledBy.OPERATOR,
    ) -> Order:
        """Cancel an order not yet picked up; its courier's plan drops its stops. The reason
        code and who cancelled are stored on the order and carried by ``order.cancelled``."""
        return couriers.cancel_order(self._at(now), order_id, now, reason=reason, by=by)

    def order(self, order_id: str) -> Order:
        return order_of(self, order_id)

    # -- couriers ----------------------------------------------------------------------------

    def start_shift(
        self,
        courier_id: str,
        location: Location,
        now: int,
        shift_end: int,
        *,
        speed_mps: float = 4.5,
        capacity: int = 3,
    ) -> Courier:
        """Put a courier on shift at ``location`` until ``shift_end``."""
        return couriers.start_shift(
            self, courier_id, location, now, shift_end, speed_mps=speed_mps, capacity=capacity
        )

    def end_shift(self, courier_id: str, now: int) -> Courier:
        """End a shift: orders not yet picked up go back to the pool; picked-up ones are still delivered."""
        return couriers.end_shift(self._at(now), courier_id, now)

    def update_position(self, courier_id: str, location: Location, now: int) -> None:
        """A position ping: the hot path. Updates the cell index; no event, no re-planning. On a
        ride noted for learning, the stretch since its last checkpoint teaches travel times
        (:func:`~dispatch.estimates.observe_ping`: one more read, a write only when it does)."""
        self._just_placed = None
        courier = couriers.update_position(self, courier_id, location, now)
        # an idle courier has no plan, so no ride under way (a note left by a plan that was
        # dropped on the way is not one): nothing to read
        if courier.status is not CourierStatus.IDLE:
            estimates.observe_ping(self, self.travel, courier_id, location, courier.speed_mps, now)

    def arrived(self, courier_id: str, now: int) -> Route:
        """The courier reports being at its next stop (an ``order.eta_changed`` for each order
        whose ETA this moves by ``eta_change_threshold_s`` or more)."""
        old = self.store.get_route(courier_id)
        route = couriers.arrived(self._at(now), courier_id, now)
        if old is not None and old.stops:
            speed = courier_of(self, courier_id).speed_mps
            estimates.ride_arrives(self, self.travel, courier_id, old, route, speed, now)
            late = now > old.stops[0].arrive_at
            self._eta_moved(old, route, now, EtaCause.COURIER_LATE if late else EtaCause.COURIER_EARLY)
        return route

    def picked_up(self, courier_id: str, order_id: str, now: int) -> Route:
        """The courier collected ``order_id`` at its merchant (and the preparation estimate of its
        merchant learns from when; see :mod:`dispatch.estimates`)."""
        before = self.store.get_order(order_id)
        plan = self.store.get_route(courier_id)
        route = couriers.picked_up(self._at(now), courier_id, order_id, now)
        if before is not None and plan is not None:
            here = bool(plan.stops) and order_id in plan.stops[0].order_ids
            if here and route.stops and route.arrived_at is None:  # it leaves the merchant
                leaves = now + leave_s(self.config.pickup_service_s)
                estimates.ride_leaves(self, courier_id, plan, route, leaves)
            # a courier collecting several orders waits for the latest food: it measures only
            # that one exactly (the others were ready by then)
            others = (
                [self.store.get_order(o) for o in plan.stops[0].order_ids if o != order_id] if here else []
            )
            latest = all(o is None or o.ready_at <= before.ready_at for o in others)
            estimates.observe_pickup(self, before, plan.arrived_at if here and latest else None, now)
            planned = stops_of(plan, order_id)[0]
            late = planned is not None and now > planned.service_at
            self._eta_moved(plan, route, now, EtaCause.FOOD_LATE if late else EtaCause.COURIER_EARLY)
        return route

    def stated_ready_at(self, order_id: str) -> int:
        """The ready time ``order_id`` was placed with; its ``ready_at`` is when the engine
        expects the food (the stated time plus the merchant's learned delay)."""
        return estimates.stated_ready_at(self, order_of(self, order_id))

    def food_ready(self, order_id: str, now: int) -> Order:
        """The merchant says ``order_id``'s food is ready now: an exact observation of its
        preparation time (once per order; ignored with learning off)."""
        check_now(now)
        order = order_of(self, order_id)
        if order.status is not OrderStatus.PLACED and order.status is not OrderStatus.ASSIGNED:
            raise IllegalTransition(
                f"order {order_id!r} is {order.status.value}; its food was collected or it is closed"
            )
        estimates.observe_ready(self, order, now)
        return order

    def delivered(self, courier_id: str, order_id: str, now: int, *, pin: str | None = None) -> Route:
        """The courier handed ``order_id`` to its customer (who told it ``pin``, when it has one)."""
        old = self.store.get_route(courier_id)
        route = couriers.delivered(self._at(now), courier_id, order_id, now, pin=pin)
        estimates.ride_leaves(self, courier_id, old, route, now + leave_s(self.config.dropoff_service_s))
        if old is not None:
            planned = stops_of(old, order_id)[1]
            late = planned is not None and now > planned.service_at
            self._eta_moved(old, route, now, EtaCause.COURIER_LATE if late else EtaCause.COURIER_EARLY)
        return route

    def returned(self, courier_id: str, order_id: str, now: int) -> Route:
        """The courier, at the door, could not hand ``order_id`` over and takes it back."""
        old = self.store.get_route(courier_id)
        route = couriers.returned(self._at(now), courier_id, order_id, now)
        estimates.ride_leaves(self, courier_id, old, route, now + leave_s(self.config.dropoff_service_s))
        return route

    def _eta_moved(self, old: Route, new: Route, now: int, cause: EtaCause) -> None:
        """Write the ``order.eta_changed`` events of a plan that moved (after the courier event
        that moved it: the event is news about the plan, not part of the courier's change)."""
        events = eta_changes(self.store, self.config, old, new, now, cause)
        if events:
            self.store.apply(Change(events=events))

    def release(self, courier_id: str, order_id: str, now: int) -> Order:
        """The courier turns down an order it has not picked up: it goes back to the pool."""
        return couriers.release(self._at(now), courier_id, order_id, now)

    def decline(self, courier_id: str, order_ids: Sequence[str], now: int) -> list[Order]:
        """The courier turns down an assignment: its orders go back to waiting, and it is not
        offered them again for ``decline_cooloff_s`` (the bar is kept on the orders, in the Store)."""
        return couriers.decline(self._at(now), courier_id, order_ids, now)

    def accept_offer(self, courier_id: str, offer_id: str, now: int) -> list[Order]:
        """The courier accepts an offer (see ``DispatchConfig.auto_accept``); twice is harmless."""
        return couriers.accept_offer(self, courier_id, offer_id, now)

    def decline_offer(self, courier_id: str, offer_id: str, now: int) -> list[Order]:
        """The courier declines an offer: its orders wait for the next tick, which does not
        offer them to this courier for ``decline_cooloff_s``."""
        return couriers.decline_offer(self._at(now), courier_id, offer_id, now)

    def courier(self, courier_id: str) -> Courier:
        return courier_of(self, courier_id)

    def route(self, courier_id: str) -> Route:
        """The courier's current plan: the stops ahead of it, with planned times."""
        courier_of(self, courier_id)
        return self.store.get_route(courier_id) or Route(courier_id, (), 0)

    # -- dispatch ----------------------------------------------------------------------------

    def tick(self, now: int) -> TickResult:
        """Decide on the open orders and write every decision, or none (see :mod:`dispatch.ticking`).

        On this process's first tick, after :meth:`recall_demand`, and when it has not ticked
        for ``_RECALL_AFTER_S`` (it was not the city's dispatcher meanwhile), the policy is also
        told the orders placed in the demand window, from the event log: the orders another
        process assigned while this one was not ticking are demand too.
        """
        check_now(now)
        last = self._ticked_at
        recall = last is None or not 0 <= now - last <= _RECALL_AFTER_S  # (or the clock went back)
        ctx = self._at(now)
        couriers.expire_offers(ctx, now)
        policy = declines.guard(self.policy)
        result = run_tick(
            self.store, policy, ctx.travel, self.config, now, recall=recall, reported=self._skipped
        )
        if result.available_couriers:  # the policy was asked (with no courier it is not)
            self._ticked_at = now
        estimates.rides_start(self, (*result.assignments, *result.repositions), now)
        return result

    def recall_demand(self) -> None:
        """Have the next tick recall the demand window from the event log: call it when this
        process becomes the city's dispatcher (another one may have dispatched meanwhile)."""
        self._ticked_at = None

    # -- ETAs and queries ----------------------------------------------------------------------

    def eta(self, order_id: str, now: int) -> Eta:
        """When the courier reaches the restaurant, and when the food is picked up and delivered."""
        placed = self._just_placed
        fresh = placed is not None and placed[:2] == (order_id, now) and placed[2] == self.store.last_seq()
        return etas.eta(self._at(now), order_id, now, placed[3] if fresh and placed else None)

    def merchant_board(
        self, merchant_id: str, now: int, *, include_closed: bool = False, limit: int = 100
    ) -> list[BoardRow]:
        """A restaurant's orders in placement order, each open one with its :meth:`eta` (one
        supply search for all of them)."""
        return etas.merchant_board(
            self._at(now), merchant_id, now, include_closed=include_closed, limit=limit
        )

    def find_order(self, order_id: str) -> Order | None:
        """The order, or ``None`` when there is none (:meth:`order` raises instead)."""
        return self.store.get_order(order_id)

    def events(self, after_seq: int = 0, limit: int | None = None) -> list[Event]:
        """The city's events after ``after_seq``, oldest first (at most ``limit``).

        Both are checked here as in the API (:data:`~dispatch.ranges.EVENT_SEQ`), so every store
        answers the same: a negative ``after_seq`` once read the memory log's tail, and a seq past
        Redis's stream ids was a server error."""
        ranges.EVENT_SEQ.check(after_seq, "after_seq")
        if limit is not None:
            ranges.EVENT_SEQ.check(limit, "limit")
        return self.store.events(after_seq, limit)

    def last_event_seq(self) -> int:
        """The seq of the city's last event (0 before the first), without reading the log."""
        return self.store.last_seq()

    def counts(self, *, open_only: bool = False) -> CityCounts:
        """How many orders are in each status (only the open ones with ``open_only``, which
        skips reading the ever-growing delivered and cancelled sets), which couriers are on
        shift, how many merchants."""
        store = self.store
        orders = {s: len(store.orders_with_status(s)) for s in OrderStatus if s.is_open or not open_only}
        return CityCounts(orders, tuple(store.couriers_on_shift()), len(store.merchants()))
