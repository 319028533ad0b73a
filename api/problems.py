"""Errors as RFC 9457 ``application/problem+json``: the one place HTTP statuses are chosen.

Every error response has a stable ``type`` (the problem base plus a code: the engine's
:attr:`~dispatch.errors.DispatchError.code`, or one of the API's own below), a ``title``, the
``status``, a human ``detail`` and, where a field is to blame, ``errors`` with a JSON pointer
(body), ``parameter`` (query or path) or ``header``. The numbers of a refusal
(``distance_m``, ``radius_m``, ``late_s`` ...) are extension members next to them.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from dispatch.errors import Conflict, DispatchError, NotFound, StoreUnavailable, TooManyPinAttempts

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "ApiError",
    "FieldError",
    "Problem",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
    "status_of",
]

log = logging.getLogger("api")

PROBLEM_MEDIA_TYPE = "application/problem+json"

#: HTTP errors the API raises itself, by code: (status, title).
API_PROBLEMS: dict[str, tuple[int, str]] = {
    "validation-error": (422, "The request does not match the schema"),
    "malformed-json": (400, "The request body is not valid JSON"),
    "unsupported-media-type": (415, "The request body must be application/json"),
    "payload-too-large": (413, "The request body is too large"),
    "unauthorized": (401, "A valid API key is required"),
    "forbidden": (403, "This key may not do that"),
    "not-found": (404, "Not found"),
    "method-not-allowed": (405, "Method not allowed"),
    "unknown-quote": (404, "No such quote"),
    "quote-expired": (409, "The quote has expired"),
    "quote-used": (409, "The quote has already placed an order"),
    "idempotency-key-in-use": (409, "A request with this Idempotency-Key is still being processed"),
    "idempotency-key-reused": (422, "This Idempotency-Key was used with another request"),
    "too-many-idempotency-records": (429, "This key holds the most idempotency records it may"),
    "too-many-headers": (431, "The request has too many headers"),
    "too-many-streams": (429, "This key holds the most event streams it may open at once"),
    "invalid-webhook-url": (422, "The URL may not receive webhooks"),
    "unknown-webhook": (404, "No such webhook endpoint"),
    "unknown-tracking-token": (404, "No such tracking page"),
    "internal-error": (500, "Internal error"),
}

_TITLES: dict[str, str] = {
    "outside-delivery-area": "The drop-off is outside the merchant's delivery area",
    "window-infeasible": "The promised window cannot be met",
    "invalid-window": "The delivery window is not acceptable",
    "invalid-location": "The location is not a valid point",
    "invalid-input": "A value is not acceptable",
    "unknown-merchant": "No such merchant",
    "unknown-courier": "No such courier",
    "unknown-order": "No such order",
    "unknown-offer": "No such offer for this courier",
    "wrong-pin": "The delivery PIN is wrong",
    "too-many-pin-attempts": "Too many wrong delivery PINs",
    "duplicate-id": "The id already exists",
    "illegal-transition": "The current status does not allow this",
    "courier-off-shift": "The courier is off shift",
    "stale-write": "The record changed meanwhile; retry",
    "lease-held": "Another process runs this city's dispatcher",
    "lease-lost": "This process lost the dispatcher lease; the decision was dropped",
    "store-unavailable": "The shared state is unavailable; retry shortly",
    "conflict": "The current state does not allow this",
}

#: Extension members a problem may never carry (they are RFC 9457's own).
_RESERVED = frozenset({"type", "title", "status", "detail", "instance", "errors", "code"})


class FieldError(BaseModel):
    """One field to blame: exactly one of ``pointer`` (body), ``parameter`` or ``header`` is set."""

    model_config = ConfigDict(extra="forbid")

    detail: str
    pointer: str | None = Field(default=None, description="JSON pointer into the body, e.g. #/dropoff/lat")
    parameter: str | None = Field(default=None, description="query or path parameter name")
    header: str | None = None


class Problem(BaseModel):
    """RFC 9457 problem details; refusal numbers ride along as extension members."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="stable URI reference of the problem kind: <problem base><code>")
    title: str
    status: int
    detail: str
    code: str = Field(description="the last segment of type, for clients that switch on it")
    instance: str | None = None
    errors: list[FieldError] | None = None


class ApiError(Exception):
    """An HTTP error the API layer raises itself (auth, quotes, idempotency); ``code`` is in API_PROBLEMS."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[FieldError] = (),
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.status = API_PROBLEMS[code][0]
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = list(errors)
        self.extensions = extensions


def status_of(exc: DispatchError) -> int:
    """HTTP status of an engine error: unknown ids 404, state conflicts 409, bad input and refusals 422,
    the shared state out of reach 503."""
    if isinstance(exc, StoreUnavailable):
        return 503
    if isinstance(exc, TooManyPinAttempts):
        return 429
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    return 422  # InvalidInput, Refused


def _json_safe(value: Any) -> Any:
    """Numbers that JSON cannot carry (NaN, infinities) become strings: errors never fail to render."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return str(value)


