"""The OpenAPI document for integrators: a description on every operation, an example on every
schema that validates against it (problem+json included), and /docs and /redoc working with
the service's own assets only (in headless Chromium)."""

from __future__ import annotations

from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI

from api import create_app
from api.problems import PROBLEM_MEDIA_TYPE
from tests.api.conftest import Clock, make_settings
from tests.browser import open_page


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    doc: dict[str, Any] = create_app(make_settings()).openapi()
    return doc


def _validator(doc: dict[str, Any], ref: str) -> jsonschema_rs.Draft202012Validator:
    # the document is the root, so the schema's $refs resolve within it
    return jsonschema_rs.Draft202012Validator({**doc, "$ref": ref})


def _operations(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m.upper()} {p}", op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_every_operation_has_a_description(schema: dict[str, Any]) -> None:
    missing = [name for name, op in _operations(schema) if len(op.get("description", "")) < 30]
    assert not missing, missing
    assert {"POST /v1/webhooks", "GET /v1/tracking/{token}"} <= {name for name, _ in _operations(schema)}


def test_every_schema_has_an_example_that_validates_against_it(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]
    for name, component in components.items():
        examples = component.get("examples") or ([component["example"]] if "example" in component else [])
        assert examples, f"{name} has no example"
        for example in examples:
            errors = list(_validator(schema, f"#/components/schemas/{name}").iter_errors(example))
            assert not errors, (name, [str(e) for e in errors])


def test_every_request_and_response_body_has_an_example(schema: dict[str, Any]) -> None:
    components = schema["components"]["schemas"]

    def has_example(content: dict[str, Any]) -> bool:
        if "example" in content or "examples" in content:
            return True
        sub = content.get("schema", {})
        refs = [sub.get("$ref")] + [s.get("$ref") for s in sub.get("anyOf", []) + sub.get("oneOf", [])]
        named = [r.rsplit("/", 1)[1] for r in refs if r]
        return bool(named) and all("examples" in components[n] or "example" in components[n] for n in named)

    for name, op in _operations(schema):
        for media, content in op.get("requestBody", {}).get("content", {}).items():
            assert has_example(content), (name, "request", media)
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                assert has_example(content), (name, status, media)
                if media == PROBLEM_MEDIA_TYPE:
                    example = content["example"]
                    assert example["status"] == int(status) and example["type"].endswith(example["code"])
                    assert not list(_validator(schema, "#/components/schemas/Problem").iter_errors(example))


@pytest.mark.anyio
async def test_docs_pages_use_only_the_services_own_assets(clock: Clock) -> None:
    app = create_app(make_settings(), clock=clock)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        for page, assets in (
            ("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")),
            ("/redoc", ("redoc.standalone.js",)),
        ):
            html = (await client.get(page)).text
            assert "cdn" not in html.lower() and "fonts.googleapis" not in html
            for asset in assets:
                assert f"/docs-assets/{asset}" in html
                r = await client.get(f"/docs-assets/{asset}")
                assert r.status_code == 200 and len(r.content) > 10_000, asset


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_swagger_ui_and_redoc_render_every_operation_in_chromium(
    served_app: tuple[str, FastAPI, Clock],
) -> None:
    base, app, _ = served_app
    operations = len(_operations(app.openapi()))
    swagger = open_page(
        base + "/docs",
        wait_for="document.querySelectorAll('.opblock').length > 0",
        expression="document.querySelectorAll('.opblock').length",
    )
    assert swagger.evaluated == operations
    assert all(r.startswith(base) for r in swagger.requests), swagger.requests
    assert not swagger.exceptions
    redoc = open_page(
        base + "/redoc",
        wait_for="document.querySelectorAll('[data-section-id^=\"operation/\"]').length > 0",
        expression="document.querySelectorAll('[data-section-id^=\"operation/\"]').length",
    )
    assert redoc.evaluated == operations
    # ReDoc always asks for its logo on a CDN; the page's policy stops it in the browser
    elsewhere = [r for r in redoc.requests if not r.startswith((base, f"blob:{base}"))]
    assert all(redoc.blocked.get(r) == "csp" for r in elsewhere), (elsewhere, redoc.blocked)
    assert not redoc.exceptions
