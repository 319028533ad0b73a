"""What the OpenAPI document tells an integrator beyond the code's shapes: a description of each
operation and an example of each schema, problem+json included.

Routes and schemas that carry their own (``description=``, ``json_schema_extra`` examples) keep
them; this module fills in the rest, in one place, when the document is built. A test checks that
every operation has a description and that every schema has an example that validates against it,
so an operation or schema added without them fails it.
"""

from __future__ import annotations

from typing import Any

from api.schemas import tracking, webhooks

__all__ = ["DESCRIPTIONS", "EXAMPLES", "PROBLEM_EXAMPLES", "document"]

T = 1_750_000_000
_POINT = {"lat": 52.53, "lng": 13.415}
_M1 = {"lat": 52.52, "lng": 13.405}
_WINDOW = {"start_at": T + 60, "end_at": T + 1860}
_STOP_PICKUP = {
    "kind": "pickup",
    "order_ids": ["m-1:A-1001"],
    "merchant_id": "m-1",
    "location": _M1,
    "arrive_at": T + 540,
    "service_at": T + 600,
    "depart_at": T + 630,
}
_STOP_DROPOFF = {
    "kind": "dropoff",
    "order_ids": ["m-1:A-1001"],
    "merchant_id": None,
    "location": _POINT,
    "arrive_at": T + 1020,
    "service_at": T + 1050,
    "depart_at": T + 1080,
}
_ROUTE = {
    "courier_id": "c-1",
    "planned_at": T + 300,
    "arrived_at": None,
    "stops": [_STOP_PICKUP, _STOP_DROPOFF],
}
_ETA = {"courier_arrival_at": T + 540, "pickup_at": T + 600, "dropoff_at": T + 1050, "estimated": False}
_EVENT = {
    "id": "berlin-1042",
    "seq": 1042,
    "at": T + 300,
    "kind": "order.assigned",
    "order_id": "m-1:A-1001",
    "courier_id": "c-1",
    "merchant_id": None,
    "data": {"pickup_at": T + 600, "dropoff_at": T + 1050},
}
_POLYGON = {
    "type": "Polygon",
    "coordinates": [[[13.39, 52.51], [13.43, 52.51], [13.43, 52.54], [13.39, 52.54], [13.39, 52.51]]],
}
_FIELD_ERROR = {"detail": "Input should be less than or equal to 90", "pointer": "#/dropoff/lat"}
_PROBLEM = {
    "type": "/problems/outside-delivery-area",
    "title": "The drop-off is outside the merchant's delivery area",
    "status": 422,
    "detail": "drop-off is 3200 m from merchant 'm-1', outside its 3000 m delivery radius",
    "code": "outside-delivery-area",
    "instance": "/v1/orders",
    "distance_m": 3200.0,
    "radius_m": 3000.0,
}

