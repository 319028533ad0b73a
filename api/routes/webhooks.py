"""Webhooks: per-tenant endpoints that receive the city's events as signed POSTs.

A tenant is the key's role and merchants (an app, a merchant; an admin's endpoints get every
event). An endpoint is visible and removable by keys of the same tenant, and by admins.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from api.deps import OrderingDep, RuntimeDep
from api.problems import ApiError, FieldError, problem_responses
from api.schemas.webhooks import (
    DeliveryAttempt,
    DeliveryLog,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookPublic,
)
from api.settings import Principal, Role
from api.webhooks.store import Endpoint
from api.webhooks.urls import UnsafeUrl, check_url
from dispatch.errors import InvalidInput
from dispatch.models import EventKind

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_WebhookId = Annotated[str, Path(pattern=r"^wh_[0-9a-f]{16}$", description="the id create returned")]


def _owns(principal: Principal, endpoint: Endpoint) -> bool:
    if principal.role is Role.ADMIN:
        return True
    return endpoint.role == principal.role.value and set(endpoint.tenants) == set(principal.tenants)


async def _endpoint(runtime: RuntimeDep, principal: Principal, webhook_id: str) -> Endpoint:
    endpoint = await runtime.webhook_call(runtime.webhooks.endpoint, webhook_id)
    if endpoint is None or not _owns(principal, endpoint):
        raise ApiError("unknown-webhook", f"no webhook endpoint {webhook_id!r} for this key", id=webhook_id)
    return endpoint


@router.post(
    "",
    status_code=201,
    responses=problem_responses(400, 401, 403, 413, 415, 422),
    summary="Register a webhook endpoint (app, merchant or admin key)",
    description=(
        "Each event of the key's own orders and merchants (every event for an admin) whose kind is in "
        "`event_types` is POSTed to `url` as JSON (the event as `GET /v1/events` shows it), signed: "
        '`Dispatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`. '
        "A non-2xx answer or a timeout is retried with exponential backoff and jitter (8 attempts over "
        "about 24 h by default); delivery is at least once and not in order, so de-duplicate on the "
        "event `id`. An endpoint failing for a day is disabled. The `secret` is in this answer only. "
        "The URL must be http(s) on a public address."
    ),
)
async def create_webhook(
    body: WebhookCreate, principal: OrderingDep, runtime: RuntimeDep, response: Response
) -> WebhookCreated:
    try:
        await check_url(body.url, allow_private=runtime.settings.webhook_allow_private)
    except UnsafeUrl as exc:
        raise ApiError(
            "invalid-webhook-url", f"url: {exc}", errors=[FieldError(detail=str(exc), pointer="#/url")]
        ) from None
    unknown = sorted(set(body.event_types) - {"*", *(k.value for k in EventKind)})
    if unknown:
        kinds = ", ".join(k.value for k in EventKind)
        # a rule beyond the schema (which only shapes a kind): the vocabulary grows with the engine
        raise InvalidInput(
            f"event_types: no event kind {', '.join(map(repr, unknown))}; the kinds are {kinds}, or *",
            field="event_types",
        )
    after_seq = await runtime.run(runtime.event_count)
    endpoint = Endpoint(
        id=f"wh_{secrets.token_hex(8)}",
        role=principal.role.value,
        tenants=tuple(sorted(principal.tenants)),
        url=body.url,
        event_types=tuple(dict.fromkeys(body.event_types)),
        secret=f"whsec_{secrets.token_urlsafe(24)}",
        description=body.description,
        created_at=runtime.now(),
        after_seq=after_seq,
    )
    await runtime.webhook_call(runtime.webhooks.add_endpoint, endpoint)
    response.headers["Location"] = f"/v1/webhooks/{endpoint.id}"
    return WebhookCreated(**WebhookPublic.of(endpoint).model_dump(), secret=endpoint.secret)


@router.get(
    "",
    responses=problem_responses(401, 403),
    summary="This tenant's webhook endpoints (every one for an admin)",
    description="Secrets are never shown again; a disabled endpoint says when and why.",
)
async def list_webhooks(principal: OrderingDep, runtime: RuntimeDep) -> WebhookList:
    endpoints = await runtime.webhook_call(runtime.webhooks.endpoints)
    return WebhookList(webhooks=[WebhookPublic.of(e) for e in endpoints if _owns(principal, e)])


@router.get(
    "/{webhook_id}",
    responses=problem_responses(401, 403, 404, 422),
    summary="One webhook endpoint",
    description="Whether it is disabled (and why), and since when its deliveries fail, if they do.",
)
async def get_webhook(webhook_id: _WebhookId, principal: OrderingDep, runtime: RuntimeDep) -> WebhookPublic:
    return WebhookPublic.of(await _endpoint(runtime, principal, webhook_id))


@router.delete(
    "/{webhook_id}",
    status_code=204,
    responses=problem_responses(401, 403, 404, 422),
    summary="Delete a webhook endpoint",
    description="Deliveries still pending for it are dropped; its delivery log goes with it.",
)
async def delete_webhook(webhook_id: _WebhookId, principal: OrderingDep, runtime: RuntimeDep) -> Response:
    await _endpoint(runtime, principal, webhook_id)
    await runtime.webhook_call(runtime.webhooks.delete_endpoint, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/enable",
    responses=problem_responses(401, 403, 404, 422),
    summary="Enable a disabled webhook endpoint again",
    description=(
        "After fixing the receiver: the endpoint receives the events written from now on (the ones "
        "written while it was disabled are not sent; read them with `GET /v1/events`), and its "
        "failure clock starts afresh. Enabling an endpoint that is not disabled changes nothing."
    ),
)
async def enable_webhook(
    webhook_id: _WebhookId, principal: OrderingDep, runtime: RuntimeDep
) -> WebhookPublic:
    endpoint = await _endpoint(runtime, principal, webhook_id)
    if endpoint.disabled_at is None:
        return WebhookPublic.of(endpoint)
    after_seq = await runtime.run(runtime.event_count)
    endpoint = replace(
        endpoint,
        disabled_at=None,
        disabled_reason=None,
        failing_since=None,
        after_seq=max(endpoint.after_seq, after_seq),
    )
    await runtime.webhook_call(runtime.webhooks.put_endpoint, endpoint)
    return WebhookPublic.of(endpoint)


@router.get(
    "/{webhook_id}/deliveries",
    responses=problem_responses(401, 403, 404, 422),
    summary="Each delivery attempt of an endpoint and its outcome, newest first",
    description=(
        "One entry per POST: the event, the attempt number, the receiver's status code or the error, "
        "how long it took, and the outcome (`delivered`, `retrying` with `next_attempt_at`, `gave-up`)."
    ),
)
async def list_deliveries(
    webhook_id: _WebhookId,
    principal: OrderingDep,
    runtime: RuntimeDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryLog:
    await _endpoint(runtime, principal, webhook_id)
    attempts = await runtime.webhook_call(runtime.webhooks.attempts, webhook_id, limit)
    return DeliveryLog(webhook_id=webhook_id, deliveries=[DeliveryAttempt.of(a) for a in attempts])
