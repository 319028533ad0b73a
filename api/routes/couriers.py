"""Couriers: shifts, position pings (the hot path), events from the courier app, the route ahead."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.deps import CallerDep, CourierIdDep, RuntimeDep
from api.problems import problem_responses
from api.runtime import Runtime
from api.schemas.couriers import (
    Arrived,
    CourierEvent,
    CourierEventResult,
    CourierPublic,
    Delivered,
    PickedUp,
    PositionUpdate,
    RoutePublic,
    ShiftStart,
)
from api.settings import Role
from dispatch.errors import UnknownOrder
from dispatch.models import Location, Route

router = APIRouter(prefix="/v1/couriers", tags=["couriers"])


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
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    summary="What the courier did: arrived (at its next stop), picked_up, delivered, rejected",
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
            return d.delivered(courier_id, body.order_id, now)
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
