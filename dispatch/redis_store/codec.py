"""Records <-> JSON, as stored in Redis."""

from __future__ import annotations

import json
from typing import Any

from dispatch.models import (
    CancelledBy,
    Contact,
    Courier,
    CourierStatus,
    DeliveryArea,
    Location,
    Merchant,
    Order,
    OrderStatus,
    Route,
    Stop,
    StopKind,
    Window,
    restored,
)

__all__ = [
    "decode_courier",
    "decode_location",
    "decode_merchant",
    "decode_order",
    "decode_route",
    "dumps",
    "encode_courier",
    "encode_location",
    "encode_merchant",
    "encode_order",
    "encode_position",
    "encode_route",
]

# -- records <-> JSON ---------------------------------------------------------------------------
# Compact and explicit: every field by name, floats as Python writes them (they read back equal).


def encode_location(loc: Location) -> list[float]:
    if loc.x_m is None or loc.y_m is None:
        return [loc.lat, loc.lng]
    return [loc.lat, loc.lng, loc.x_m, loc.y_m]


def decode_location(v: list[float]) -> Location:
    return Location(v[0], v[1]) if len(v) == 2 else Location(v[0], v[1], v[2], v[3])


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_merchant(m: Merchant) -> str:
    area = {"radius_m": m.area.radius_m} if m.area.polygon is None else {"polygon": m.area.polygon}
    return dumps(
        {
            "id": m.id,
            "loc": encode_location(m.location),
            "area": area,
            "prep": m.prep_s,
            "promise": m.promise_s,
            "pin": m.delivery_pin,
            "offer": m.offer_schedule_when_full,
        }
    )


def decode_merchant(raw: str | bytes) -> Merchant:
    d = json.loads(raw)
    return restored(
        Merchant,
        d["id"],
        decode_location(d["loc"]),
        DeliveryArea(**d["area"]),
        d["prep"],
        d["promise"],
        d.get("pin", False),
        d.get("offer"),
    )


def encode_courier(c: Courier) -> str:
    return dumps(
        {
            "id": c.id,
            "loc": encode_location(c.location),
            "seen_at": c.seen_at,
            "shift_end": c.shift_end,
            "speed": c.speed_mps,
            "cap": c.capacity,
            "status": c.status.value,
            "avail": c.available_at,
            "version": c.version,
        }
    )


def decode_courier(raw: str | bytes, position: str | bytes | None = None) -> Courier:
    d = json.loads(raw)
    loc, seen_at = decode_location(d["loc"]), d["seen_at"]
    if position is not None:  # a ping newer than the record: [seen_at, cell, lat, lng(, x, y)]
        p = json.loads(position)
        loc, seen_at = decode_location(p[2:]), p[0]
    return restored(
        Courier,
        d["id"],
        loc,
        seen_at,
        d["shift_end"],
        d["speed"],
        d["cap"],
        CourierStatus(d["status"]),
        d["avail"],
        d["version"],
    )


def encode_order(o: Order) -> str:
    return dumps(
        {
            "id": o.id,
            "mid": o.merchant_id,
            "drop": encode_location(o.dropoff),
            "placed": o.placed_at,
            "ready": o.ready_at,
            "win": [o.window.start, o.window.end],
            "sched": o.scheduled,
            "status": o.status.value,
            "cid": o.courier_id,
            "assigned": o.assigned_at,
            "picked": o.picked_up_at,
            "delivered": o.delivered_at,
            "version": o.version,
            "cxr": o.cancel_reason,
            "cxby": None if o.cancelled_by is None else o.cancelled_by.value,
            "offer": o.offer_id,
            "offer_exp": o.offer_expires_at,
            "declined": [list(d) for d in o.declined_by],
            "pc": _encode_contact(o.pickup_contact),
            "dc": _encode_contact(o.dropoff_contact),
            "cl": o.contactless,
            "pin": o.delivery_pin,
            "pinf": o.pin_failures,
            "pinf_at": o.pin_failed_at,
        }
    )


def decode_order(raw: str | bytes) -> Order:
    d = json.loads(raw)
    return restored(
        Order,
        d["id"],
        d["mid"],
        decode_location(d["drop"]),
        d["placed"],
        d["ready"],
        Window(d["win"][0], d["win"][1]),
        d["sched"],
        OrderStatus(d["status"]),
        d["cid"],
        d["assigned"],
        d["picked"],
        d["delivered"],
        d["version"],
        d.get("cxr"),
        None if d.get("cxby") is None else CancelledBy(d["cxby"]),
        d.get("offer"),
        d.get("offer_exp"),
        tuple((cid, until) for cid, until in d.get("declined", ())),
        _decode_contact(d.get("pc")),
        _decode_contact(d.get("dc")),
        d.get("cl", False),
        d.get("pin"),
        d.get("pinf", 0),
        d.get("pinf_at"),
    )


def _encode_contact(c: Contact | None) -> list[str | None] | None:
    return None if c is None else [c.name, c.phone, c.instructions]


def _decode_contact(raw: list[str | None] | None) -> Contact | None:
    return None if raw is None else restored(Contact, *raw)


def encode_route(r: Route) -> str:
    stops = [
        [
            s.kind.value,
            list(s.order_ids),
            encode_location(s.location),
            s.arrive_at,
            s.service_at,
            s.depart_at,
            s.merchant_id,
        ]
        for s in r.stops
    ]
    return dumps({"cid": r.courier_id, "stops": stops, "planned": r.planned_at, "arrived": r.arrived_at})


def decode_route(raw: str | bytes) -> Route:
    d = json.loads(raw)
    stops = tuple(
        Stop(StopKind(k), tuple(oids), decode_location(loc), arrive, service, depart, mid)
        for k, oids, loc, arrive, service, depart, mid in d["stops"]
    )
    return Route(d["cid"], stops, d["planned"], d["arrived"])


def encode_position(location: Location, cell: str, seen_at: int) -> str:
    return dumps([seen_at, cell, *encode_location(location)])
