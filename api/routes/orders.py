"""Orders: create (idempotent, from a quote or direct), read with ETAs, cancel before pickup.

An order's id is ``<merchant_id>:<external_id>``; the external id is the client's own and is
unique per merchant (a second order with it is 409 ``duplicate-id``). ``Idempotency-Key`` is
required: a retry with the same key and body gets the first response again (status, body,
``Location``) with ``Idempotent-Replayed: true``; the same key with another body is 422
``idempotency-key-reused``; a retry while the first is still running is 409
``idempotency-key-in-use`` with ``Retry-After``. Keys are scoped to the API key and kept 24 h.

Only a request that placed an order is remembered (Stripe's rule): a refusal (an unknown
merchant, a drop-off outside the area, a duplicate external id ...) wrote nothing, so its key is
given back and a retry runs the request again, and a 503 gives the key back as soon as the
shared state answers again. An API key holds at most ``idempotency_max_records`` records at
once (429 ``too-many-idempotency-records`` past that, with ``Retry-After``).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import OrderingDep, ReaderDep, RuntimeDep, can_see_order, not_found_merchant
from api.idempotency import Outcome, RecordsExhausted, StoredResponse, fingerprint
from api.problems import ApiError, api_problem, dispatch_problem, problem_responses
from api.quote_book import IssuedQuote
from api.runtime import Runtime
from api.schemas.common import ID_PATTERN, ORDER_ID_PATTERN
from api.schemas.orders import CancelRequest, OrderCreate, OrderCreateFromQuote, OrderPublic
from api.settings import Principal, Role
from api.views import order_id_for, order_public
from dispatch.errors import DispatchError, StoreUnavailable, UnknownOrder
from dispatch.models import CancelledBy, Location, Order, Window

router = APIRouter(prefix="/v1/orders", tags=["orders"])

_OrderPath = Annotated[str, Path(pattern=ORDER_ID_PATTERN, description="<merchant_id>:<external_id>")]
_IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="unique per intended order, e.g. a UUID; retries reuse it",
    ),
]


def _visible_order(runtime: Runtime, principal: Principal, order_id: str) -> Order:
    """The order, or the same 404 as for a missing one when it belongs to another tenant."""
    order = runtime.dispatcher.order(order_id)
    if not can_see_order(principal, order):
        raise UnknownOrder(f"no order {order_id!r}", id=order_id)
    return order


async def _place(body: OrderCreate, principal: Principal, runtime: Runtime) -> JSONResponse:
    public = await runtime.run(lambda: _place_now(body, principal, runtime))
    return JSONResponse(
        public.model_dump(mode="json"), status_code=201, headers={"Location": f"/v1/orders/{public.id}"}
    )


def _place_now(body: OrderCreate, principal: Principal, runtime: Runtime) -> OrderPublic:
    """The engine calls of an order placement, made as one block by :meth:`Runtime.run`."""
    now = runtime.now()
    window: Window | None
    issued: IssuedQuote | None = None
    if isinstance(body, OrderCreateFromQuote):
        issued = runtime.quotes.get(body.quote_id, principal.key_id)
        if issued is None:
            raise ApiError("unknown-quote", f"no quote {body.quote_id!r}", id=body.quote_id)
        quote = issued.quote
        if now > quote.valid_until:
            raise ApiError(
                "quote-expired",
                f"quote {body.quote_id!r} expired {now - quote.valid_until} s ago; ask for a new one",
                expired_at=quote.valid_until,
                now=now,
            )
        merchant_id, dropoff = quote.merchant_id, quote.dropoff
        window = quote.window if quote.scheduled else None
        ready_at = issued.requested_ready_at
    else:
        merchant_id, dropoff = body.merchant_id, Location(body.dropoff.lat, body.dropoff.lng)
        window = body.dropoff_window.to_window() if body.dropoff_window is not None else None
        ready_at = body.ready_at
    if not principal.serves_merchant(merchant_id):
        raise not_found_merchant(merchant_id)
    order_id = order_id_for(merchant_id, body.external_id)
    d = runtime.dispatcher
    # a PIN when the merchant asks for one and the food is handed over in person
    pin = (
        f"{secrets.randbelow(10_000):04d}"
        if d.merchant(merchant_id).delivery_pin and not body.contactless
        else None
    )
    details = body.details(pin)
    tracking_url = runtime.tracking_url(order_id)  # before the write: it may need the shared secret
    if issued is None:
        order = d.place_order(
            order_id, merchant_id, dropoff, now, window=window, ready_at=ready_at, details=details
        )
        return order_public(d, order, now, tracking_url, with_pin=True)
    used_by = runtime.quotes.claim(issued, order_id, now)
    if used_by is not None:
        raise ApiError(
            "quote-used",
            f"quote {issued.id!r} already placed order {used_by!r}; a quote places one order",
            order_id=used_by,
        )
    try:
        order = d.place_order(
            order_id, merchant_id, dropoff, now, window=window, ready_at=ready_at, details=details
        )
    except BaseException:
        runtime.quotes.unclaim(issued, order_id)  # refused: the quote is still unused
        raise
    return order_public(d, order, now, tracking_url, with_pin=True)


@router.post(
    "",
    status_code=201,
    response_model=OrderPublic,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    summary="Place an order, from a quote or direct (idempotent)",
)
async def create_order(
    body: OrderCreate,
    principal: OrderingDep,
    runtime: RuntimeDep,
    request: Request,
    idempotency_key: _IdempotencyKey,
) -> Response:
    store, scope = runtime.idempotency, principal.key_id
    try:
        begun = await store.begin(
            scope,
            idempotency_key,
            fingerprint("POST", "/v1/orders", body.model_dump(mode="json")),
            runtime.now(),
        )
    except RecordsExhausted as exc:
        raise ApiError(
            "too-many-idempotency-records",
            f"{exc}; retry in {exc.retry_after_s} s, when the oldest expires",
            headers={"Retry-After": str(exc.retry_after_s)},
            max_records=exc.max_records,
        ) from None
    if begun.outcome is Outcome.REPLAY:
        assert begun.response is not None
        stored = begun.response
        return Response(stored.body, stored.status, headers={**stored.headers, "Idempotent-Replayed": "true"})
    if begun.outcome is Outcome.MISMATCH:
        raise ApiError(
            "idempotency-key-reused",
            "this Idempotency-Key was used with a different request; use a new key for a new order",
        )
    if begun.outcome is Outcome.IN_FLIGHT:
        raise ApiError(
            "idempotency-key-in-use",
            "a request with this Idempotency-Key is in progress",
            headers={"Retry-After": "1"},
        )
    try:
        try:
            response = await _place(body, principal, runtime)
        except StoreUnavailable:
            raise  # not an answer to keep: the key is given back and a retry runs the request
        except DispatchError as exc:
            response = dispatch_problem(request, exc)
        except ApiError as exc:
            response = api_problem(request, exc)
    except StoreUnavailable:
        # The shared state is out of reach, so giving the key back may hang too: it is given
        # back in the background as soon as the state answers, and the 503 goes out now.
        await runtime.release_claim(scope, idempotency_key, background=True)
        raise
    except BaseException:
        await store.abandon(scope, idempotency_key)
        raise
    if response.status_code >= 400:
        # refused, nothing written: nothing to remember, and a retry runs the request again
        await runtime.release_claim(scope, idempotency_key)
        return response
    keep = {k: v for k, v in response.headers.items() if k.lower() in ("location", "content-type")}
    await store.complete(
        scope, idempotency_key, StoredResponse(response.status_code, bytes(response.body), keep)
    )
    return response


@router.get(
    "",
    responses=problem_responses(401, 403, 404, 422),
    summary="Look an order up by its merchant and the client's own (external) id",
)
async def find_order(
    merchant_id: Annotated[str, Query(pattern=ID_PATTERN, description="the merchant")],
    external_id: Annotated[str, Query(pattern=ID_PATTERN, description="the client's order id")],
    principal: ReaderDep,
    runtime: RuntimeDep,
) -> OrderPublic:
    order_id = order_id_for(merchant_id, external_id)

    def read() -> OrderPublic:
        order = _visible_order(runtime, principal, order_id)
        return order_public(runtime.dispatcher, order, runtime.now(), runtime.tracking_url(order.id))

    return await runtime.run(read)


@router.get(
    "/{order_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="An order: status, ETAs, and the courier's position once assigned",
)
async def get_order(order_id: _OrderPath, principal: ReaderDep, runtime: RuntimeDep) -> OrderPublic:
    def read() -> OrderPublic:
        order = _visible_order(runtime, principal, order_id)
        return order_public(runtime.dispatcher, order, runtime.now(), runtime.tracking_url(order.id))

    return await runtime.run(read)


@router.post(
    "/{order_id}/cancel",
    responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    summary="Cancel an order before it is picked up (409 after), with a reason code",
    description=(
        "The body is optional: `reason` (a code, `unspecified` by default) and, for an admin key, "
        "`cancelled_by`. Both are stored on the order and carried by the `order.cancelled` event."
    ),
)
async def cancel_order(
    order_id: _OrderPath,
    principal: OrderingDep,
    runtime: RuntimeDep,
    body: CancelRequest | None = None,
) -> OrderPublic:
    request = body or CancelRequest()
    by = _canceller(principal, request.cancelled_by)

    def cancel() -> OrderPublic:
        _visible_order(runtime, principal, order_id)
        now = runtime.now()
        cancelled = runtime.dispatcher.cancel_order(order_id, now, reason=request.reason, by=by)
        return order_public(runtime.dispatcher, cancelled, now, runtime.tracking_url(cancelled.id))

    return await runtime.run(cancel)


def _canceller(principal: Principal, said: CancelledBy | None) -> CancelledBy:
    """Who cancels: an admin (an operator) may say on whose behalf; other keys are what they are."""
    own = {Role.MERCHANT: CancelledBy.MERCHANT, Role.APP: CancelledBy.CUSTOMER}.get(
        principal.role, CancelledBy.OPERATOR
    )
    if said is None or said is own:
        return own
    if principal.role is not Role.ADMIN:
        raise ApiError(
            "forbidden",
            f"a {principal.role.value} key cancels as {own.value}, not {said.value}",
        )
    return said
