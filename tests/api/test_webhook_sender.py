"""The webhook sender against real loopback servers started here: raw asyncio servers that answer
as told (slowly, by resetting, closing, in chunks), and https with a certificate of a CA made
for the test."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from api.webhooks.sender import Sender, SendFailed, SendTimeout
from api.webhooks.urls import UnsafeUrl, check_url

pytestmark = pytest.mark.anyio

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Seen:
    connection: int
    path: str
    headers: dict[str, str]
    body: bytes


#: what the server does with the n-th request (from 0): answer these bytes, or an action
Action = Callable[[int, asyncio.StreamWriter], Awaitable[bytes | None]]


@dataclass
class RawServer:
    """An HTTP/1.1 server on loopback that reads each request and does what ``action`` says."""

    action: Action
    ssl_context: ssl.SSLContext | None = None
    requests: list[Seen] = field(default_factory=list)
    connections: int = 0
    port: int = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                line, *lines = head.decode().split("\r\n")
                headers = dict(h.split(": ", 1) for h in lines if h)
                body = await reader.readexactly(int(headers.get("Content-Length", "0")))
                self.requests.append(Seen(number, line.split(" ")[1], headers, body))
                answer = await self.action(len(self.requests) - 1, writer)
                if answer is None:  # the action dealt with the connection
                    return
                writer.write(answer)
                await writer.drain()
        finally:
            writer.close()

    async def __aenter__(self) -> RawServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def answer(data: bytes) -> Action:
    async def act(n: int, writer: asyncio.StreamWriter) -> bytes:
        return data

    return act


@pytest.fixture
async def sender() -> AsyncIterator[Sender]:
    async with Sender(timeout_s=2.0, allow_private=True) as s:
        yield s


async def test_a_2xx_answer_gives_its_status_and_the_request_is_as_sent(sender: Sender) -> None:
    async with RawServer(answer(OK)) as server:
        status = await sender.post(
            server.url + "/hooks/a?x=1", b'{"id": "e-1"}', [("Content-Type", "application/json")]
        )
    assert status == 200
    (seen,) = server.requests
    assert seen.path == "/hooks/a?x=1" and seen.body == b'{"id": "e-1"}'
    assert seen.headers["Host"] == f"127.0.0.1:{server.port}"
    assert seen.headers["Content-Length"] == "13" and seen.headers["Content-Type"] == "application/json"


async def test_a_non_2xx_answer_is_a_status_not_an_error_and_keeps_the_connection(sender: Sender) -> None:
    async with RawServer(
        answer(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
    ) as server:
        assert await sender.post(server.url + "/h", b"{}") == 503
        assert await sender.post(server.url + "/h", b"{}") == 503
    assert server.connections == 1 and sender.connections_opened == 1


async def test_keep_alive_reuses_one_connection_per_origin(sender: Sender) -> None:
    async with RawServer(answer(OK)) as one, RawServer(answer(OK)) as two:
        for i in range(10):
            assert await sender.post(f"{one.url}/h/{i}", b"{}") == 200
            assert await sender.post(f"{two.url}/h/{i}", b"{}") == 200
    assert (one.connections, two.connections, sender.connections_opened) == (1, 1, 2)
    assert [s.path for s in one.requests] == [f"/h/{i}" for i in range(10)]


async def test_concurrent_posts_open_one_connection_each_then_reuse_them(sender: Sender) -> None:
    async def slow(n: int, writer: asyncio.StreamWriter) -> bytes:
        await asyncio.sleep(0.05)
        return OK

    async with RawServer(slow) as server:
        for _ in range(3):
            statuses = await asyncio.gather(*(sender.post(server.url, b"{}") for _ in range(4)))
            assert statuses == [200] * 4
    assert server.connections == 4 and len(server.requests) == 12


async def test_a_slow_answer_times_out(sender: Sender) -> None:
    async def slow(n: int, writer: asyncio.StreamWriter) -> bytes:
        await asyncio.sleep(5)
        return OK

    sender.timeout_s = 0.2
    async with RawServer(slow) as server:
        start = time.monotonic()
        with pytest.raises(SendTimeout, match=r"no answer within 0.2 s"):
            await sender.post(server.url, b"{}")
        assert time.monotonic() - start < 1.5
    assert len(server.requests) == 1


async def test_a_body_that_stops_coming_times_out_too(sender: Sender) -> None:
    async def stall(n: int, writer: asyncio.StreamWriter) -> bytes:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
        await asyncio.sleep(5)
        return b""

    sender.timeout_s = 0.2
    async with RawServer(stall) as server:
        with pytest.raises(SendTimeout):
            await sender.post(server.url, b"{}")


async def test_a_reset_connection_fails_and_says_so(sender: Sender) -> None:
    async def reset(n: int, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # with SO_LINGER 0: an RST, not a FIN

    async with RawServer(reset) as server:
        with pytest.raises(SendFailed, match=r"reset|closed the connection"):
            await sender.post(server.url, b"{}")
    assert len(server.requests) == 1  # a fresh connection is not tried again: that is the relay's retry


async def test_closed_without_an_answer_fails_once(sender: Sender) -> None:
    async def hang_up(n: int, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with RawServer(hang_up) as server:
        with pytest.raises(SendFailed, match="closed the connection without answering"):
            await sender.post(server.url, b"{}")
    assert len(server.requests) == 1


async def test_an_idle_connection_the_server_closed_is_not_reused(sender: Sender) -> None:
    async def answer_then_close(n: int, writer: asyncio.StreamWriter) -> None:
        writer.write(OK)  # keep-alive by what it says, then closed all the same
        await writer.drain()
        writer.close()

    async with RawServer(answer_then_close) as server:
        assert await sender.post(server.url + "/1", b"{}") == 200
        await asyncio.sleep(0.05)
        assert await sender.post(server.url + "/2", b"{}") == 200
        assert await sender.post(server.url + "/3", b"{}") == 200
    assert [s.path for s in server.requests] == ["/1", "/2", "/3"]  # each made once
    assert server.connections == 3


async def test_a_kept_connection_dropped_before_answering_is_tried_once_more_on_a_fresh_one(
    sender: Sender,
) -> None:
    async def drop_the_second(n: int, writer: asyncio.StreamWriter) -> bytes | None:
        if n == 1:  # the server gave up on the kept connection as the request came in
            writer.close()
            return None
        return OK

    async with RawServer(drop_the_second) as server:
        assert await sender.post(server.url + "/1", b"{}") == 200
        assert await sender.post(server.url + "/2", b"{}") == 200
        assert await sender.post(server.url + "/3", b"{}") == 200
    # /2 reached the server twice: delivery is at least once, and the receiver de-duplicates
    assert [(s.connection, s.path) for s in server.requests] == [(1, "/1"), (1, "/2"), (2, "/2"), (2, "/3")]


async def test_connection_close_is_honoured(sender: Sender) -> None:
    async with RawServer(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    ) as server:
        for _ in range(3):
            assert await sender.post(server.url, b"{}") == 200
    assert server.connections == 3 and sender.connections_opened == 3


async def test_a_chunked_answer_is_read_to_its_end_and_the_connection_reused(sender: Sender) -> None:
    async def chunked(n: int, writer: asyncio.StreamWriter) -> bytes:
        writer.write(b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(b"6\r\n world\r\n")
        await writer.drain()
        return b"0\r\n\r\n"

    async with RawServer(chunked) as server:
        assert await sender.post(server.url, b"{}") == 202
        assert await sender.post(server.url, b"{}") == 202
    assert server.connections == 1


@pytest.mark.parametrize(
    ("raw", "status", "kept"),
    [
        (b"HTTP/1.1 204 No Content\r\n\r\n", 204, True),  # no body, nothing to say so
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 200, True),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, False),  # HTTP/1.0: no keep-alive
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n", 200, False),  # out of step
    ],
)
async def test_answers_and_whether_their_connection_is_kept(
    sender: Sender, raw: bytes, status: int, kept: bool
) -> None:
    async with RawServer(answer(raw)) as server:
        assert await sender.post(server.url, b"{}") == status
        assert await sender.post(server.url, b"{}") == status
    assert server.connections == (1 if kept else 2)


async def test_an_answer_whose_body_ends_with_the_connection(sender: Sender) -> None:
    async def until_close(n: int, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 202 Accepted\r\n\r\nthe body runs to the connection's end")
        await writer.drain()
        writer.close()

    async with RawServer(until_close) as server:
        assert await sender.post(server.url, b"{}") == 202
        assert await sender.post(server.url, b"{}") == 202
    assert server.connections == 2


async def test_an_answer_that_is_not_http_fails(sender: Sender) -> None:
    async with RawServer(answer(b"SSH-2.0-OpenSSH_9.6\r\n")) as server:
        with pytest.raises(SendFailed, match="HttpParserError: Expected HTTP"):
            await sender.post(server.url, b"{}")


async def test_a_header_or_path_that_would_split_the_request_is_refused(sender: Sender) -> None:
    async with RawServer(answer(OK)) as server:
        with pytest.raises(ValueError, match="line break"):
            await sender.post(server.url, b"{}", [("Dispatch-Event-Id", "x\r\nX-Injected: 1")])
        with pytest.raises(UnsafeUrl, match="percent-encode"):
            await sender.post(server.url + "/a b HTTP/1.1\r\nX: y", b"{}")
    assert server.connections == 0


async def test_a_large_answer_is_not_read_whole_and_its_connection_is_closed(sender: Sender) -> None:
    body = b"x" * 300_000
    async with RawServer(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + body)) as server:
        assert await sender.post(server.url, b"{}") == 200
        assert await sender.post(server.url, b"{}") == 200
    assert server.connections == 2


async def test_idle_connections_expire(sender: Sender) -> None:
    sender.idle_s = 0.1
    async with RawServer(answer(OK)) as server:
        assert await sender.post(server.url, b"{}") == 200
        await asyncio.sleep(0.2)
        assert await sender.post(server.url, b"{}") == 200
    assert server.connections == 2


async def test_nothing_listening_fails_with_the_address_tried(sender: Sender) -> None:
    with socket.socket() as s:  # a port just freed: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SendFailed, match=rf"could not connect to 127.0.0.1:{port} \(127.0.0.1: "):
        await sender.post(f"http://127.0.0.1:{port}/h", b"{}")


def resolver_of(*answers: list[str]) -> tuple[Callable[[str, int], Awaitable[list[str]]], list[str]]:
    """A resolver giving these answers in turn (the last one from then on), and the hosts asked."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return answers[min(len(asked), len(answers)) - 1]

    return resolve, asked


