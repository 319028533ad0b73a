"""Merchants: onboarding, settings, serviceability, and the restaurant's order board."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import AdminDep, MerchantEditorIdDep, MerchantIdDep, RuntimeDep
from api.problems import problem_responses
from api.schemas.common import Latitude, Longitude
from api.schemas.merchants import (
    BoardOrder,
    MerchantCreate,
    MerchantOrders,
    MerchantPublic,
    MerchantUpdate,
    Serviceability,
)
from api.views import external_id_of
from dispatch.engine import BoardRow, Quote
from dispatch.errors import NoCourierCapacity, OutsideDeliveryArea, WindowInfeasible
from dispatch.models import Location, Merchant, OrderStatus, Route, delivery_status

router = APIRouter(prefix="/v1/merchants", tags=["merchants"])


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    summary="Register a merchant (admin)",
)
async def create_merchant(
    body: MerchantCreate, _: AdminDep, runtime: RuntimeDep, response: Response
) -> MerchantPublic:
    merchant = body.to_domain()
    await runtime.run(lambda: runtime.dispatcher.add_merchant(merchant, runtime.now()))
    response.headers["Location"] = f"/v1/merchants/{merchant.id}"
    return MerchantPublic.of(merchant)


@router.get(
    "/{merchant_id}", responses=problem_responses(401, 403, 404, 422), summary="A merchant's settings"
)
async def get_merchant(merchant_id: MerchantIdDep, runtime: RuntimeDep) -> MerchantPublic:
    merchant = await runtime.run(lambda: runtime.dispatcher.merchant(merchant_id))
    return MerchantPublic.of(merchant)


@router.patch(
    "/{merchant_id}",
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
    summary="Change a merchant's location, area, preparation time or promise",
)
async def update_merchant(
    merchant_id: MerchantEditorIdDep, body: MerchantUpdate, runtime: RuntimeDep
) -> MerchantPublic:
    def update() -> Merchant:
        d = runtime.dispatcher
        return d.update_merchant(body.apply_to(d.merchant(merchant_id)), runtime.now())

    return MerchantPublic.of(await runtime.run(update))


@router.get(
    "/{merchant_id}/serviceability",
    responses=problem_responses(401, 403, 404, 422),
    summary="Whether an ASAP order to this point would be accepted now, and why not",
)
async def serviceability(
    merchant_id: MerchantIdDep,
    lat: Annotated[Latitude, Query()],
    lng: Annotated[Longitude, Query()],
    runtime: RuntimeDep,
) -> Serviceability:
    def read() -> tuple[Merchant, int, Quote]:
        now = runtime.now()
        merchant = runtime.dispatcher.merchant(merchant_id)
        return merchant, now, runtime.dispatcher.quote(merchant_id, Location(lat, lng), now)

    try:
        merchant, now, quote = await runtime.run(read)
    except (OutsideDeliveryArea, WindowInfeasible, NoCourierCapacity) as exc:
        # each refusal fills the numbers it has: distance and radius, or lateness and deadline
        # (no lateness when no courier is in reach at all)
        return Serviceability(
            merchant_id=merchant_id,
            serviceable=False,
            reason=exc.code,
            detail=exc.message,
            distance_m=exc.details.get("distance_m"),
            radius_m=exc.details.get("radius_m"),
            late_s=exc.details.get("late_s"),
            deadline_at=exc.details.get("window_end"),
        )
    radius_m = merchant.area.radius_m
    if quote.offered_instead:
        # a quote would offer a scheduled window (offer_schedule_when_full); an ASAP order is
        # refused: what NoCourierCapacity says, with the earliest drop-off against the promise
        deadline = now + (merchant.promise_s or runtime.dispatcher.config.promise_s)
        return Serviceability(
            merchant_id=merchant_id,
            serviceable=False,
            reason=NoCourierCapacity.code,
            detail="no courier can deliver within the promise; a quote offers the earliest feasible window",
            distance_m=round(quote.distance_m, 1),
            radius_m=radius_m,
            late_s=quote.dropoff_eta - deadline,
            dropoff_eta_at=quote.dropoff_eta,
            deadline_at=deadline,
        )
    return Serviceability(
        merchant_id=merchant_id,
        serviceable=True,
        reason=None,
        detail=None,
        distance_m=round(quote.distance_m, 1),
        radius_m=radius_m,
        dropoff_eta_at=quote.dropoff_eta,
        deadline_at=quote.window.end,
    )


@router.get(
    "/{merchant_id}/orders",
    responses=problem_responses(401, 403, 404, 422),
    summary="The restaurant's board: its orders with status and when the courier arrives",
)
async def merchant_orders(
    merchant_id: MerchantIdDep,
    runtime: RuntimeDep,
    include_closed: Annotated[bool, Query(description="also delivered and cancelled orders")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> MerchantOrders:
    now = runtime.now()

    def read() -> tuple[list[BoardRow], dict[str, Route]]:
        d = runtime.dispatcher
        rows = d.merchant_board(merchant_id, now, include_closed=include_closed, limit=limit)
        held = sorted({o.courier_id for o, _ in rows if o.courier_id is not None and o.status.is_open})
        return rows, d.store.routes(held)

    rows, routes = await runtime.run(read)
    board = [
        BoardOrder(
            id=order.id,
            external_id=external_id_of(order),
            status=delivery_status(order, routes.get(order.courier_id or "")),
            courier_id=order.courier_id if order.status is not OrderStatus.CANCELLED else None,
            courier_arrival_at=eta.courier_arrival_at if eta else None,
            pickup_at=eta.pickup_at if eta else order.picked_up_at,
            ready_at=order.ready_at,
            deadline_at=order.deadline,
            estimated=eta.estimated if eta else False,
        )
        for order, eta in rows
    ]
    return MerchantOrders(merchant_id=merchant_id, now=now, orders=board)
