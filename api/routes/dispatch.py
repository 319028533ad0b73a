"""Dispatch control: the tick runs in the background; an admin can trigger one now."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import AdminDep, RuntimeDep
from api.problems import problem_responses
from api.schemas.ops import AssignmentPublic, RepositionPublic, TickPublic

router = APIRouter(prefix="/v1/dispatch", tags=["dispatch"])


@router.post("/tick", responses=problem_responses(401, 403), summary="Run one dispatch tick now (admin)")
async def tick(_: AdminDep, runtime: RuntimeDep) -> TickPublic:
    record = await runtime.tick("admin")
    result = record.result
    return TickPublic(
        now=result.now,
        assignments=[
            AssignmentPublic(courier_id=a.courier_id, order_ids=list(a.order_ids)) for a in result.assignments
        ],
        repositions=[
            RepositionPublic(
                courier_id=r.courier_id,
                merchant_id=r.route.stops[0].merchant_id or "",
                arrive_at=r.route.stops[0].arrive_at,
            )
            for r in result.repositions
        ],
        open_orders=result.open_orders,
        available_couriers=result.available_couriers,
        duration_ms=round(record.duration_s * 1000, 3),
    )