#: schema name -> one example of it (schemas that define their own keep theirs)
EXAMPLES: dict[str, Any] = {
    "Point": _M1,
    "PositionUpdate": {"lat": 52.5215, "lng": 13.4121},
    "TimeWindow": _WINDOW,
    "OrderStatus": "assigned",
    "CourierStatus": "busy",
    "StopKind": "pickup",
    "RadiusArea": {"radius_m": 3000},
    "GeoJsonPolygon": _POLYGON,
    "GeoJsonMultiPolygon": {"type": "MultiPolygon", "coordinates": [_POLYGON["coordinates"]]},
    "PolygonArea": {"polygon": _POLYGON},
    "MerchantCreate": {
        "id": "m-1",
        "location": _M1,
        "delivery_area": {"radius_m": 3000},
        "prep_minutes": 10,
        "promise_minutes": 30,
    },
    "MerchantUpdate": {"prep_minutes": 15},
    "MerchantPublic": {
        "id": "m-1",
        "location": _M1,
        "delivery_area": {"radius_m": 3000},
        "prep_minutes": 10,
        "promise_minutes": 30,
        "delivery_pin": False,
        "offer_schedule_when_full": None,
    },
    "Serviceability": {
        "merchant_id": "m-1",
        "serviceable": False,
        "reason": "outside-delivery-area",
        "detail": "drop-off is 3200 m from merchant 'm-1', outside its 3000 m delivery radius",
        "distance_m": 3200.0,
        "radius_m": 3000.0,
        "late_s": None,
        "dropoff_eta_at": None,
        "deadline_at": None,
    },
    "BoardOrder": {
        "id": "m-1:A-1001",
        "external_id": "A-1001",
        "status": "enroute_to_pickup",
        "courier_id": "c-1",
        "courier_arrival_at": T + 540,
        "pickup_at": T + 600,
        "ready_at": T + 600,
        "deadline_at": T + 1800,
        "estimated": False,
    },
    "MerchantOrders": {"merchant_id": "m-1", "now": T + 300, "orders": []},
    "QuoteCreate": {"merchant_id": "m-1", "dropoff": _POINT},
    "QuotePublic": {
        "id": "q_8c1d2e3f4a5b6c7d",
        "merchant_id": "m-1",
        "dropoff": _POINT,
        "distance_m": 1309.5,
        "scheduled": False,
        "ready_at": T + 600,
        "pickup_eta_at": T + 600,
        "dropoff_eta_at": T + 1050,
        "dropoff_window": {"start_at": T, "end_at": T + 1800},
        "deadline_at": T + 1800,
        "created_at": T,
        "expires_at": T + 300,
    },
    "OrderCreateDirect": {"external_id": "A-1001", "merchant_id": "m-1", "dropoff": _POINT},
    "OrderCreateFromQuote": {"external_id": "A-1001", "quote_id": "q_8c1d2e3f4a5b6c7d"},
    "OrderEta": _ETA,
    "CourierPosition": {"courier_id": "c-1", "lat": 52.5215, "lng": 13.4121, "seen_at": T + 290, "age_s": 10},
    "OrderPublic": {
        "id": "m-1:A-1001",
        "external_id": "A-1001",
        "merchant_id": "m-1",
        "status": "enroute_to_pickup",
        "dropoff": _POINT,
        "placed_at": T,
        "ready_at": T + 600,
        "scheduled": False,
        "dropoff_window": {"start_at": T, "end_at": T + 1800},
        "deadline_at": T + 1800,
        "courier_id": "c-1",
        "eta": _ETA,
        "courier_position": {
            "courier_id": "c-1",
            "lat": 52.5215,
            "lng": 13.4121,
            "seen_at": T + 290,
            "age_s": 10,
        },
        "courier_imminent": False,
        "tracking_url": "/track/bS0xOkEtMTAwMQ.9fQ2a1Xc0bLr7uVw3kPz8g",
    },
    "ShiftStart": {
        "location": {"lat": 52.521, "lng": 13.41},
        "duration_minutes": 240,
        "speed_mps": 4.5,
        "capacity": 3,
    },
    "CourierPublic": {
        "id": "c-1",
        "status": "busy",
        "location": {"lat": 52.5215, "lng": 13.4121},
        "seen_at": T + 290,
        "shift_end_at": T + 14_400,
        "speed_mps": 4.5,
        "capacity": 3,
    },
    "Arrived": {"type": "arrived"},
    "PickedUp": {"type": "picked_up", "order_id": "m-1:A-1001"},
    "Returned": {"type": "returned", "order_id": "m-1:A-1001"},
    "CancelRequest": {"reason": "customer_request", "cancelled_by": "customer"},
    "CancelledBy": "customer",
    "DeliveryStatus": "enroute_to_pickup",
    "ContactIn": {"name": "Ada", "phone": "+49 30 1234567", "instructions": "2nd floor, ring twice"},
    "ContactPublic": {"name": "Ada", "phone": "+49 30 1234567", "instructions": "2nd floor, ring twice"},
    "OfferPublic": {
        "offer_id": "of_3f9a2c",
        "courier_id": "c-1",
        "status": "pending",
        "order_ids": ["m-1:A-1001"],
        "expires_at": T + 330,
        "route": _ROUTE,
    },
    "Delivered": {"type": "delivered", "order_id": "m-1:A-1001"},
    "Rejected": {"type": "rejected", "order_id": "m-1:A-1001"},
    "StopPublic": _STOP_PICKUP,
    "RoutePublic": _ROUTE,
    "CourierEventResult": {
        "courier_id": "c-1",
        "event": "picked_up",
        "order_id": "m-1:A-1001",
        "route": _ROUTE,
    },
    "AssignmentPublic": {"courier_id": "c-1", "order_ids": ["m-1:A-1001", "m-1:A-1002"]},
    "RepositionPublic": {"courier_id": "c-2", "merchant_id": "m-1", "arrive_at": T + 420},
    "TickPublic": {
        "now": T + 300,
        "assignments": [{"courier_id": "c-1", "order_ids": ["m-1:A-1001"]}],
        "repositions": [],
        "open_orders": 0,
        "available_couriers": 1,
        "duration_ms": 4.2,
    },
    "EventPublic": _EVENT,
    "EventPage": {"events": [_EVENT], "next_after": 1042},
    "Stats": {
        "now": T + 300,
        "merchants": 2,
        "orders_by_status": {"placed": 1, "assigned": 3, "picked_up": 2, "delivered": 40, "cancelled": 1},
        "couriers_on_shift": {"idle": 2, "busy": 5},
        "events": 1042,
        "ticks": 30,
        "last_tick_at": T + 300,
    },
    "Health": {
        "status": "ok",
        "failing_ticks": 0,
        "city": "berlin",
        "background_tick": True,
        "last_tick_at": T + 300,
        "dispatcher": "leader",
    },
    "WebhookCreate": webhooks.CREATE_EXAMPLE,
    "WebhookPublic": webhooks.ENDPOINT_EXAMPLE,
    "WebhookCreated": {**webhooks.ENDPOINT_EXAMPLE, "secret": "whsec_q8Lx2vS0m4n1R7tYb6cZ9wPe3kHd5aJf"},
    "WebhookList": {"webhooks": [webhooks.ENDPOINT_EXAMPLE]},
    "DeliveryAttempt": webhooks.ATTEMPT_EXAMPLE,
    "DeliveryLog": {"webhook_id": "wh_3f9a1c0b7d2e4a61", "deliveries": [webhooks.ATTEMPT_EXAMPLE]},
    "TrackingPublic": tracking.EXAMPLE,
    "TrackedPoint": {"lat": 52.525, "lng": 13.41},
    "FieldError": _FIELD_ERROR,
    "Problem": _PROBLEM,
}

