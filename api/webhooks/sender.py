"""A lean HTTP/1.1 client for webhook POSTs: asyncio streams and h11, connections kept alive.

The delivery loop runs in the same process as the requests it reports on, so what a POST costs
in CPU is taken from request handling: a general client (httpx) spent 0.6-2 ms a POST here,
this one about a tenth of that. It does one thing: POST a body to a URL and tell the status.

- Connections are kept alive and reused per origin (scheme, host, port), at most
  ``max_idle_per_origin`` idle ones each, for at most ``idle_s`` (servers close idle ones after a
  few seconds). A connection that fails before any byte of its answer arrived, having served an
  earlier POST (the server had closed it meanwhile), is dropped and the POST made once more on a
  fresh one. A connection is closed after an error, a ``Connection: close`` or a large answer.
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

import h11

from api.webhooks.urls import Resolver, check_url_syntax, checked_addresses, resolve

__all__ = ["SendFailed", "SendTimeout", "Sender"]

#: An answer's body is read (and dropped) up to this size; past it the connection is closed.
_DRAIN_MAX = 64 * 1024
_READ = 64 * 1024


class SendFailed(Exception):
    """No answer came back (refused, reset, closed, not HTTP); the message says what happened."""


class SendTimeout(SendFailed):
    """No full answer within the timeout."""


@dataclass(frozen=True, slots=True)
class _Target:
    origin: tuple[str, str, int]  # scheme, host, port
    host_header: bytes
    path: bytes


@lru_cache(maxsize=4096)
def _target(url: str) -> _Target:
    host, port = check_url_syntax(url)  # UnsafeUrl for what is no http(s) URL
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    name = f"[{host}]" if ":" in host else host
    host_header = name if port == default else f"{name}:{port}"
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Target((parts.scheme, host, port), host_header.encode("idna"), path.encode())


class _Connection:
    __slots__ = ("h11", "idle_since", "reader", "served", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.CLIENT)
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
        self._user_agent = user_agent.encode()
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
        request = [
            (b"Host", target.host_header),
            (b"Content-Length", str(len(body)).encode()),
            (b"User-Agent", self._user_agent),
            *((k.encode(), v.encode()) for k, v in headers),
        ]
        try:
            async with asyncio.timeout(self.timeout_s):
                connection = self._reusable(target.origin)
                if connection is not None:
                    try:
                        return await self._exchange(connection, target, request, body)
                    except _Stale:
                        pass  # the server had closed it: once more on a fresh connection
                # a fresh connection has served nothing: it fails with SendFailed, never _Stale
                return await self._exchange(await self._connect(target.origin), target, request, body)
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
        conn = connection.h11
        if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
            conn.start_next_cycle()
            idle = self._idle.setdefault(origin, [])
            if len(idle) < self.max_idle_per_origin:
                connection.idle_since = time.monotonic()
                idle.append(connection)
                return
        connection.close()  # Connection: close, HTTP/1.0, or enough idle ones already

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

    async def _exchange(
        self,
        connection: _Connection,
        target: _Target,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
    ) -> int:
        """Send the request and read the answer to its end; the status. Closes the connection
        unless it goes back to the pool."""
        conn = connection.h11
        got_bytes = False
        try:
            data = conn.send(h11.Request(method=b"POST", target=target.path, headers=headers))
            data += conn.send(h11.Data(data=body)) or b""
            data += conn.send(h11.EndOfMessage()) or b""
            connection.writer.write(data)
            status: int | None = None
            drained = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    chunk = await connection.reader.read(_READ)
                    if not chunk and not got_bytes:
                        raise _ClosedEarly("the server closed the connection without answering")
                    got_bytes = True
                    conn.receive_data(chunk)  # b"": the peer closed (h11 says whether too early)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    drained += len(event.data)
                    if drained > _DRAIN_MAX:  # a large answer: not worth reading to reuse the connection
                        assert status is not None
                        connection.close()
                        return status
                elif isinstance(event, h11.EndOfMessage):
                    assert status is not None
                    connection.served += 1
                    self._release(target.origin, connection)
                    return status
                elif isinstance(event, h11.ConnectionClosed):
                    raise _ClosedEarly("the server closed the connection without answering")
                # InformationalResponse (100 Continue, ...): read on
        except BaseException as exc:
            connection.close()
            if isinstance(exc, (OSError, h11.ProtocolError, ssl.SSLError)):
                if connection.served and not got_bytes:
                    raise _Stale(_describe(exc)) from exc
                raise SendFailed(_describe(exc)) from None
            raise


def _describe(exc: BaseException) -> str:
    if isinstance(exc, _ClosedEarly):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
