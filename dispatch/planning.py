"""Between the domain and the router: orders and locations in, timed ``Stop``s out.

The router (:mod:`dispatch.routing`) knows only integer matrices. This module builds the
matrix for one courier's stops with the city's travel model, calls the router (to choose a
sequence, or to re-time a fixed one), and turns its answer back into :class:`Stop` records.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from dispatch.config import DispatchConfig
from dispatch.geo import TravelModel
from dispatch.models import Location, Merchant, Order, Stop, StopKind
from dispatch.routing import Objective, RoutePlan, RouteTask, RoutingProblem, evaluate, solve

__all__ = ["PlannedRoute", "Planner", "objective_for"]


@dataclass(frozen=True, slots=True)
class PlannedRoute:
    stops: tuple[Stop, ...]
    cost: int
    lateness_s: int
    optimal: bool


def objective_for(config: DispatchConfig) -> Objective:
    """The route objective that matches the dispatcher's cost weights."""
    return Objective(
        travel_weight=config.travel_weight,
        lateness_weight=config.lateness_weight,
        completion_weight=config.click_to_door_weight,
    )


class _Builder:
    """Collects distinct locations into matrix nodes; node 0 is the courier's start."""

    def __init__(self, start: Location) -> None:
        self.locations: list[Location] = [start]
        self._node_of: dict[tuple[str, str], int] = {}

    def node(self, key: tuple[str, str], location: Location) -> int:
        node = self._node_of.get(key)
        if node is None:
            node = len(self.locations)
            self.locations.append(location)
            self._node_of[key] = node
        return node


@dataclass(frozen=True, slots=True)
class Planner:
    """Plans and re-times couriers' stops for one tick (or one courier event): the city's rules,
    its travel model, and the merchants the orders come from.

    Examples
    --------
    >>> from dispatch import DeliveryArea, Location, Merchant, Order, Window
    >>> from dispatch.geo import GreatCircleTravel
    >>> m = Merchant("m1", Location(52.52, 13.405), DeliveryArea(radius_m=3000))
    >>> o = Order("o1", "m1", Location(52.53, 13.415), placed_at=0, ready_at=600, window=Window(0, 1800))
    >>> planner = Planner(DispatchConfig(), GreatCircleTravel(), {"m1": m})
    >>> plan = planner.plan(speed_mps=4.5, capacity=3, start=m.location, start_at=0, orders=[o])
    >>> [(s.kind.value, s.service_at) for s in plan.stops]
    [('pickup', 600), ('dropoff', 1217)]
    """

    config: DispatchConfig
    travel: TravelModel
    merchants: Mapping[str, Merchant]

    def problem(
        self,
        speed_mps: float,
        capacity: int | None,
        start: Location,
        start_at: int,
        orders: Sequence[Order],
        on_board: frozenset[str],
    ) -> RoutingProblem:
        """The routing problem of ``orders`` for a courier at ``start`` at ``start_at``."""
        config = self.config
        builder = _Builder(start)
        tasks = []
        for order in orders:
            pickup = None
            if order.id not in on_board:
                merchant = self.merchants[order.merchant_id]
                pickup = builder.node(("m", merchant.id), merchant.location)
            dropoff = builder.node(("o", order.id), order.dropoff)
            tasks.append(
                RouteTask(
                    pickup=pickup,
                    dropoff=dropoff,
                    ready_at=order.ready_at,
                    window_start=order.window.start if order.scheduled else 0,
                    deadline=order.window.end,
                )
            )
        matrix = self.travel.matrix_s(builder.locations, builder.locations, speed_mps)
        return RoutingProblem(
            travel_s=matrix,
            tasks=tuple(tasks),
            start_at=start_at,
            capacity=capacity,
            pickup_service_s=config.pickup_service_s,
            dropoff_service_s=config.dropoff_service_s,
            objective=objective_for(config),
        )

    def plan(
        self,
        *,
        speed_mps: float,
        capacity: int | None,
        start: Location,
        start_at: int,
        orders: Sequence[Order],
        on_board: frozenset[str] = frozenset(),
    ) -> PlannedRoute:
        """The best stop sequence for ``orders`` from ``start`` at ``start_at``, timed."""
        problem = self.problem(speed_mps, capacity, start, start_at, orders, on_board)
        plan = solve(
            problem,
            time_limit_s=self.config.route_time_limit_s,
            exact_max_tasks=self.config.exact_route_max_tasks,
        )
        return PlannedRoute(_to_stops(plan, orders, self.merchants), plan.cost, plan.lateness_s, plan.optimal)

    def retime(
        self,
        *,
        speed_mps: float,
        start: Location,
        start_at: int,
        stops: Sequence[Stop],
        orders: Mapping[str, Order],
        on_board: frozenset[str] = frozenset(),
    ) -> tuple[Stop, ...]:
        """The same stop sequence, re-timed from ``start`` at ``start_at`` (after an event)."""
        if stops and stops[0].kind is StopKind.REPOSITION:
            first = stops[0]
            arrive = start_at + self.travel.travel_s(start, first.location, speed_mps)
            moved = replace(first, arrive_at=arrive, service_at=arrive, depart_at=arrive)
            rest = self.retime(
                speed_mps=speed_mps,
                start=first.location,
                start_at=arrive,
                stops=stops[1:],
                orders=orders,
                on_board=on_board,
            )
            return (moved, *rest)
        if not stops:
            return ()
        ordered: list[Order] = []
        index: dict[str, int] = {}
        for stop in stops:
            for oid in stop.order_ids:
                if oid not in index:
                    index[oid] = len(ordered)
                    ordered.append(orders[oid])
        problem = self.problem(speed_mps, None, start, start_at, ordered, on_board)
        sequence = [
            ("pickup" if stop.kind is StopKind.PICKUP else "dropoff", index[oid])
            for stop in stops
            for oid in stop.order_ids
        ]
        return _to_stops(evaluate(problem, sequence), ordered, self.merchants)


def _to_stops(
    plan: RoutePlan, orders: Sequence[Order], merchants: Mapping[str, Merchant]
) -> tuple[Stop, ...]:
    stops = []
    for planned in plan.stops:
        ids = tuple(orders[i].id for i in planned.tasks)
        first = orders[planned.tasks[0]]
        if planned.kind == "pickup":
            kind, location, merchant_id = (
                StopKind.PICKUP,
                merchants[first.merchant_id].location,
                first.merchant_id,
            )
        else:
            kind, location, merchant_id = StopKind.DROPOFF, first.dropoff, first.merchant_id
        stops.append(
            Stop(
                kind=kind,
                order_ids=ids,
                location=location,
                arrive_at=planned.arrive_at,
                service_at=planned.service_at,
                depart_at=planned.depart_at,
                merchant_id=merchant_id,
            )
        )
    return tuple(stops)