#: an example problem per error status, shown on each operation's error responses
PROBLEM_EXAMPLES: dict[int, dict[str, Any]] = {
    400: {
        "code": "malformed-json",
        "title": "The request body is not valid JSON",
        "detail": "The request body is not valid JSON.",
    },
    401: {
        "code": "unauthorized",
        "title": "A valid API key is required",
        "detail": "send Authorization: Bearer <key>",
    },
    403: {
        "code": "forbidden",
        "title": "This key may not do that",
        "detail": "a courier key may not do this",
    },
    404: {
        "code": "unknown-order",
        "title": "No such order",
        "detail": "no order 'm-1:A-1001'",
        "id": "m-1:A-1001",
    },
    409: {
        "code": "illegal-transition",
        "title": "The current status does not allow this",
        "detail": "order 'm-1:A-1001' is picked_up; it can no longer be cancelled",
    },
    413: {
        "code": "payload-too-large",
        "title": "The request body is too large",
        "detail": "the body is over 65536 bytes",
    },
    415: {
        "code": "unsupported-media-type",
        "title": "The request body must be application/json",
        "detail": "send the body as JSON with Content-Type: application/json (got 'text/plain')",
    },
    422: {
        "code": "validation-error",
        "title": "The request does not match the schema",
        "detail": "1 field is invalid",
        "errors": [_FIELD_ERROR],
    },
    429: {
        "code": "too-many-streams",
        "title": "This key holds the most event streams it may open at once",
        "detail": "this key holds 8 event streams open, the most it may; close one, or poll GET /v1/events",
    },
    503: {
        "code": "store-unavailable",
        "title": "The shared state is unavailable; retry shortly",
        "detail": "Redis did not answer within 2 s",
    },
}

