"""A lean HTTP/1.1 client for webhook POSTs: asyncio streams, connections kept alive, answers
parsed by httptools (llhttp, the parser uvicorn's standard install already runs).

The delivery loop runs in the same process as the requests it reports on, so what a POST costs
in CPU is taken from request handling. Measured here per sequential POST to a loopback receiver
(``benchmarks/webhook_bench.py``, signing included): httpx 0.74-1.1 ms of CPU, this module
0.08-0.11 ms, of which about 0.035 ms are the socket calls themselves. (A first version on h11
cost 0.15 ms, 0.1 ms of it h11's state machine and header checks.) It does one thing: POST a body
to a URL and tell the status of the answer.

- The request is written by hand: a request line, ``Host``, ``Content-Length``, ``User-Agent``
  and the caller's headers (names and values refused if they hold a line break or a NUL), the
  body, in one write.
- Connections are kept alive and reused per origin (scheme, host, port), at most
  ``max_idle_per_origin`` idle ones each, for at most ``idle_s`` (servers close idle ones after a
  few seconds). A connection that fails before any byte of its answer arrived, having served an
  earlier POST (the server had closed it meanwhile), is dropped and the POST made once more on a
  fresh one. A connection is closed after an error, a ``Connection: close``, an answer whose end
  is the connection's end, or a large answer (its body is read and dropped up to 64 KiB).
- A new connection resolves the host once, checks every address with the private/loopback rule
  of :mod:`api.webhooks.urls`, and connects to a checked address (the ``Host`` header and the TLS
  server name stay the URL's host), so a DNS answer that changes after the check (DNS rebinding)
  cannot point it at the service's own network.
- https is verified against the system's trust store (``ssl.create_default_context()``).
- One timeout covers the whole POST: resolving, connecting, sending, the answer and its body.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import httptools

from api.webhooks.urls import Resolver, UnsafeUrl, check_url_syntax, checked_addresses, resolve

__all__ = ["SendFailed", "SendTimeout", "Sender"]

#: An answer's body is read (and dropped) up to this size; past it the connection is closed.
_DRAIN_MAX = 64 * 1024
_READ = 64 * 1024
_FORBIDDEN = ("\r", "\n", "\0")


class SendFailed(Exception):
    """No answer came back (refused, reset, closed, not HTTP); the message says what happened."""


class SendTimeout(SendFailed):
    """No full answer within the timeout."""


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port
    #: the request line and Host header
    head: bytes


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    host, port = check_url_syntax(url)  # UnsafeUrl for what is no http(s) URL
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not path.isascii() or any(c <= " " or c == "\x7f" for c in path):
        raise UnsafeUrl("the URL's path holds spaces, control or non-ASCII characters: percent-encode them")
    name = host.encode("idna").decode("ascii") if not host.isascii() else host
    name = f"[{name}]" if ":" in name else name
    default = 443 if parts.scheme == "https" else 80
    host_header = name if port == default else f"{name}:{port}"
    return _Target((parts.scheme, host, port), f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n".encode())


class _Answer:
    """What httptools reports of one answer (its callbacks)."""

    __slots__ = ("body_bytes", "complete", "headers_done", "keep_alive", "parser", "status", "trailing")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.headers_done = False
        self.complete = False
        self.body_bytes = 0
        self.status = 0
        self.keep_alive = False
        #: bytes came after the answer's end (a server out of step): the connection is not reused
        self.trailing = False

    def on_message_begin(self) -> None:
        self.trailing = self.complete

    def on_headers_complete(self) -> None:
        # llhttp answers these only in its callbacks: it forgets them at the message's end
        self.headers_done = True
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # 100 Continue and the like: the answer follows
            self.headers_done = False
            return
        self.keep_alive = self.parser.should_keep_alive()
        self.complete = True


class _Connection:
    __slots__ = ("idle_since", "reader", "served", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.served = 0
        self.idle_since = 0.0

    def close(self) -> None:
        # abort, not close: nothing is owed to a connection we give up on, and a TLS close
        # would wait for the peer's answer to its close_notify
        self.writer.transport.abort()


class _ClosedEarly(ConnectionError):
    pass


class _Stale(Exception):
    """A reused connection failed before any byte of the answer: try once on a fresh one."""


class Sender:
    """POSTs over pooled HTTP/1.1 connections; use ``async with`` (or :meth:`aclose`)."""

    def __init__(
        self,
        *,
        timeout_s: float,
        allow_private: bool,
        max_idle_per_origin: int = 16,
        idle_s: float = 4.0,
        ssl_context: ssl.SSLContext | None = None,
        resolver: Resolver = resolve,
        user_agent: str = "hyperlocal-dispatch-webhooks/1",
    ) -> None:
        self.timeout_s = timeout_s
        self.allow_private = allow_private
        self.max_idle_per_origin = max_idle_per_origin
        self.idle_s = idle_s
        self._ssl = ssl_context
        self._resolver = resolver
        self._user_agent = f"User-Agent: {user_agent}\r\n".encode()
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}
        self._swept_at = time.monotonic()
        #: connections opened so far (a reused connection opens none)
        self.connections_opened = 0

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    async def post(self, url: str, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> int:
        """POST ``body`` to ``url`` with ``headers`` (besides Host, Content-Length and
        User-Agent); the answer's status code. Raises :class:`UnsafeUrl` (the URL or the address
        it resolves to may not receive webhooks), :class:`SendTimeout` or :class:`SendFailed`."""
        target = _target(url)
        lines = [target.head, b"Content-Length: %d\r\n" % len(body), self._user_agent]
        for name, value in headers:
            if any(c in name or c in value for c in _FORBIDDEN):
                raise ValueError(f"a line break or NUL in the header {name!r}")
            lines.append(f"{name}: {value}\r\n".encode())
        lines += (b"\r\n", body)
        request = b"".join(lines)
        try:
            async with asyncio.timeout(self.timeout_s):
                connection = self._reusable(target.origin)
                if connection is not None:
                    try:
                        return await self._exchange(connection, target.origin, request)
                    except _Stale:
                        pass  # the server had closed it: once more on a fresh connection
                # a fresh connection has served nothing: it fails with SendFailed, never _Stale
                return await self._exchange(await self._connect(target.origin), target.origin, request)
        except TimeoutError:
            raise SendTimeout(f"no answer within {self.timeout_s:g} s") from None

    def _reusable(self, origin: tuple[str, str, int]) -> _Connection | None:
        now = time.monotonic()
        if now - self._swept_at > self.idle_s:
            self._sweep(now)
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if now - connection.idle_since < self.idle_s and not connection.reader.at_eof():
                return connection
            connection.close()
        return None

    def _sweep(self, now: float) -> None:
        """Close connections idle too long, of every origin (one not posted to again included)."""
        self._swept_at = now
        for origin, idle in list(self._idle.items()):
            keep = [c for c in idle if now - c.idle_since < self.idle_s]
            for connection in idle:
                if connection not in keep:
                    connection.close()
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]

    def _release(self, origin: tuple[str, str, int], connection: _Connection) -> None:
        idle = self._idle.setdefault(origin, [])
        if len(idle) < self.max_idle_per_origin:
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            connection.close()

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        addresses = await checked_addresses(
            host, port, allow_private=self.allow_private, resolver=self._resolver
        )
        context: ssl.SSLContext | None = None
        if scheme == "https":
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        errors: list[str] = []
        for address in addresses:  # the checked addresses only: never the name again
            try:
                reader, writer = await asyncio.open_connection(
                    address,
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                    limit=_READ,
                )
            except (OSError, ssl.SSLError) as exc:
                errors.append(f"{address}: {_describe(exc)}")
                continue
            self.connections_opened += 1
            return _Connection(reader, writer)
        raise SendFailed(f"could not connect to {host}:{port} ({'; '.join(errors)})")

    async def _exchange(self, connection: _Connection, origin: tuple[str, str, int], request: bytes) -> int:
        """Send the request and read the answer to its end; the status. Closes the connection
        unless it goes back to the pool."""
        answer = _Answer()
        parser = answer.parser
        got_bytes = False
        try:
            connection.writer.write(request)
            read = connection.reader.read
            while not answer.complete:
                chunk = await read(_READ)
                if not chunk:
                    if answer.headers_done:  # an answer whose body ends with the connection
                        connection.close()
                        return answer.status
                    raise _ClosedEarly("the server closed the connection without answering")
                got_bytes = True
                parser.feed_data(chunk)
                if answer.body_bytes > _DRAIN_MAX:  # not worth reading on to reuse the connection
                    connection.close()
                    return answer.status
        except BaseException as exc:
            connection.close()
            if isinstance(exc, (OSError, httptools.HttpParserError, ssl.SSLError)):
                if connection.served and not got_bytes:
                    raise _Stale(_describe(exc)) from exc
                raise SendFailed(_describe(exc)) from None
            raise
        connection.served += 1
        if answer.keep_alive and not answer.trailing:
            self._release(origin, connection)
        else:  # Connection: close, HTTP/1.0, or bytes past the answer's end
            connection.close()
        return answer.status


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _ClosedEarly):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
