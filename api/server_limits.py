"""What one connection may cost the server: header size and count, how long a request may take to
arrive, and how long an idle keep-alive connection is kept. ``dispatch serve`` runs uvicorn with
these (:func:`uvicorn_options`).

=============================  ==========  ==================================================================
limit                          default     what happens past it
=============================  ==========  ==================================================================
request head (line + headers)  16 KiB      400 and the connection is closed (h11)
header count                   100         431 problem+json (:class:`HeaderCountMiddleware`)
request read (head and body)   10 s        the connection is closed (``DISPATCH_REQUEST_READ_TIMEOUT_S``)
idle keep-alive                5 s         the connection is closed
concurrent connections         1,000       503 (uvicorn ``limit_concurrency``)
=============================  ==========  ==================================================================

uvicorn's h11 protocol is used (not httptools), because h11 bounds the request head; the
subclass here adds the read timeout uvicorn lacks (a client that sends one byte every few
seconds is cut off after ``REQUEST_READ_TIMEOUT_S``, not served forever).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import h11
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.problems import problem_response

__all__ = [
    "MAX_HEADERS",
    "MAX_HEAD_BYTES",
    "READ_TIMEOUT_ENV",
    "REQUEST_READ_TIMEOUT_S",
    "HeaderCountMiddleware",
    "TimedH11Protocol",
    "uvicorn_options",
]

MAX_HEAD_BYTES = 16 * 1024
MAX_HEADERS = 100
REQUEST_READ_TIMEOUT_S = 10.0
READ_TIMEOUT_ENV = "DISPATCH_REQUEST_READ_TIMEOUT_S"
KEEP_ALIVE_S = 5
MAX_CONNECTIONS = 1000


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request does not arrive in time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_timer: asyncio.TimerHandle | None = None
        # read from the environment (DISPATCH_REQUEST_READ_TIMEOUT_S, checked by Settings) so that
        # every worker process of ``--workers N`` has it
        self.read_timeout_s = float(os.environ.get(READ_TIMEOUT_ENV, REQUEST_READ_TIMEOUT_S))

    def data_received(self, data: bytes) -> None:
        if self._read_timer is None and self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self._read_timer = self.loop.call_later(self.read_timeout_s, self._read_timed_out)
        super().data_received(data)
        if self._read_timer is not None and self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._read_timer.cancel()  # the whole request is in
            self._read_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._read_timer is not None:
            self._read_timer.cancel()
            self._read_timer = None
        super().connection_lost(exc)

    def _read_timed_out(self) -> None:
        self._read_timer = None
        if not self.transport.is_closing():
            self.transport.close()


class HeaderCountMiddleware:
    """431 for a request with more than ``max_headers`` header lines."""

    def __init__(self, app: ASGIApp, max_headers: int = MAX_HEADERS) -> None:
        self.app = app
        self.max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(scope["headers"]) > self.max_headers:
            response = problem_response(
                None,
                "too-many-headers",
                431,
                f"the request has {len(scope['headers'])} headers; at most {self.max_headers} are read",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def uvicorn_options() -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that bound what a connection may cost."""
    return {
        "http": TimedH11Protocol,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "limit_concurrency": MAX_CONNECTIONS,
    }
