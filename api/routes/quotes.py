"""Quotes: what an order would be promised, before it is placed."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import OrderingDep, RuntimeDep, not_found_merchant
from api.problems import problem_responses
from api.quote_book import IssuedQuote
from api.schemas.common import Point, TimeWindow
from api.schemas.quotes import QuoteCreate, QuotePublic

router = APIRouter(prefix="/v1/quotes", tags=["quotes"])


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
    summary="Quote a delivery: pickup and drop-off ETAs and the promise, valid for 5 minutes",
    description=(
        "A drop-off outside the merchant's area is refused with 422 `outside-delivery-area` and "
        "`distance_m`/`radius_m`; a window that cannot be met with 422 `window-infeasible` and `late_s`."
    ),
)
async def create_quote(body: QuoteCreate, principal: OrderingDep, runtime: RuntimeDep) -> QuotePublic:
    if not principal.serves_merchant(body.merchant_id):
        raise not_found_merchant(body.merchant_id)
    window = body.dropoff_window.to_window() if body.dropoff_window is not None else None
    now = runtime.now()

    def issue() -> IssuedQuote:
        quote = runtime.dispatcher.quote(
            body.merchant_id, body.dropoff.to_location(), now, window=window, ready_at=body.ready_at
        )
        return runtime.quotes.issue(principal.key_id, quote, now, requested_ready_at=body.ready_at)

    issued = await runtime.run(issue)
    quote = issued.quote
    return QuotePublic(
        id=issued.id,
        merchant_id=quote.merchant_id,
        dropoff=Point.of(quote.dropoff),
        distance_m=round(quote.distance_m, 1),
        scheduled=quote.scheduled,
        ready_at=quote.ready_at,
        pickup_eta_at=quote.pickup_eta,
        dropoff_eta_at=quote.dropoff_eta,
        dropoff_window=TimeWindow.of(quote.window),
        deadline_at=quote.window.end,
        created_at=now,
        expires_at=quote.valid_until,
        offered_instead=quote.offered_instead,
    )
