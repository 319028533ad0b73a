"""Couriers: shifts, position pings (the hot path), events from the courier app, the route ahead."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response

from api.deps import CallerDep, CourierIdDep, RuntimeDep
from api.problems import problem_responses
from api.runtime import Runtime
from api.schemas.couriers import (
    OFFER_ID_PATTERN,
    Arrived,
    CourierEvent,
    CourierEventResult,
    CourierPublic,
    Delivered,
    OfferPublic,
    PickedUp,
    PositionUpdate,
    Returned,
    RoutePublic,
    ShiftStart,
)
from api.settings import Role
from dispatch.errors import UnknownOrder
from dispatch.models import Location, Order, Route

router = APIRouter(prefix="/v1/couriers", tags=["couriers"])

_OfferPath = Annotated[
    str, Path(pattern=OFFER_ID_PATTERN, description="from the offer's order.assigned event")
]


@router.post(
    "/{courier_id}/shift/start",
    status_code=201,
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    summary="Start a shift (this also registers a new courier)",
)
async def start_shift(courier_id: CourierIdDep, body: ShiftStart, runtime: RuntimeDep) -> CourierPublic:
    now = runtime.now()
    courier = await runtime.run(
        lambda: runtime.dispatcher.start_shift(
            courier_id,
            body.location.to_location(),
            now,
            now + body.duration_minutes * 60,
            speed_mps=body.speed_mps,
            capacity=body.capacity,
        )
    )
    return CourierPublic.of(courier)


@router.post(
    "/{courier_id}/shift/end",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="End a shift: orders not picked up go back to the pool; picked-up ones are still delivered",
)
async def end_shift(courier_id: CourierIdDep, runtime: RuntimeDep) -> CourierPublic:
    courier = await runtime.run(lambda: runtime.dispatcher.end_shift(courier_id, runtime.now()))
    return CourierPublic.of(courier)


@router.put(
    "/{courier_id}/position",
    status_code=204,
    response_class=Response,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    summary="Report the courier's position (send every few seconds while on shift)",
)
async def update_position(courier_id: CourierIdDep, body: PositionUpdate, request: Request) -> Response:
    # the hot path: the runtime is read from the app, not through one more dependency
    runtime: Runtime = request.app.state.runtime
    location = Location(body.lat, body.lng)
    await runtime.run(lambda: runtime.dispatcher.update_position(courier_id, location, runtime.now()))
    return Response(status_code=204)


@router.post(
    "/{courier_id}/events",
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    summary="What the courier did: arrived (at its next stop), picked_up, delivered, returned, rejected",
    description=(
        "Events follow the plan: `arrived` at the next stop, then `picked_up` of that pickup's "
        "orders, or `delivered` (with the customer's `pin` when the order has one) or `returned` "
        "at that door. Anything else is 409 `illegal-transition` with `expected_next`, and "
        "changes nothing."
    ),
)
async def courier_event(
    courier_id: CourierIdDep, body: CourierEvent, principal: CallerDep, runtime: RuntimeDep
) -> CourierEventResult:
    order_id = None if isinstance(body, Arrived) else body.order_id

    def act() -> Route:
        d, now = runtime.dispatcher, runtime.now()
        if order_id is not None:
            order = d.order(order_id)
            # another courier's order is not this courier's business: same answer as no order
            if principal.role is Role.COURIER and order.courier_id != courier_id:
                raise UnknownOrder(f"no order {order_id!r}", id=order_id)
        if isinstance(body, Arrived):
            return d.arrived(courier_id, now)
        if isinstance(body, PickedUp):
            return d.picked_up(courier_id, body.order_id, now)
        if isinstance(body, Delivered):
            return d.delivered(courier_id, body.order_id, now, pin=body.pin)
        if isinstance(body, Returned):
            return d.returned(courier_id, body.order_id, now)
        d.release(courier_id, body.order_id, now)
        return d.route(courier_id)

    route = await runtime.run(act)
    return CourierEventResult(
        courier_id=courier_id, event=body.type, order_id=order_id, route=RoutePublic.of(route)
    )


@router.get(
    "/{courier_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="A courier's status and position",
)
async def get_courier(courier_id: CourierIdDep, runtime: RuntimeDep) -> CourierPublic:
    courier = await runtime.run(lambda: runtime.dispatcher.courier(courier_id))
    return CourierPublic.of(courier)


@router.get(
    "/{courier_id}/route",
    responses=problem_responses(401, 403, 404, 422),
    summary="The courier's next stops with planned times",
)
async def get_route(courier_id: CourierIdDep, runtime: RuntimeDep) -> RoutePublic:
    route = await runtime.run(lambda: runtime.dispatcher.route(courier_id))
    return RoutePublic.of(route)


@router.get(
    "/{courier_id}/offers",
    responses=problem_responses(401, 403, 404, 422),
    summary="The offers waiting for this courier's answer",
    description=(
        "In a city that does not auto-accept, each assignment is first an offer: accept or "
        "decline it before `expires_at`, or it is withdrawn and offered to someone else."
    ),
)
async def list_offers(courier_id: CourierIdDep, runtime: RuntimeDep) -> list[OfferPublic]:
    def read() -> list[OfferPublic]:
        d = runtime.dispatcher
        route = d.route(courier_id)
        pending: dict[str, list[Order]] = {}
        for oid in route.order_ids:
            order = d.order(oid)
            if order.offer_pending and order.offer_id is not None:
                pending.setdefault(order.offer_id, []).append(order)
        return [_offer(courier_id, oid, "pending", orders, route) for oid, orders in pending.items()]

    return await runtime.run(read)


@router.post(
    "/{courier_id}/offers/{offer_id}/accept",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Accept an offer (accepting twice is harmless; 409 once it expired)",
)
async def accept_offer(courier_id: CourierIdDep, offer_id: _OfferPath, runtime: RuntimeDep) -> OfferPublic:
    def act() -> OfferPublic:
        d = runtime.dispatcher
        orders = d.accept_offer(courier_id, offer_id, runtime.now())
        return _offer(courier_id, offer_id, "accepted", orders, d.route(courier_id))

    return await runtime.run(act)


@router.post(
    "/{courier_id}/offers/{offer_id}/decline",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="Decline an offer: its orders go to another courier, not back to this one for a while",
)
async def decline_offer(courier_id: CourierIdDep, offer_id: _OfferPath, runtime: RuntimeDep) -> OfferPublic:
    def act() -> OfferPublic:
        d = runtime.dispatcher
        orders = d.decline_offer(courier_id, offer_id, runtime.now())
        return _offer(courier_id, offer_id, "declined", orders, d.route(courier_id))

    return await runtime.run(act)


def _offer(
    courier_id: str,
    offer_id: str,
    status: Literal["pending", "accepted", "declined"],
    orders: list[Order],
    route: Route,
) -> OfferPublic:
    expires = [o.offer_expires_at for o in orders if o.offer_expires_at is not None]
    return OfferPublic(
        offer_id=offer_id,
        courier_id=courier_id,
        status=status,
        order_ids=[o.id for o in orders],
        expires_at=min(expires) if status == "pending" and expires else None,
        route=RoutePublic.of(route),
    )
