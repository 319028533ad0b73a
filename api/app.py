"""The application factory: settings, dispatcher and clock in, a FastAPI app out.

No module-level app and no settings read at import time: ``create_app()`` reads the
environment when it is called, and uvicorn builds the app with ``factory=True``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from api.limits import BodyLimitMiddleware
from api.metrics import MetricsMiddleware
from api.openapi_docs import document
from api.problems import PROBLEM_MEDIA_TYPE, Problem, install_problem_handlers
from api.routes import (
    couriers,
    dispatch,
    events,
    merchants,
    ops,
    orders,
    quotes,
    ready,
    tracking,
    webhooks,
)
from api.runtime import Clock, Runtime, system_clock
from api.server_limits import HeaderCountMiddleware
from api.settings import Settings
from dispatch.config import DispatchConfig
from dispatch.engine import Dispatcher

__all__ = ["create_app"]

DESCRIPTION = """\
The hyperlocal dispatch engine over HTTP, for delivery apps, restaurants, couriers and analysts.

* **Auth**: `Authorization: Bearer <key>`; keys and their roles come from `DISPATCH_API_KEYS`.
* **Units**: times are POSIX seconds (`*_at`), distances metres (`*_m`).
* **Errors**: RFC 9457 `application/problem+json` with a stable `type` (`/problems/<code>`).
* **Flow**: `POST /v1/quotes` then `POST /v1/orders` (with `Idempotency-Key`), then watch
  `GET /v1/orders/{id}` or the event stream `GET /v1/events/stream`.
"""


def create_app(
    settings: Settings | None = None,
    dispatcher: Dispatcher | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """A ready-to-serve app over ``dispatcher``.

    By default a fresh dispatcher over in-memory state, or over the city's state in Redis when
    ``DISPATCH_REDIS_URL`` is set (then quotes, idempotency records and the tick lease are
    shared through Redis too, and any number of processes can serve the city).

    ``settings`` default to the environment (which must name API keys); ``clock`` to the
    system clock in whole POSIX seconds. Tests pass a clock they control.
    """
    settings = settings if settings is not None else Settings()
    if dispatcher is None:
        store = None
        if settings.redis_url is not None:
            from dispatch.redis_store import RedisStore, connect

            # connects lazily: a Redis that is down at start-up gives 503s until it is up
            client = connect(
                settings.redis_url.get_secret_value(),
                timeout_s=settings.redis_timeout_s,
                cluster=settings.redis_cluster,
            )
            store = RedisStore(client, settings.city)
        config = DispatchConfig(
            city=settings.city,
            auto_accept=settings.auto_accept,
            offer_timeout_s=settings.offer_timeout_s,
            supply_admission=settings.supply_admission,
        )
        dispatcher = Dispatcher(store=store, config=config)
    runtime = Runtime(settings, dispatcher, clock or system_clock)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="hyperlocal-dispatch",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        separate_input_output_schemas=False,
        docs_url=None,  # served below from the service's own assets, not a CDN
        redoc_url=None,
        # the service keeps its own Prometheus metrics; this skips a per-request OpenTelemetry probe
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    app.state.problem_base = settings.problem_base
    install_problem_handlers(app)
    route_methods = []
    # couriers first: routes are matched in order, and position updates are the hottest call
    for module in (couriers, orders, ready, quotes, merchants, ops, dispatch, events, webhooks, tracking):
        app.include_router(module.router)
        route_methods += [
            (route.path_regex, frozenset(route.methods or ()))
            for route in module.router.routes
            if isinstance(route, APIRoute)
        ]
    app.state.route_methods = route_methods
    _serve_docs(app)
    # outermost first: every request is counted, including the ones refused for size
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, registry=runtime.metrics, in_flight=runtime.requests)
    app.add_middleware(HeaderCountMiddleware)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in problem_schema.pop("$defs", {}).items():
                components.setdefault(name, sub)
            components["Problem"] = problem_schema
            _problems_only_for_errors(schema)
            document(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


#: Swagger UI and ReDoc, as the fastapi-offline package ships them (a pinned dependency, so the
#: service serves the very files pip installed: nothing minified in this repository, no CDN)
_DOCS_ASSETS = "/docs-assets"


def _serve_docs(app: FastAPI) -> None:
    import fastapi_offline
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse
    from fastapi.staticfiles import StaticFiles

    assets = Path(fastapi_offline.__file__).parent / "static"
    app.mount(_DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    def own_assets_only(page: HTMLResponse) -> HTMLResponse:
        # ReDoc shows a logo from its CDN, whatever its options: the browser is told to load nothing
        # from elsewhere, so the page is the same offline and online
        page.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data: blob:; worker-src 'self' blob:; font-src 'self' data:"
        )
        return page

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return own_assets_only(
            get_swagger_ui_html(
                openapi_url="/openapi.json",
                title=f"{app.title} - Swagger UI",
                swagger_js_url=f"{_DOCS_ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{_DOCS_ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return own_assets_only(
            get_redoc_html(
                openapi_url="/openapi.json",
                title=f"{app.title} - ReDoc",
                redoc_js_url=f"{_DOCS_ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{_DOCS_ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )


def _problems_only_for_errors(schema: dict[str, Any]) -> None:
    """Error responses are problem+json only (FastAPI would also list its default JSON body)."""
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status.startswith(("4", "5")) and PROBLEM_MEDIA_TYPE in content:
                    response["content"] = {PROBLEM_MEDIA_TYPE: content[PROBLEM_MEDIA_TYPE]}