#: "METHOD path" -> what the operation does, for operations that do not say it themselves
DESCRIPTIONS: dict[str, str] = {
    "POST /v1/couriers/{courier_id}/shift/start": (
        "Puts the courier on shift at `location` for `duration_minutes`, registering it the first time. "
        "From the next tick it can be given orders. A courier key may start only its own shift."
    ),
    "POST /v1/couriers/{courier_id}/shift/end": (
        "Takes the courier off shift. Orders it has not picked up go back to the pool for the next tick; "
        "orders on board stay its own until delivered."
    ),
    "PUT /v1/couriers/{courier_id}/position": (
        "The courier app's position ping, every few seconds while on shift: it moves the courier in the "
        "candidate index and in ETAs. Pings are telemetry: no event, no re-planning, last write wins."
    ),
    "POST /v1/couriers/{courier_id}/events": (
        "What the courier did at its next stop: `arrived`, `picked_up` or `delivered` an order, or "
        "`rejected` one (it goes back to the pool). Each is checked against the plan (409 when it does "
        "not follow it) and appends an event; the answer is the courier's plan after it."
    ),
    "GET /v1/couriers/{courier_id}": "The courier's status (idle, busy, off shift), last position and shift.",
    "GET /v1/couriers/{courier_id}/route": (
        "The courier's next stops in order, with planned arrival, hand-over and departure times."
    ),
    "POST /v1/orders": (
        "Places an order from a quote (`quote_id`: its promise and ETAs are kept) or directly "
        "(`merchant_id` and `dropoff`, optionally a `dropoff_window`). It is accepted only inside the "
        "merchant's delivery area and when its promise can be kept; a refusal says why, in numbers. "
        "Send an `Idempotency-Key`: a retry gets the first answer back instead of a second order. The "
        "order id is `<merchant_id>:<external_id>`; the answer carries the `tracking_url` to give the "
        "customer."
    ),
    "GET /v1/orders": (
        "Looks an order up by its merchant and the app's own external id (`merchant_id` and "
        "`external_id`), so an app that kept only its own reference finds the order id "
        "(`m-1:A-1001`). 404 when the key may not see such an order."
    ),
    "POST /v1/couriers/{courier_id}/offers/{offer_id}/accept": (
        "The courier takes the offered orders: they stay in its plan and may be picked up. Accepting "
        "an offer already accepted changes nothing; an offer that expired or was declined is 409."
    ),
    "POST /v1/couriers/{courier_id}/offers/{offer_id}/decline": (
        "The courier turns the offer down: its orders leave the courier's plan and wait for the next "
        "tick, which does not offer them to this courier again for a while (`decline_cooloff_s`)."
    ),
    "GET /v1/orders/{order_id}": (
        "The order's status, ETAs (courier at the restaurant, pickup, drop-off) and, while a courier "
        "carries it, the courier's last position. Apps see their merchants' orders, merchants their own."
    ),
    "POST /v1/orders/{order_id}/ready": (
        "The merchant's own key says the order's food is ready now: the order's ready time becomes "
        "exact, and the engine learns the merchant's preparation time from it. The answer is the order."
    ),
    "POST /v1/orders/{order_id}/cancel": (
        "Cancels an order that has not been picked up; its courier's plan is re-made at once. After "
        "pickup: 409."
    ),
    "POST /v1/merchants": (
        "Registers a merchant: location, delivery area (a radius or a GeoJSON polygon), preparation "
        "time, and optionally its own promise."
    ),
    "GET /v1/merchants/{merchant_id}": (
        "The merchant's location, delivery area, preparation time and promise."
    ),
    "PATCH /v1/merchants/{merchant_id}": (
        "Changes the fields sent and keeps the others; orders already placed keep their promises."
    ),
    "GET /v1/merchants/{merchant_id}/serviceability": (
        "Whether an ASAP order to this point would be accepted now, without placing it; when not, the "
        "reason in numbers (distance and radius, or minutes late)."
    ),
    "GET /v1/merchants/{merchant_id}/orders": (
        "The restaurant's board: its open orders, each with its status, courier, when the courier "
        "reaches the restaurant and when the food is picked up."
    ),
    "GET /healthz": (
        "Answers while the service runs (no key): `degraded` while dispatch ticks fail, with how many in "
        "a row, and whether this process is the city's dispatcher (`leader`) or a `standby`."
    ),
    "GET /metrics": (
        "Prometheus text format: requests by route and status, latencies, tick durations, open orders, "
        "couriers on shift; the totals of every worker under `dispatch serve --workers N`."
    ),
    "GET /v1/stats": "City-wide counts: merchants, orders by status, couriers on shift, events, ticks.",
    "POST /v1/dispatch/tick": (
        "Runs one dispatch tick now instead of waiting for the background one: assignments with their "
        "planned stops, and repositioned idle couriers. Over Redis, only the lease holder ticks (409 "
        "`lease-held` elsewhere)."
    ),
    "GET /v1/events": (
        "Up to `limit` events after `after`, those of the key's own tenant only. Read on with "
        "`after=next_after`; de-duplicate on `id`. For a push instead, see the event stream and webhooks."
    ),
}


