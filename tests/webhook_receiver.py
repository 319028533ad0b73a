"""A real HTTP receiver of webhooks on loopback, for the tests and the benchmark.

It answers each POST by a rule of the test (fail the first attempts, sometimes be slow), and
records every request it served: path, headers, raw body, answer and when.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Delivery", "Receiver"]


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    served_at: float  # time.perf_counter() when the answer was sent

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


#: (path, event id, how many copies of it this path received before) -> (status, seconds to wait first)
Rule = Callable[[str, str, int], tuple[int, float]]


class Receiver:
    def __init__(
        self, rule: Rule | None = None, on_served: Callable[[Delivery], object] | None = None
    ) -> None:
        """``on_served``: called with each delivery instead of keeping it in :attr:`deliveries`."""
        self.rule: Rule = rule or (lambda path, event_id, seen: (200, 0.0))
        self.deliveries: list[Delivery] = []
        self._seen: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    event_id = str(json.loads(body).get("id"))
                except ValueError:
                    event_id = ""
                with receiver._lock:
                    key = (self.path, event_id)
                    seen = receiver._seen.get(key, 0)
                    receiver._seen[key] = seen + 1
                status, wait_s = receiver.rule(self.path, event_id, seen)
                if wait_s:
                    time.sleep(wait_s)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                delivery = Delivery(self.path, dict(self.headers.items()), body, status, time.perf_counter())
                with receiver._lock:
                    receiver.deliveries.append(delivery)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # the sender opens many connections at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def served(self, path: str) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.path == path]


def main() -> None:
    """``python -m tests.webhook_receiver LOG PORT``: a receiver in a process of its own for the
    benchmark, on uvicorn (one event loop: no threads taking turns for the GIL, which costs the
    threaded receiver tens of milliseconds a request under load). It appends
    ``<event id> <perf_counter when served>`` to LOG for each POST, and answers 200."""
    import sys

    import uvicorn

    log = open(sys.argv[1], "a", buffering=1)  # noqa: SIM115 - open for the process's life

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]})
        await send({"type": "http.response.body", "body": b""})
        try:
            event_id = json.loads(body).get("id")
        except ValueError:
            event_id = None
        log.write(f"{event_id} {time.perf_counter()}\n")

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
