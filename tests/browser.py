"""A real headless Chromium for the page tests, driven through the DevTools protocol.

Debian's ``chromium`` (``/usr/bin/chromium``; ``make test`` installs it when missing). Where
none is installed the tests that need it are skipped with a message, unless
``DISPATCH_REQUIRE_BROWSER=1`` (CI sets it): then they fail.

:func:`open_page` loads a page with the network switched off (offline emulation) and returns
what a person would see and what went wrong: console errors, uncaught exceptions, network
requests the page tried to make, the figures on it and a full-page screenshot.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from websockets.sync.client import ClientConnection, connect

from tests.redis_server import stop_process

__all__ = ["Page", "ink_share", "open_page", "require_chromium"]

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1400,1000",
    "--remote-debugging-port=0",
)


def require_chromium() -> str:
    """The path of Chromium, or skip (fail under ``DISPATCH_REQUIRE_BROWSER=1``)."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        message = "chromium is not installed: the report tests open the page in a real browser"
        message += " (apt install chromium, or make test)"
        if os.environ.get("DISPATCH_REQUIRE_BROWSER") == "1":
            pytest.fail(message + "; DISPATCH_REQUIRE_BROWSER=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    return path


@dataclass
class Page:
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    #: every URL the page asked for other than itself (file:, data: and about: excluded)
    requests: list[str] = field(default_factory=list)
    #: those of them the browser refused to send (the page's Content-Security-Policy): reason by URL
    blocked: dict[str, str] = field(default_factory=dict)
    _urls: dict[str, str] = field(default_factory=dict, repr=False)
    #: figure id -> its screenshot
    figures: dict[str, Image.Image] = field(default_factory=dict)
    #: what ``expression`` evaluated to in the loaded page
    evaluated: Any = None
    screenshot: Image.Image | None = None


def ink_share(image: Image.Image) -> float:
    """Share of pixels with ink: any channel below 200 (white and light greys are no ink)."""
    grey = image.convert("RGB").point(lambda v: 255 if v < 200 else 0).convert("L")
    histogram = grey.histogram()
    return histogram[255] / max(1, sum(histogram))


class _Session:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, timeout_s: float = 30, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        me = self.next_id
        self.ws.send(json.dumps({"id": me, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == me:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def wait_for(self, event: str, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while not any(e["method"] == event for e in self.events):
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if "method" in message:
                self.events.append(message)

    def drain(self, quiet_s: float = 0.3) -> None:
        """Collect the events that still arrive (late console messages, requests)."""
        while True:
            try:
                message = json.loads(self.ws.recv(timeout=quiet_s))
            except TimeoutError:
                return
            if "method" in message:
                self.events.append(message)


def open_page(
    path: Path | str,
    *,
    expression: str = "null",
    figure_selector: str = "figure[id]",
    then: Callable[[], None] | None = None,
    wait_for: str | None = None,
) -> Page:
    """Load ``path`` offline in headless Chromium and report what happened (see :class:`Page`).

    ``path`` may also be an ``http://127.0.0.1:<port>/...`` URL of a service the test runs: then
    the network stays on (the page talks to its service); :attr:`Page.requests` lists every
    request it made. ``then`` runs
    once the page has loaded (the test changes the state it shows); ``wait_for`` is a JavaScript
    expression awaited (up to 20 s) before ``expression`` is evaluated.
    """
    binary = require_chromium()
    profile = tempfile.mkdtemp(prefix="dispatch-chromium-")
    # its own process group: the browser's helper processes (renderer, zygote, crashpad) go
    # with it, and none still writes to the profile while it is removed
    process = subprocess.Popen(
        [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return _drive(Path(profile), path, expression, figure_selector, then, wait_for)
    finally:
        stop_process(process)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        _remove_profile(Path(profile))


def _remove_profile(profile: Path) -> None:
    # a helper process killed a moment ago may still have a file open; try again briefly
    for _ in range(50):
        try:
            shutil.rmtree(profile)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.1)
    shutil.rmtree(profile)


def _drive(
    profile: Path,
    path: Path | str,
    expression: str,
    figure_selector: str,
    then: Callable[[], None] | None,
    wait_for: str | None,
) -> Page:
    port_file = profile / "DevToolsActivePort"
    deadline = time.monotonic() + 30
    while not (port_file.is_file() and len(port_file.read_text().splitlines()) >= 2):
        if time.monotonic() > deadline:
            raise RuntimeError("chromium did not open its DevTools port within 30 s")
        time.sleep(0.05)
    port = int(port_file.read_text().splitlines()[0])
    while True:  # the port is announced a moment before it answers
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                targets = json.loads(response.read())
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    target = next(t for t in targets if t.get("type") == "page")
    with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=20) as ws:
        cdp = _Session(ws)
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable")
        if isinstance(path, Path):
            cdp.call(
                "Network.emulateNetworkConditions",
                offline=True,
                latency=0,
                downloadThroughput=-1,
                uploadThroughput=-1,
            )
            url = path.resolve().as_uri()
        else:
            if not path.startswith(("http://127.0.0.1:", "http://localhost:")):
                raise ValueError(f"only pages served on loopback, not {path!r}")
            # the page must reach its service, so the network stays on: Page.requests shows
            # every request it made, for the test to check none left the service
            url = path
        cdp.events.clear()
        cdp.call("Page.navigate", url=url)
        cdp.wait_for("Page.loadEventFired")
        cdp.drain()
        if then is not None:
            then()
        if wait_for is not None:
            deadline = time.monotonic() + 20
            while not _evaluate(cdp, wait_for):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the page never made {wait_for} true")
                cdp.drain(0.1)
        page = Page()
        page.evaluated = _evaluate(cdp, expression)
        boxes = _evaluate(cdp, _BOXES % json.dumps(figure_selector))
        size = cdp.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = cdp.call("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        page.screenshot = Image.open(io.BytesIO(base64.b64decode(shot["data"])))
        page.screenshot.load()
        for fid, x, y, w, h in boxes:
            page.figures[fid] = page.screenshot.crop((round(x), round(y), round(x + w), round(y + h)))
        cdp.drain(0.1)
        for event in cdp.events:
            _record(page, event["method"], event.get("params", {}))
        return page


#: id and page box of every figure
_BOXES = (
    "[...document.querySelectorAll(%s)].map(f => { const r = f.getBoundingClientRect();"
    " return [f.id, r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })"
)


def _evaluate(cdp: _Session, expression: str) -> Any:
    return cdp.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")


def _record(page: Page, method: str, params: dict[str, Any]) -> None:
    if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
        page.console_errors.append(" ".join(str(a.get("value", a)) for a in params.get("args", [])))
    elif method == "Runtime.exceptionThrown":
        details = params.get("exceptionDetails", {})
        page.exceptions.append(details.get("exception", {}).get("description") or details.get("text", ""))
    elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
        page.console_errors.append(params["entry"].get("text", ""))
    elif method == "Network.requestWillBeSent":
        url = params.get("request", {}).get("url", "")
        if not url.startswith(("file:", "data:", "about:")):
            page.requests.append(url)
            page._urls[params.get("requestId", "")] = url
    elif method == "Network.loadingFailed" and params.get("blockedReason"):
        url = page._urls.get(params.get("requestId", ""))
        if url is not None:
            page.blocked[url] = params["blockedReason"]
