"""Schemathesis against the app's own OpenAPI schema: every operation, all default checks,
a fixed seed and a bounded number of examples, so the run is the same every time.

Requests carry an admin key (the deepest access); the ``ignored_auth`` check also sends each
operation without a key and with a wrong one. The app is seeded with merchants and couriers.

Two refinements of the default checks, both narrow:

* ``negative_data_rejection`` also counts 413 as a rejection: a body that breaks ``maxItems``
  can be refused for its size before it is parsed.
* ``positive_data_acceptance`` lets through a 422 whose problem ``type`` is a business rule the
  schema cannot express (a window that ends before it starts, a drop-off outside the area, an
  idempotency key reused with another body), and a 413 for a body that really is over the
  configured byte limit (no schema keyword bounds bytes: 50 polygons of 1,000 positions fit the
  schema, not 64 KiB). A 422 ``validation-error`` on schema-valid data, i.e. the schema and the
  parser disagreeing, still fails it.

(The schema is loaded when this module is imported, not from a fixture: schemathesis' lazy
``from_fixture`` loader reads ``Node._nodeid``, which pytest 9 no longer has.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import schemathesis
from fastapi import FastAPI
from schemathesis import Case, CheckContext, Response
from schemathesis.checks import positive_data_acceptance

from api import create_app
from dispatch import DispatchConfig, Dispatcher
from tests.api.conftest import ADMIN, Clock, make_settings, seed

SEED = 20_250_615
MAX_EXAMPLES = 50
MAX_BODY_BYTES = 64 * 1024

#: Codes of rules beyond the schema: a 422 with one of them is a legitimate answer to schema-valid data.
BUSINESS_RULES = frozenset(
    {
        "invalid-window",  # ends before it starts, longer than 30 min, in the past
        "invalid-input",  # e.g. a self-intersecting delivery polygon, ready_at before now
        "invalid-location",  # polygon [lng, lat] pairs: the schema does not bound them
        "outside-delivery-area",
        "window-infeasible",
        "idempotency-key-reused",
        "invalid-webhook-url",  # a host that does not resolve, or resolves to a private address
    }
)


def _problem_code(response: Response) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


def positive_data_acceptance_beyond_schema(
    ctx: CheckContext, response: Response, case: Case[Any]
) -> bool | None:
    """The default check, except for business-rule 422s and true 413s (see the module docstring)."""
    if response.status_code == 422 and _problem_code(response) in BUSINESS_RULES:
        return True
    sent = response.request.body
    if response.status_code == 413 and isinstance(sent, bytes | str) and len(sent) > MAX_BODY_BYTES:
        return True
    verdict: bool | None = positive_data_acceptance(ctx, response, case)
    return verdict


def _seeded_app() -> FastAPI:
    # webhook URLs are not resolved: no DNS lookups of the hosts schemathesis makes up
    settings = make_settings(max_body_bytes=MAX_BODY_BYTES, webhook_allow_private=True)
    app = create_app(settings, dispatcher=Dispatcher(config=DispatchConfig(city="contract")), clock=Clock())

    async def prepare() -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as c:
            await seed(c)

    asyncio.run(prepare())
    return app


_NEGATIVE_REJECTION = [
    "400",
    "401",
    "403",
    "404",
    "405",
    "406",
    "409",
    "413",
    "415",
    "422",
    "428",
    "429",
    "5xx",
]

schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    _seeded_app(),
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "auth": {"openapi": {"HTTPBearer": {"bearer": ADMIN}}},
            "checks": {"negative_data_rejection": {"expected-statuses": _NEGATIVE_REJECTION}},
        }
    ),
)


@schema.parametrize()
def test_every_operation_honours_its_schema(case: Case[Any]) -> None:
    case.call_and_validate(
        excluded_checks=[positive_data_acceptance], additional_checks=[positive_data_acceptance_beyond_schema]
    )