#: (operation, status, media type) -> an example of a body that has no schema of its own
RESPONSE_EXAMPLES: dict[tuple[str, str, str], Any] = {
    ("GET /metrics", "200", "text/plain"): (
        "# HELP dispatch_http_requests_total HTTP requests by route, method and status.\n"
        "# TYPE dispatch_http_requests_total counter\n"
        'dispatch_http_requests_total{method="POST",route="/v1/orders",status="201"} 1042.0\n'
    ),
    ("GET /v1/couriers/{courier_id}/offers", "200", "application/json"): [EXAMPLES["OfferPublic"]],
    ("GET /v1/events/stream", "200", "text/event-stream"): (
        "id: 1042\nevent: order.assigned\n"
        'data: {"id": "berlin-1042", "seq": 1042, "kind": "order.assigned", ...}\n\n'
    ),
    ("GET /v1/tracking/{token}/stream", "200", "text/event-stream"): (
        'event: state\ndata: {"status": "picked_up", "dropoff_at": 1750001500, ...}\n\n'
    ),
}


def document(schema: dict[str, Any]) -> None:
    """Fill in the descriptions and examples the code does not give itself (in place)."""
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            key = f"{method.upper()} {path}"
            if not operation.get("description") and key in DESCRIPTIONS:
                operation["description"] = DESCRIPTIONS[key]
            for status, response in operation.get("responses", {}).items():
                for media, content in response.get("content", {}).items():
                    if media == "application/problem+json" and "example" not in content:
                        content["example"] = _problem_example(int(status), path)
                    elif (key, status, media) in RESPONSE_EXAMPLES:
                        content.setdefault("example", RESPONSE_EXAMPLES[(key, status, media)])
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        if "examples" not in component and "example" not in component and name in EXAMPLES:
            component["examples"] = [EXAMPLES[name]]


#: a 404 names what the path is about
_NOT_FOUND = (
    (
        "/v1/webhooks",
        "unknown-webhook",
        "No such webhook endpoint",
        "no webhook endpoint 'wh_3f9a1c0b7d2e4a61'",
    ),
    ("/v1/tracking", "unknown-tracking-token", "No such tracking page", "no order has this tracking token"),
    ("/v1/couriers", "unknown-courier", "No such courier", "no courier 'c-9'"),
    ("/v1/merchants", "unknown-merchant", "No such merchant", "no merchant 'm-9'"),
)


def _problem_example(status: int, path: str) -> dict[str, Any]:
    example = dict(PROBLEM_EXAMPLES.get(status, PROBLEM_EXAMPLES[422]))
    if status == 404:
        for prefix, code, title, detail in _NOT_FOUND:
            if path.startswith(prefix):
                example = {"code": code, "title": title, "detail": detail}
    code = example.pop("code")
    title = example.pop("title")
    return {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        **example,
        "code": code,
        "instance": path,
    }
