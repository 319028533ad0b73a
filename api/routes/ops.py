"""Operations: liveness, Prometheus metrics, and the analysts' aggregates."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import AnalystDep, RuntimeDep
from api.problems import problem_responses
from api.schemas.ops import Health, Stats
from dispatch.models import Courier, CourierStatus

router = APIRouter(tags=["ops"])

PROMETHEUS_MEDIA_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz", summary="Liveness: the service answers (no key needed); degraded while ticks fail")
async def healthz(runtime: RuntimeDep) -> Health:
    last = runtime.last_tick
    return Health(
        status="degraded" if runtime.failing_ticks else "ok",
        failing_ticks=runtime.failing_ticks,
        city=runtime.settings.city,
        background_tick=runtime.background is not None and not runtime.background.done(),
        last_tick_at=last.result.now if last else None,
        dispatcher=runtime.role,
    )


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text format 0.0.4",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **problem_responses(401, 403),
    },
    summary="Prometheus metrics: requests, latencies, tick duration, open orders (admin, analyst)",
)
async def metrics(_: AnalystDep, runtime: RuntimeDep) -> PlainTextResponse:
    text = runtime.metrics.render(await runtime.gauges())
    return PlainTextResponse(text, media_type=PROMETHEUS_MEDIA_TYPE)


@router.get(
    "/v1/stats", responses=problem_responses(401, 403), summary="City-wide aggregates (admin, analyst)"
)
async def stats(_: AnalystDep, runtime: RuntimeDep) -> Stats:
    def read() -> tuple[dict[str, int], list[Courier], int, int]:
        counts = runtime.dispatcher.counts()
        orders = {s.value: n for s, n in counts.orders.items()}
        return orders, list(counts.couriers_on_shift), counts.merchants, runtime.event_count()

    now = runtime.now()
    orders, couriers, merchants, events = await runtime.run(read)
    on_shift = {CourierStatus.IDLE.value: 0, CourierStatus.BUSY.value: 0}
    for c in couriers:
        on_shift[c.status.value] = on_shift.get(c.status.value, 0) + 1
    last = runtime.last_tick
    return Stats(
        now=now,
        merchants=merchants,
        orders_by_status=orders,
        couriers_on_shift=on_shift,
        events=events,
        ticks=runtime.ticks,
        last_tick_at=last.result.now if last else None,
    )