def problem_response(
    request: Request | None,
    code: str,
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
    base: str = "/problems/",
) -> JSONResponse:
    if request is not None:
        base = getattr(request.app.state, "problem_base", base)
    body: dict[str, Any] = {
        "type": f"{base}{code}",
        "title": title or API_PROBLEMS.get(code, (status, _TITLES.get(code, "Error")))[1],
        "status": status,
        "detail": detail,
        "code": code,
    }
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = [e.model_dump(exclude_none=True) for e in errors]
    for key, value in (extensions or {}).items():
        if key not in _RESERVED and value is not None:
            body[key] = _json_safe(value)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def dispatch_problem(request: Request | None, exc: DispatchError) -> JSONResponse:
    """The problem response of an engine error, with its ``details`` numbers as extension members."""
    details = dict(exc.details)
    field = details.pop("field", None)
    errors = [FieldError(detail=exc.message, pointer=f"#/{field}")] if isinstance(field, str) else []
    headers = (
        {"Retry-After": str(exc.retry_after_s)}
        if isinstance(exc, (StoreUnavailable, TooManyPinAttempts))
        else None
    )
    return problem_response(
        request,
        exc.code,
        status_of(exc),
        exc.message,
        title=_TITLES.get(exc.code),
        errors=errors,
        headers=headers,
        extensions=details,
    )


def api_problem(request: Request | None, exc: ApiError) -> JSONResponse:
    return problem_response(
        request,
        exc.code,
        exc.status,
        exc.detail,
        errors=exc.errors,
        headers=exc.headers,
        extensions=exc.extensions,
    )


def _field_error(err: Mapping[str, Any]) -> FieldError:
    loc = [str(p) for p in err.get("loc", ())]
    # A union reports each branch it tried; the branch names (model names, tags) are no field.
    msg = str(err.get("msg", "invalid value"))
    where, path = (loc[0], loc[1:]) if loc else ("body", [])
    if where == "body":
        return FieldError(
            detail=msg, pointer="#/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in path)
        )
    if where == "header":
        return FieldError(detail=msg, header=path[0] if path else "")
    if where == "path" and path[:1] == ["order_id"] and ":" not in str(err.get("input", ":")):
        # the client's own id alone: say what an order id is, and where to look one up by it
        msg = (
            "an order id is <merchant_id>:<external_id> (e.g. m-1:A-1001), not the external id "
            "alone; or look it up with GET /v1/orders?merchant_id=...&external_id=..."
        )
    return FieldError(detail=msg, parameter=path[0] if path else where)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errs = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errs):
        return problem_response(request, "malformed-json", 400, "The request body is not valid JSON.")
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    is_json = media_type == "application/json" or media_type.endswith("+json")
    if not is_json and any(tuple(e.get("loc", ()))[:1] == ("body",) for e in errs):
        # The one media-type rule of every JSON body. FastAPI hands a non-JSON body over as bytes
        # (or as nothing), so each body field or union branch fails; say what is really wrong.
        detail = f"send the body as JSON with Content-Type: application/json (got {media_type or 'none'!r})"
        return problem_response(request, "unsupported-media-type", 415, detail)
    # The raw inputs are never echoed back: they may be huge, secret, or NaN.
    fields = [_field_error(e) for e in errs[:20]]
    first = fields[0] if fields else None
    where = (first.pointer or first.parameter or first.header or "") if first else ""
    detail = f"{len(errs)} invalid field(s); first: {where}: {first.detail}" if first else "invalid request"
    return problem_response(request, "validation-error", 422, detail, errors=fields)


async def _dispatch_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DispatchError)
    return dispatch_problem(request, exc)


async def _api_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return api_problem(request, exc)


def _allowed_methods(request: Request) -> list[str]:
    """Every method any route of this path accepts (Starlette names only the first route's)."""
    table: list[tuple[re.Pattern[str], frozenset[str]]] = getattr(request.app.state, "route_methods", [])
    path = request.url.path
    methods: set[str] = set()
    for pattern, route_methods in table:
        if pattern.match(path):
            methods |= route_methods
    methods.discard("HEAD")
    return sorted(methods)


async def _http_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
        detail = f"{request.method} is not allowed on {request.url.path}; allowed: {headers['Allow']}"
        return problem_response(request, "method-not-allowed", 405, detail, headers=headers)
    if exc.status_code == 404:
        return problem_response(request, "not-found", 404, f"nothing at {request.url.path}", headers=headers)
    if exc.status_code == 413:
        return problem_response(request, "payload-too-large", 413, str(exc.detail), headers=headers)
    code = {400: "malformed-json", 401: "unauthorized", 403: "forbidden", 415: "unsupported-media-type"}.get(
        exc.status_code, "http-error"
    )
    return problem_response(request, code, exc.status_code, str(exc.detail), headers=headers)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(
        request, "internal-error", 500, "An unexpected error occurred; it has been logged."
    )


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(DispatchError, _dispatch_handler)
    app.add_exception_handler(ApiError, _api_handler)
    app.add_exception_handler(StarletteHTTPException, _http_handler)
    app.add_exception_handler(Exception, _unexpected_handler)


_DESCRIPTIONS = {
    400: "Malformed JSON",
    401: "Missing or unknown API key",
    403: "The key's role may not do this",
    404: "Unknown id (or another tenant's)",
    409: "The current state does not allow it",
    413: "Request body too large",
    415: "Request body is not JSON",
    422: "Invalid input or refused, with the reason in numbers",
    429: "Too many at once for this key (or too many wrong PINs); retry after Retry-After seconds",
    503: "The shared state (Redis) is unreachable; retry after Retry-After seconds",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, all problem+json.

    503 is always among them: with shared state, any call may find Redis out of reach.
    """
    return {
        status: {
            "description": _DESCRIPTIONS.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in (*statuses, 503)
    }
