"""A merchant saying an order's food is ready: an exact observation for the learned
preparation times (see :mod:`dispatch.estimates`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import MerchantKeyDep, RuntimeDep, can_see_order
from api.problems import problem_responses
from api.schemas.common import ORDER_ID_PATTERN
from api.schemas.orders import OrderPublic
from api.views import order_public
from dispatch.errors import UnknownOrder

router = APIRouter(prefix="/v1/orders", tags=["orders"])

_OrderPath = Annotated[str, Path(pattern=ORDER_ID_PATTERN, description="<merchant_id>:<external_id>")]


@router.post(
    "/{order_id}/ready",
    responses=problem_responses(401, 403, 404, 409, 422),
    summary="The merchant says the food is ready (teaches the engine its preparation time)",
)
async def food_ready(order_id: _OrderPath, principal: MerchantKeyDep, runtime: RuntimeDep) -> OrderPublic:
    def ready() -> OrderPublic:
        order = runtime.dispatcher.order(order_id)
        if not can_see_order(principal, order):
            raise UnknownOrder(f"no order {order_id!r}", id=order_id)
        now = runtime.now()
        order = runtime.dispatcher.food_ready(order_id, now)
        return order_public(runtime.dispatcher, order, now, runtime.tracking_url(order.id))

    return await runtime.run(ready)