async def test_it_connects_to_the_resolved_address_and_sends_the_urls_host() -> None:
    resolve, asked = resolver_of(["127.0.0.2", "127.0.0.1"])  # nothing listens on 127.0.0.2
    async with (
        RawServer(answer(OK)) as server,
        Sender(timeout_s=2, allow_private=True, resolver=resolve) as sender,
    ):
        for _ in range(3):
            assert await sender.post(f"http://hooks.example.test:{server.port}/h", b"{}") == 200
    assert asked == ["hooks.example.test"]  # resolved once: the connection is kept
    assert {s.headers["Host"] for s in server.requests} == {f"hooks.example.test:{server.port}"}


@pytest.mark.parametrize(
    ("url_host", "addresses"),
    [
        ("127.0.0.1", None),  # a loopback literal
        ("hooks.example.test", ["127.0.0.1"]),  # a name for loopback
        ("hooks.example.test", ["93.184.215.14", "127.0.0.1"]),  # one private address among public ones
        ("hooks.example.test", ["::ffff:127.0.0.1"]),  # loopback mapped into IPv6
    ],
)
async def test_a_private_address_is_refused_before_connecting(
    url_host: str, addresses: list[str] | None
) -> None:
    kwargs: dict[str, Any] = {}
    if addresses is not None:
        kwargs["resolver"] = resolver_of(addresses)[0]
    async with RawServer(answer(OK)) as server, Sender(timeout_s=2, allow_private=False, **kwargs) as sender:
        with pytest.raises(UnsafeUrl, match="private, loopback or reserved address"):
            await sender.post(f"http://{url_host}:{server.port}/h", b"{}")
    assert server.connections == 0


