"""The courier state machine follows the plan; offers, declines and their timeouts; cancellations
with a reason and who cancelled. Every refusal changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from dispatch import (
    CancelledBy,
    Contact,
    DeliveryArea,
    Dispatcher,
    GreedyPolicy,
    IllegalTransition,
    InvalidInput,
    Merchant,
    OrderStatus,
    StopKind,
)
from dispatch.couriers import MAX_PIN_FAILURES, PIN_LOCKOUT_S
from dispatch.errors import TooManyPinAttempts, UnknownOffer, WrongPin
from dispatch.models import DeliveryStatus, OrderDetails, delivery_status
from dispatch.store import Change, next_version
from tests.conftest import CENTRE, destination

M2 = destination(CENTRE, 1200, 180)


def _state(d: Dispatcher) -> tuple[Any, ...]:
    """Everything an engine call may write: the log, orders, couriers and plans."""
    store = d.store
    orders = {s: sorted(store.orders_with_status(s), key=lambda o: o.id) for s in OrderStatus}
    couriers = sorted(store.couriers_on_shift(), key=lambda c: c.id)
    routes = store.routes([c.id for c in couriers])
    return len(store.events()), orders, couriers, routes


def _one_order(d: Dispatcher) -> None:
    d.start_shift("c1", destination(CENTRE, 400, 90), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0)
    assert [a.order_ids for a in d.tick(now=420).assignments] == [("o1",)]


Step = Callable[[Dispatcher, int], object]

#: the courier events, by name; each reports on order o1 (arrived names no order)
EVENTS: dict[str, Step] = {
    "arrived": lambda d, t: d.arrived("c1", t),
    "picked_up": lambda d, t: d.picked_up("c1", "o1", t),
    "delivered": lambda d, t: d.delivered("c1", "o1", t),
}

#: (where the courier is in its plan, the one event allowed there)
PHASES = [
    ("enroute_to_pickup", "arrived"),
    ("arrived_at_pickup", "picked_up"),
    ("enroute_to_dropoff", "arrived"),
    ("arrived_at_dropoff", "delivered"),
]


def _to_phase(d: Dispatcher, phase: str) -> int:
    """Carry o1 to ``phase``; returns the time of the next event."""
    _one_order(d)
    t = 500
    for name, allowed in PHASES:
        if name == phase:
            return t
        EVENTS[allowed](d, t)
        t += 200
    raise AssertionError(phase)


@pytest.mark.parametrize(("phase", "allowed"), PHASES)
def test_each_phase_allows_its_one_event(dispatcher: Dispatcher, phase: str, allowed: str) -> None:
    t = _to_phase(dispatcher, phase)
    EVENTS[allowed](dispatcher, t)
    order = dispatcher.order("o1")
    expected = {
        "arrived": OrderStatus.ASSIGNED if phase == "enroute_to_pickup" else OrderStatus.PICKED_UP,
        "picked_up": OrderStatus.PICKED_UP,
        "delivered": OrderStatus.DELIVERED,
    }[allowed]
    assert order.status is expected
    assert (dispatcher.route("c1").arrived_at == t) == (allowed == "arrived")


@pytest.mark.parametrize(
    ("phase", "event"),
    [(phase, event) for phase, allowed in PHASES for event in EVENTS if event != allowed],
)
def test_every_out_of_order_event_is_refused_and_changes_nothing(
    dispatcher: Dispatcher, phase: str, event: str
) -> None:
    t = _to_phase(dispatcher, phase)
    before = _state(dispatcher)
    with pytest.raises(IllegalTransition) as refused:
        EVENTS[event](dispatcher, t)
    assert _state(dispatcher) == before
    allowed = dict(PHASES)[phase]
    assert refused.value.details["expected_next"]["event"] == allowed
    assert f"expected next: {allowed}" in refused.value.message


def test_after_delivery_every_event_is_refused(dispatcher: Dispatcher) -> None:
    t = _to_phase(dispatcher, "arrived_at_dropoff")
    dispatcher.delivered("c1", "o1", t)
    before = _state(dispatcher)
    for step in EVENTS.values():
        with pytest.raises(IllegalTransition):
            step(dispatcher, t + 1)
    assert _state(dispatcher) == before


def test_picked_up_only_for_orders_of_the_stop_arrived_at(dispatcher: Dispatcher) -> None:
    dispatcher.add_merchant(Merchant("m2", M2, DeliveryArea(radius_m=3000), prep_s=600), now=0)
    _one_order(dispatcher)
    # a second courier waits at m2, so that o2 is admitted; the plan below gives o2 to c1
    dispatcher.start_shift("c2", M2, now=0, shift_end=4 * 3600)
    o2 = dispatcher.place_order("o2", "m2", destination(M2, 800, 270), now=0)
    # a plan with two pickups (m1, then m2), written as a tick would
    pickup_1, dropoff_1 = dispatcher.route("c1").stops
    pickup_2 = replace(pickup_1, order_ids=("o2",), location=M2, merchant_id="m2")
    dropoff_2 = replace(dropoff_1, order_ids=("o2",), location=o2.dropoff)
    plan = replace(dispatcher.route("c1"), stops=(pickup_1, pickup_2, dropoff_1, dropoff_2))
    dispatcher.store.apply(
        Change(
            orders=[next_version(o2, status=OrderStatus.ASSIGNED, courier_id="c1", assigned_at=420)],
            couriers=[next_version(dispatcher.courier("c1"))],
            routes={"c1": plan},
        )
    )
    dispatcher.arrived("c1", 500)
    stops = dispatcher.route("c1").stops
    assert stops[0].kind is StopKind.PICKUP and stops[0].order_ids == ("o1",)
    before = _state(dispatcher)
    with pytest.raises(IllegalTransition, match="expected next: picked_up"):
        dispatcher.picked_up("c1", "o2", 530)  # o2 waits at m2, 1.2 km away
    with pytest.raises(IllegalTransition):
        dispatcher.delivered("c1", "o2", 530)
    assert _state(dispatcher) == before
    dispatcher.picked_up("c1", "o1", 620)  # the one at this stop is fine


# -- cancellations ---------------------------------------------------------------------------


def test_a_cancellation_stores_its_reason_and_who(dispatcher: Dispatcher) -> None:
    _one_order(dispatcher)
    order = dispatcher.cancel_order("o1", 450, reason="store_closed", by=CancelledBy.MERCHANT)
    assert (order.cancel_reason, order.cancelled_by) == ("store_closed", CancelledBy.MERCHANT)
    stored = dispatcher.order("o1")
    assert (stored.cancel_reason, stored.cancelled_by) == ("store_closed", CancelledBy.MERCHANT)
    event = [e for e in dispatcher.events() if e.kind == "order.cancelled"][-1]
    assert event.data == {"reason": "store_closed", "by": "merchant", "status": "cancelled"}


@pytest.mark.parametrize(
    "reason",
    [
        "Store Closed",  # spaces and capitals
        "",  # empty
        "x" * 65,  # too long
        "9lives",  # starts with a digit
    ],
)
def test_a_bad_reason_code_is_refused_and_changes_nothing(dispatcher: Dispatcher, reason: str) -> None:
    _one_order(dispatcher)
    before = _state(dispatcher)
    with pytest.raises(InvalidInput, match="reason"):
        dispatcher.cancel_order("o1", 450, reason=reason)
    assert _state(dispatcher) == before


# -- offers ----------------------------------------------------------------------------------


@pytest.fixture
def offering(dispatcher: Dispatcher) -> Dispatcher:
    """The same city (and store), making offers: 30 s to answer, 15 minutes barred after a decline.

    The greedy policy gives an order to the nearest free courier at once: who gets it says
    whether a bar was respected.
    """
    config = replace(dispatcher.config, auto_accept=False, offer_timeout_s=30, decline_cooloff_s=900)
    return Dispatcher(store=dispatcher.store, config=config, policy=GreedyPolicy())


def _offered(d: Dispatcher) -> str:
    """c1 (near m1) and c2 (farther) on shift; o1 placed and offered to c1. Returns the offer id."""
    d.start_shift("c1", destination(CENTRE, 300, 90), now=0, shift_end=4 * 3600)
    d.start_shift("c2", destination(CENTRE, 900, 270), now=0, shift_end=4 * 3600)
    d.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0)
    assert [(a.courier_id, a.order_ids) for a in d.tick(now=420).assignments] == [("c1", ("o1",))]
    order = d.order("o1")
    assert order.offer_pending and order.offer_expires_at == 450 and order.offer_id is not None
    assigned = [e for e in d.events() if e.kind == "order.assigned"][-1]
    assert assigned.data["offer_id"] == order.offer_id and assigned.data["offer_expires_at"] == 450
    return order.offer_id


def test_a_declined_offer_goes_to_another_courier(offering: Dispatcher) -> None:
    offer = _offered(offering)
    freed = offering.decline_offer("c1", offer, 430)
    assert [(o.status, o.courier_id) for o in freed] == [(OrderStatus.PLACED, None)]
    assert offering.route("c1").stops == ()
    assert offering.order("o1").declined_by == (("c1", 430 + 900),)
    # the next tick offers it to c2, though c1 is nearer and idle
    assert [(a.courier_id, a.order_ids) for a in offering.tick(now=440).assignments] == [("c2", ("o1",))]
    kinds = [e.kind for e in offering.events() if e.order_id == "o1"]
    assert kinds == [
        "order.placed",
        "order.assigned",
        "order.offer_declined",
        "order.unassigned",
        "order.assigned",
    ]


def test_an_unanswered_offer_times_out_and_goes_to_another_courier(offering: Dispatcher) -> None:
    _offered(offering)
    assert offering.tick(now=449).assignments == ()  # not yet: c1 may still answer
    assert offering.order("o1").courier_id == "c1"
    # the tick at the deadline withdraws the offer, then offers the order to c2
    result = offering.tick(now=450)
    expired = [e for e in offering.events() if e.kind == "order.offer_expired"]
    assert [(e.order_id, e.courier_id, e.at) for e in expired] == [("o1", "c1", 450)]
    assert [(a.courier_id, a.order_ids) for a in result.assignments] == [("c2", ("o1",))]
    assert offering.route("c1").stops == ()
    assert offering.order("o1").declined_by == (("c1", 450 + 900),)


def test_the_bar_lives_in_the_store_and_ends(offering: Dispatcher) -> None:
    offer = _offered(offering)
    offering.decline_offer("c1", offer, 430)
    offering.end_shift("c2", 431)
    # another process (or this one restarted) on the same store knows the bar
    other = Dispatcher(store=offering.store, config=offering.config, policy=GreedyPolicy())
    assert other.tick(now=440).assignments == ()
    assert other.order("o1").status is OrderStatus.PLACED
    # once the bar is over, c1 may be offered it again
    assert [a.courier_id for a in other.tick(now=430 + 900).assignments] == ["c1"]


def test_accepting_twice_is_harmless(offering: Dispatcher) -> None:
    offer = _offered(offering)
    [accepted] = offering.accept_offer("c1", offer, 440)
    assert accepted.status is OrderStatus.ASSIGNED and not accepted.offer_pending
    before = _state(offering)
    [again] = offering.accept_offer("c1", offer, 445)
    assert again == accepted
    assert _state(offering) == before
    # accepted: the timeout no longer applies
    assert offering.tick(now=500).assignments == ()
    assert offering.order("o1").courier_id == "c1"
    kinds = [e.kind for e in offering.events() if e.order_id == "o1"]
    assert kinds.count("order.offer_accepted") == 1


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda d, offer: d.accept_offer("c1", offer, 450), IllegalTransition),  # expired
        (lambda d, offer: d.accept_offer("c2", offer, 440), UnknownOffer),  # another courier's
        (lambda d, offer: d.decline_offer("c1", "of-1-0000000000", 440), UnknownOffer),  # never made
        (lambda d, offer: d.picked_up("c1", "o1", 440), IllegalTransition),  # not accepted yet
    ],
)
def test_bad_offer_answers_are_refused_and_change_nothing(offering: Dispatcher, call, error) -> None:  # type: ignore[no-untyped-def]
    offer = _offered(offering)
    if error is IllegalTransition:
        offering.arrived("c1", 435)
    before = _state(offering)
    with pytest.raises(error):
        call(offering, offer)
    assert _state(offering) == before


def test_declining_an_accepted_offer_is_refused(offering: Dispatcher) -> None:
    offer = _offered(offering)
    offering.accept_offer("c1", offer, 440)
    before = _state(offering)
    with pytest.raises(IllegalTransition, match="rejected"):
        offering.decline_offer("c1", offer, 441)
    assert _state(offering) == before


def test_auto_accept_makes_no_offers(offering: Dispatcher) -> None:
    auto = Dispatcher(store=offering.store, config=replace(offering.config, auto_accept=True))
    auto.start_shift("c1", destination(CENTRE, 300, 90), now=0, shift_end=4 * 3600)
    auto.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0)
    auto.tick(now=420)
    order = auto.order("o1")
    assert order.status is OrderStatus.ASSIGNED and order.offer_id is None and not order.offer_pending
    assert auto.tick(now=10_000).assignments == ()  # nothing ever times out
    assert auto.order("o1").courier_id == "c1"


# -- the integrators' statuses ---------------------------------------------------------------


def test_delivery_status_follows_the_courier_through_its_plan(dispatcher: Dispatcher) -> None:
    seen = []

    def status() -> str:
        order = dispatcher.order("o1")
        plan = dispatcher.store.get_route(order.courier_id) if order.courier_id else None
        return delivery_status(order, plan).value

    dispatcher.start_shift("c1", destination(CENTRE, 400, 90), now=0, shift_end=4 * 3600)
    dispatcher.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0)
    seen.append(status())
    dispatcher.tick(now=420)
    seen.append(status())
    t = 500
    for _, allowed in PHASES:
        EVENTS[allowed](dispatcher, t)
        seen.append(status())
        t += 200
    assert seen == [
        "created",
        "enroute_to_pickup",
        "arrived_at_pickup",
        "enroute_to_dropoff",
        "arrived_at_dropoff",
        "delivered",
    ]
    # each order event says the status it leads to
    # (order.eta_changed says when, not where: it carries no status)
    moves = [e for e in dispatcher.events() if e.kind.startswith("order.") and e.kind != "order.eta_changed"]
    statuses = [(e.kind, e.data.get("status")) for e in moves]
    assert statuses == [
        ("order.placed", "created"),
        ("order.assigned", "enroute_to_pickup"),
        ("order.picked_up", "enroute_to_dropoff"),
        ("order.delivered", "delivered"),
    ]
    arrivals = [e.data.get("status") for e in dispatcher.events() if e.kind == "courier.arrived"]
    assert arrivals == ["arrived_at_pickup", "arrived_at_dropoff"]


def test_returned_only_at_the_door(dispatcher: Dispatcher) -> None:
    t = _to_phase(dispatcher, "enroute_to_dropoff")
    before = _state(dispatcher)
    with pytest.raises(IllegalTransition, match="expected next: arrived"):
        dispatcher.returned("c1", "o1", t)
    assert _state(dispatcher) == before
    dispatcher.arrived("c1", t)
    dispatcher.returned("c1", "o1", t + 60)
    order = dispatcher.order("o1")
    assert order.status is OrderStatus.RETURNED and order.delivered_at is None
    assert delivery_status(order, None) is DeliveryStatus.RETURNED
    assert dispatcher.route("c1").stops == ()
    assert dispatcher.events()[-1].kind == "order.returned"


# -- delivery PIN ----------------------------------------------------------------------------


def _with_pin(d: Dispatcher, *, contactless: bool = False) -> int:
    """m1 requires a PIN; o1 (PIN 4821, or left at the door) is at its door. Returns the time."""
    d.update_merchant(replace(d.merchant("m1"), delivery_pin=True), now=0)
    d.start_shift("c1", destination(CENTRE, 400, 90), now=0, shift_end=4 * 3600)
    details = OrderDetails(contactless=True) if contactless else OrderDetails(delivery_pin="4821")
    d.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0, details=details)
    d.tick(now=420)
    t = 500
    for _, allowed in PHASES[:3]:
        EVENTS[allowed](d, t)
        t += 200
    return t


def test_the_right_pin_delivers(dispatcher: Dispatcher) -> None:
    t = _with_pin(dispatcher)
    dispatcher.delivered("c1", "o1", t, pin="4821")
    assert dispatcher.order("o1").status is OrderStatus.DELIVERED


def test_a_wrong_pin_is_refused_and_counted(dispatcher: Dispatcher) -> None:
    t = _with_pin(dispatcher)
    events = len(dispatcher.events())
    for pin, left in [("0000", 4), (None, 3)]:
        with pytest.raises(WrongPin) as wrong:
            dispatcher.delivered("c1", "o1", t, pin=pin)
        assert wrong.value.details["attempts_left"] == left
    order = dispatcher.order("o1")
    assert order.status is OrderStatus.PICKED_UP and order.pin_failures == 2
    assert len(dispatcher.events()) == events  # counted on the order, nothing else
    dispatcher.delivered("c1", "o1", t + 1, pin="4821")
    assert dispatcher.order("o1").status is OrderStatus.DELIVERED


def test_too_many_wrong_pins_pause_the_attempts(dispatcher: Dispatcher) -> None:
    t = _with_pin(dispatcher)
    for i in range(MAX_PIN_FAILURES):
        with pytest.raises(WrongPin):
            dispatcher.delivered("c1", "o1", t + i, pin="1111")
    last = t + MAX_PIN_FAILURES - 1
    before = _state(dispatcher)
    with pytest.raises(TooManyPinAttempts) as paused:
        dispatcher.delivered("c1", "o1", last + 10, pin="4821")  # even the right one
    assert paused.value.retry_after_s == PIN_LOCKOUT_S - 10
    assert _state(dispatcher) == before
    dispatcher.delivered("c1", "o1", last + PIN_LOCKOUT_S, pin="4821")
    assert dispatcher.order("o1").status is OrderStatus.DELIVERED


def test_contactless_waives_the_pin(dispatcher: Dispatcher) -> None:
    t = _with_pin(dispatcher, contactless=True)
    assert dispatcher.order("o1").delivery_pin is None
    dispatcher.delivered("c1", "o1", t)
    assert dispatcher.order("o1").status is OrderStatus.DELIVERED


@pytest.mark.parametrize(
    "details",
    [
        OrderDetails(),  # the merchant requires a PIN and none is given
        OrderDetails(delivery_pin="12345"),  # five digits
        OrderDetails(delivery_pin="12a4"),  # not digits
        OrderDetails(contactless=True, delivery_pin="1234"),  # a PIN for a door drop
    ],
)
def test_bad_pins_at_placement_are_refused(dispatcher: Dispatcher, details: OrderDetails) -> None:
    dispatcher.update_merchant(replace(dispatcher.merchant("m1"), delivery_pin=True), now=0)
    before = _state(dispatcher)
    with pytest.raises(InvalidInput, match="PIN"):
        dispatcher.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0, details=details)
    assert _state(dispatcher) == before


def test_contacts_are_stored_and_never_in_a_repr(dispatcher: Dispatcher) -> None:
    door = Contact(name="Ada Lovelace", phone="+49 30 1234567", instructions="2nd floor, ring twice")
    kitchen = Contact(name="Chef Bo", phone="+49 30 7654321")
    details = OrderDetails(pickup_contact=kitchen, dropoff_contact=door, delivery_pin=None)
    dispatcher.start_shift("c1", destination(CENTRE, 400, 90), now=0, shift_end=4 * 3600)
    order = dispatcher.place_order("o1", "m1", destination(CENTRE, 1500, 0), now=0, details=details)
    stored = dispatcher.order("o1")
    assert (stored.pickup_contact, stored.dropoff_contact) == (kitchen, door)
    for text in (repr(order), repr(stored), repr(details), str(dispatcher.events())):
        for secret in ("Ada", "1234567", "ring twice", "Chef", "7654321"):
            assert secret not in text
