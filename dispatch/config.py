"""The one configuration object of a city's dispatcher."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from dispatch.errors import InvalidInput

__all__ = ["DispatchConfig"]


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    """Rules and tuning of one city. All durations are seconds.

    The same configuration serves every city and instance unless a caller overrides it;
    nothing here is fitted to a particular data set.
    """

    city: str = "default"
    #: H3 resolution of the courier index (res 8: ~0.46 km edges).
    h3_resolution: int = 8
    #: H3 resolution of the delivery-area pre-filter.
    area_resolution: int = 9
    #: ASAP promise: drop-off within this long of placement, unless the merchant says otherwise.
    promise_s: int = 1800
    #: Longest scheduled window a customer may name.
    max_window_s: int = 1800
    #: Time at the merchant (walk in, collect, walk out); the food changes hands half-way.
    pickup_service_s: int = 240
    #: Time at the customer's door; the hand-over is half-way.
    dropoff_service_s: int = 240
    #: Candidate couriers for a pickup are those that can reach the merchant within this.
    max_pickup_travel_s: int = 1800
    #: Pickups with no courier within ``max_pickup_travel_s`` look this far instead: an order
    #: at a remote merchant is served late rather than never.
    orphan_pickup_travel_s: int = 5400
    #: Busy couriers whose plan ends within this long compete for new work in the assignment...
    free_horizon_s: int = 1200
    #: ...but an order is committed only to a courier free within this long. An order whose
    #: best courier is still busy waits for a later tick instead of being given to a worse
    #: courier now, and nobody's plan is locked in early.
    commit_horizon_s: int = 0
    #: Commitment: a courier is not committed to an order it would reach more than this long
    #: before the food is ready; the order waits for a later tick instead (food waits less,
    #: couriers are not parked at restaurants).
    max_early_s: int = 120
    #: Orders of one merchant whose ready times differ by at most this may share a courier.
    bundle_ready_gap_s: int = 600
    max_bundle_size: int = 3
    #: Prepositioning: an idle courier moves to a merchant (at most this far) when waiting
    #: there brings it at least ``min_reposition_gain_s`` closer, on average, to the merchants
    #: of the orders seen in the last ``demand_window_s``; the ride there is charged at
    #: ``reposition_travel_share`` (it cannot be diverted on the way). 0 turns it off.
    max_reposition_travel_s: int = 1200
    min_reposition_gain_s: int = 60
    demand_window_s: int = 3600
    reposition_travel_share: float = 0.25
    #: Assignment updates: a courier waiting at a merchant to collect may take more of that
    #: merchant's open orders into the same pickup, when that costs less than any other courier.
    pickup_updates: bool = True
    #: ...keeping it waiting at most this much longer for the new food...
    join_max_wait_s: int = 120
    #: ...and handing none of its orders over more than this much later than planned.
    join_max_delay_s: int = 600
    #: Bundle choice: when some order waits (left out, or matched to a courier still busy),
    #: the assignment may choose among overlapping bundles (pairs, larger bundles) instead of
    #: one partition of each merchant's orders, in ticks of at most this many orders
    #: (0 turns it off); the solver stops after this much deterministic time.
    bundle_choice_max_orders: int = 400
    bundle_choice_time_s: float = 0.5
    #: Sparsity of the assignment: cheapest couriers kept per bundle.
    candidates_per_bundle: int = 12
    #: Speed assumed for a customer's direct ride when judging a promise at admission (the
    #: ``WindowInfeasible`` rule), and for the reach of the supply search; the supply check itself
    #: times the ride at the counted courier's own speed.
    reference_speed_mps: float = 4.5
    #: Cost weights, per second: lateness against the promise first, then click-to-door,
    #: then food waiting at the merchant, then courier travel.
    lateness_weight: int = 20
    click_to_door_weight: int = 2
    food_wait_weight: int = 1
    travel_weight: int = 1
    #: Refuse orders whose promise cannot be met. A replay of orders that were already
    #: accepted (the Grubhub instances) turns this off: those orders are served, late if need be.
    refuse_infeasible_promises: bool = True
    #: Admission counts supply (on by default; off, the promise is judged by the direct ride
    #: alone; a replay of accepted orders, without ``refuse_infeasible_promises``, never counts
    #: it): an ASAP order is taken only if some courier near the merchant, once free of its plan
    #: and after the orders already waiting, can deliver it within the promise...
    supply_admission: bool = True
    #: ...and when none can, a quote offers the earliest feasible scheduled window instead of
    #: refusing with ``NoCourierCapacity`` (an ASAP order placed anyway is still refused).
    offer_schedule_when_full: bool = False
    #: Busy couriers near the merchant whose plans admission reads (nearest first).
    supply_plans_read: int = 64
    #: Admission looks for couriers in rings of H3 cells around the merchant, nearest first,
    #: and stops widening once it has found this many on shift (or reached
    #: ``max_pickup_travel_s``): in a dense fleet the nearest ones decide, and a quote costs
    #: the same however many couriers the city has. 0: every courier in reach.
    supply_couriers: int = 128
    #: Confidence margin of supply admission: an ASAP order is taken only if its earliest
    #: feasible drop-off, plus this share of the time from now until then, is within the
    #: promise (rides and kitchens vary; the longer the wait, the more). 0 turns it off.
    promise_margin_share: float = 0.1
    #: Learning: preparation time per merchant and hour from pickups (and "food ready"), and
    #: travel time per H3 cell and hour from couriers' rides, kept in the store; off, every
    #: estimate is the stated one and rides take the base travel model's time.
    learning: bool = True
    #: Shrinkage: a merchant's learned delay counts as this many orders of the city's figure.
    prep_prior_orders: int = 5
    #: Shrinkage: a cell's learned travel factor counts as this many rides of its hour's
    #: figure, an hour's as this many of the city's, and the city's as this many of 1.0.
    travel_prior_legs: int = 20
    #: An ``order.eta_changed`` event is written when an order's pickup or drop-off ETA moves
    #: by at least this much.
    eta_change_threshold_s: int = 60
    #: A courier who declines an assignment is not offered those orders again for this long.
    decline_cooloff_s: int = 900
    #: An assignment is accepted for its courier at once (the Grubhub replay, the default
    #: simulator). Off, it is first an offer the courier accepts or declines within
    #: ``offer_timeout_s``; a decline or a timeout frees the orders for the next tick.
    auto_accept: bool = True
    offer_timeout_s: int = 30
    #: Quotes are honoured for this long.
    quote_valid_s: int = 300
    #: Routes of more orders than this are sequenced by OR-Tools with a time limit.
    exact_route_max_tasks: int = 6
    route_time_limit_s: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.city, str) or not self.city or "{" in self.city or "}" in self.city:
            raise InvalidInput("city must be a non-empty name without braces", field="city")
        for f in fields(self):
            if f.name != "city":
                _check(f.name, f.type, getattr(self, f.name))


#: Ranges other than the default (whole numbers >= 0; real numbers >= 0), as
#: (least, greatest, least allowed too); ``None``: no bound.
_RANGES: dict[str, tuple[float, float | None, bool]] = {
    "h3_resolution": (0, 15, True),
    "area_resolution": (0, 15, True),
    "promise_s": (1, None, True),
    "offer_timeout_s": (1, None, True),
    "max_window_s": (1, None, True),
    "max_bundle_size": (1, None, True),
    "eta_change_threshold_s": (1, None, True),
    "candidates_per_bundle": (1, None, True),
    "reposition_travel_share": (0, 1, True),
    "promise_margin_share": (0, 1, True),
    "reference_speed_mps": (0, None, False),
    "route_time_limit_s": (0, None, False),
}


def _check(name: str, kind: object, value: object) -> None:
    """One field by its type (``int``: whole numbers, seconds or counts; ``float``: any finite
    real number; ``bool``) and range."""
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false, got {value!r}", field=name)
        return
    least, greatest, closed = _RANGES.get(name, (0, None, True))
    rule = f"{'>=' if closed else '>'} {least:g}" + (f" and <= {greatest:g}" if greatest is not None else "")
    if kind == "int":
        rule += " in whole seconds (an int)" if name.endswith("_s") else ", a whole number (an int)"
        ok = not isinstance(value, bool) and isinstance(value, int)
    else:
        rule += ", finite"
        ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
    if ok:
        assert isinstance(value, int | float)
        ok = (value > least or (closed and value == least)) and (greatest is None or value <= greatest)
    if not ok:
        raise InvalidInput(f"{name} must be a number {rule}, got {value!r}", field=name)