async def test_dns_rebinding_after_the_check_is_refused() -> None:
    """The name was public when the endpoint was made and turns to loopback before the delivery:
    the sender checks the address it connects to, not the name."""
    resolve, asked = resolver_of(["93.184.215.14"], ["127.0.0.1"])
    async with RawServer(answer(OK)) as server:
        url = f"http://hooks.example.test:{server.port}/h"
        await check_url(url, allow_private=False, resolver=resolve)  # made: the name looked public
        async with Sender(timeout_s=2, allow_private=False, resolver=resolve) as sender:
            with pytest.raises(UnsafeUrl, match=r"127\.0\.0\.1"):
                await sender.post(url, b"{}")
    assert asked == ["hooks.example.test"] * 2 and server.connections == 0


async def test_https_verifies_the_certificate_and_sends_the_name_for_sni() -> None:
    trustme = pytest.importorskip("trustme", reason="trustme makes the test CA")
    ca = trustme.CA()
    cert = ca.issue_cert("hooks.example.test")
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_context)
    names: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    resolve, _ = resolver_of(["127.0.0.1"])
    async with RawServer(answer(OK), ssl_context=server_context) as server:
        url = f"https://hooks.example.test:{server.port}/h"
        async with Sender(
            timeout_s=2, allow_private=True, resolver=resolve, ssl_context=client_context
        ) as sender:
            assert await sender.post(url, b"{}") == 200
            assert await sender.post(url, b"{}") == 200
        # the system's trust store does not know the test's CA
        async with Sender(timeout_s=2, allow_private=True, resolver=resolve) as sender:
            with pytest.raises(SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await sender.post(url, b"{}")
        # nor is the certificate good for another name
        other, _ = resolver_of(["127.0.0.1"])
        async with Sender(
            timeout_s=2, allow_private=True, resolver=other, ssl_context=client_context
        ) as sender:
            with pytest.raises(SendFailed, match="CERTIFICATE_VERIFY_FAILED"):
                await sender.post(f"https://other.example.test:{server.port}/h", b"{}")
    assert server.connections == 1  # the refused handshakes never became connections
    assert names[0] == "hooks.example.test"
    assert [s.headers["Host"] for s in server.requests] == [f"hooks.example.test:{server.port}"] * 2
