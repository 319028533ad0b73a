"""Request body size limit: a body over the limit is refused with 413 before it is parsed.

Why not FastAPI's own ``FastAPI(max_body_size=...)`` (FastAPI 0.165, Starlette 1.10's
``RequestBodyLimitMiddleware``): for a declared ``Content-Length`` over the limit, Starlette
replaces whatever the app answers with its own ``text/plain`` "Content Too Large" at send time,
so the 413 could not be problem+json like every other error. This middleware raises the 413
from ``receive`` instead, where the app's exception handlers turn it into a problem.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimitMiddleware"]


class BodyLimitMiddleware:
    """Refuses a declared ``Content-Length`` over the limit at once, and a streamed body as it passes it."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        too_large = f"the request body is larger than {limit} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > limit:
                    # raised from receive so that the app's exception handlers make the 413 problem
                    async def refuse() -> Message:
                        raise HTTPException(413, too_large)

                    await self.app(scope, refuse, send)
                    return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise HTTPException(413, too_large)
            return message

        await self.app(scope, counted, send)
