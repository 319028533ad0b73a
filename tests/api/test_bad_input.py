"""Bad input of every kind gets an RFC 9457 problem with a stable type, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import ADMIN, APP, AT_M1, COURIER_1, NEAR_M1, auth, seed, start_shift

pytestmark = pytest.mark.anyio

JSON = {"content-type": "application/json"}


def _problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == f"/problems/{code}" and body["code"] == code and body["status"] == status
    assert isinstance(body["title"], str) and isinstance(body["detail"], str) and body["detail"]
    return body  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("dropoff", "pointer"),
    [
        ({"lat": 90.0001, "lng": 13.4}, "#/dropoff/lat"),  # just past the pole
        ({"lat": -90.5, "lng": 13.4}, "#/dropoff/lat"),
        ({"lat": 52.5, "lng": 180.01}, "#/dropoff/lng"),  # just past the antimeridian
        ({"lat": 52.5, "lng": -181}, "#/dropoff/lng"),
        ({"lat": "52.5", "lng": 13.4}, "#/dropoff/lat"),  # a string is not a number
        ({"lat": True, "lng": 13.4}, "#/dropoff/lat"),  # nor is a boolean
        ({"lat": None, "lng": 13.4}, "#/dropoff/lat"),
        ({"lat": 52.5}, "#/dropoff/lng"),  # missing
        ({"lat": 52.5, "lng": 13.4, "alt": 30}, "#/dropoff/alt"),  # unknown field
    ],
)
async def test_coordinates_are_checked_field_by_field(
    client: httpx.AsyncClient, dropoff: dict[str, object], pointer: str
) -> None:
    await seed(client)
    r = await client.post("/v1/quotes", json={"merchant_id": "m-1", "dropoff": dropoff}, headers=auth(APP))
    body = _problem(r, 422, "validation-error")
    assert pointer in [e.get("pointer") for e in body["errors"]]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_nan_and_infinities_are_refused_not_echoed(client: httpx.AsyncClient, literal: str) -> None:
    await seed(client)
    raw = '{"merchant_id": "m-1", "dropoff": {"lat": ' + literal + ', "lng": 13.4}}'
    r = await client.post("/v1/quotes", content=raw, headers={**auth(APP), **JSON})
    body = _problem(r, 422, "validation-error")
    assert body["errors"] == [{"detail": "Input should be a finite number", "pointer": "#/dropoff/lat"}]


async def test_nan_in_a_query_is_refused(client: httpx.AsyncClient) -> None:
    await seed(client)
    r = await client.get("/v1/merchants/m-1/serviceability?lat=nan&lng=13.4", headers=auth(APP))
    body = _problem(r, 422, "validation-error")
    assert body["errors"][0]["parameter"] == "lat"


@pytest.mark.parametrize(
    "raw",
    [
        '{"merchant_id": "m-1", "dropoff": ',  # cut short
        "{'merchant_id': 'm-1'}",  # not JSON quotes
        '{"merchant_id": "m-1",}',  # trailing comma
        "\xff\xfe",  # not UTF-8
    ],
)
async def test_malformed_json_is_400(client: httpx.AsyncClient, raw: str) -> None:
    r = await client.post("/v1/quotes", content=raw.encode("latin-1"), headers={**auth(APP), **JSON})
    _problem(r, 400, "malformed-json")


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ([], "#/"),  # an array, not an object
        ({"merchant_id": "m 1", "dropoff": NEAR_M1}, "#/merchant_id"),  # a space is not allowed in ids
        ({"merchant_id": "m-1", "dropoff": NEAR_M1, "tip": 2}, "#/tip"),  # unknown field
        ({"merchant_id": "m-1", "dropoff": NEAR_M1, "ready_at": -1}, "#/ready_at"),
        ({"merchant_id": "m-1", "dropoff": NEAR_M1, "ready_at": 1.5}, "#/ready_at"),  # not whole seconds
        ({"merchant_id": "m-1", "dropoff": NEAR_M1, "ready_at": "soon"}, "#/ready_at"),
    ],
)
async def test_wrong_types_and_unknown_fields(client: httpx.AsyncClient, body: object, pointer: str) -> None:
    await seed(client)
    r = await client.post("/v1/quotes", json=body, headers=auth(APP))
    problem = _problem(r, 422, "validation-error")
    assert any((e.get("pointer") or "").startswith(pointer) for e in problem["errors"])


async def test_a_whole_float_is_a_whole_number(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/couriers/c-9/shift/start",
        json={"location": NEAR_M1, "duration_minutes": 60.0},
        headers=auth(ADMIN),
    )
    assert r.status_code == 201, r.text


async def test_a_body_that_is_not_json_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/quotes",
        content="merchant_id=m-1",
        headers={**auth(APP), "content-type": "application/x-www-form-urlencoded"},
    )
    _problem(r, 415, "unsupported-media-type")


async def test_an_oversized_body_is_413_declared_or_streamed(client: httpx.AsyncClient) -> None:
    big = '{"merchant_id": "' + "m" * 20_000 + '"}'
    declared = await client.post("/v1/quotes", content=big, headers={**auth(APP), **JSON})
    _problem(declared, 413, "payload-too-large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 1024

    streamed = await client.post("/v1/quotes", content=chunks(), headers={**auth(APP), **JSON})
    _problem(streamed, 413, "payload-too-large")


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        ("GET", "/v1/merchants/m-404", "unknown-merchant"),
        ("GET", "/v1/orders/m-1:o-404", "unknown-order"),
        ("POST", "/v1/orders/m-1:o-404/cancel", "unknown-order"),
        ("GET", "/v1/couriers/c-404", "unknown-courier"),
        ("GET", "/v1/couriers/c-404/route", "unknown-courier"),
        ("POST", "/v1/couriers/c-404/shift/end", "unknown-courier"),
        ("GET", "/v1/no-such-thing", "not-found"),
    ],
)
async def test_unknown_ids_are_404(client: httpx.AsyncClient, method: str, path: str, code: str) -> None:
    await seed(client)
    _problem(await client.request(method, path, headers=auth(ADMIN)), 404, code)


async def test_quote_for_an_unknown_merchant_is_404(client: httpx.AsyncClient) -> None:
    r = await client.post("/v1/quotes", json={"merchant_id": "m-404", "dropoff": NEAR_M1}, headers=auth(APP))
    assert _problem(r, 404, "unknown-merchant")["id"] == "m-404"


async def test_illegal_state_changes_are_409(client: httpx.AsyncClient) -> None:
    await seed(client)
    again = await client.post(
        "/v1/couriers/c-1/shift/start",
        json={"location": NEAR_M1, "duration_minutes": 60},
        headers=auth(COURIER_1),
    )
    _problem(again, 409, "conflict")
    nothing_planned = await client.post(
        "/v1/couriers/c-1/events", json={"type": "arrived"}, headers=auth(COURIER_1)
    )
    _problem(nothing_planned, 409, "illegal-transition")
    dup = await client.post(
        "/v1/merchants",
        json={"id": "m-1", "location": NEAR_M1, "delivery_area": {"radius_m": 1000}},
        headers=auth(ADMIN),
    )
    _problem(dup, 409, "duplicate-id")


async def test_a_bad_polygon_is_refused_with_the_reason(client: httpx.AsyncClient) -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[13.0, 52.0], [13.1, 52.1], [13.1, 52.0], [13.0, 52.1], [13.0, 52.0]]],
    }
    r = await client.post(
        "/v1/merchants",
        json={"id": "m-b", "location": NEAR_M1, "delivery_area": {"polygon": bowtie}},
        headers=auth(ADMIN),
    )
    body = _problem(r, 422, "invalid-input")
    assert "Self-intersection" in str(body["detail"]) and body["errors"] == [
        {"detail": body["detail"], "pointer": "#/polygon"}
    ]


async def test_a_polygon_area_works(client: httpx.AsyncClient) -> None:
    square = {
        "type": "Polygon",
        "coordinates": [[[13.40, 52.51], [13.43, 52.51], [13.43, 52.54], [13.40, 52.54], [13.40, 52.51]]],
    }
    r = await client.post(
        "/v1/merchants",
        json={"id": "m-p", "location": {"lat": 52.52, "lng": 13.41}, "delivery_area": {"polygon": square}},
        headers=auth(ADMIN),
    )
    assert r.status_code == 201, r.text
    # a courier at hand: supply admission (on by default) then leaves the zone to decide
    await start_shift(client, "c-1", AT_M1)
    inside = await client.get("/v1/merchants/m-p/serviceability", params=NEAR_M1, headers=auth(ADMIN))
    outside = await client.get("/v1/merchants/m-p/serviceability?lat=52.6&lng=13.41", headers=auth(ADMIN))
    assert inside.json()["serviceable"] is True and outside.json()["serviceable"] is False


async def test_method_not_allowed_names_every_allowed_method(client: httpx.AsyncClient) -> None:
    r = await client.delete("/v1/merchants/m-1", headers=auth(ADMIN))
    _problem(r, 405, "method-not-allowed")
    assert r.headers["allow"] == "GET, PATCH"


async def test_a_missing_idempotency_key_is_named(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/v1/orders", json={"external_id": "x", "merchant_id": "m-1", "dropoff": NEAR_M1}, headers=auth(APP)
    )
    body = _problem(r, 422, "validation-error")
    assert body["errors"] == [{"detail": "Field required", "header": "Idempotency-Key"}]
