"""The README's curl session runs against a real server, so it never goes stale.

It is the second ``sh`` block of the README's "## HTTP API" section; the first names the keys.
Skipped while the README has no such section, or without curl.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _session() -> tuple[str, str] | None:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## HTTP API\n(.*?)(?=^## |\Z)", readme, flags=re.S | re.M)
    if section is None:
        return None
    blocks = re.findall(r"```sh\n(.*?)```", section.group(1), flags=re.S)
    keys = re.search(r'DISPATCH_API_KEYS="([^"]+)"', blocks[0]) if blocks else None
    if len(blocks) < 2 or keys is None:
        return None
    return keys.group(1), blocks[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_readme_curl_session_runs() -> None:
    session = _session()
    if session is None:
        pytest.skip("the README has no HTTP API section with a curl session yet")
    if shutil.which("curl") is None or shutil.which("python3") is None:
        pytest.skip("curl and python3 are needed")
    keys, script = session
    port = _free_port()
    env = {**os.environ, "DISPATCH_API_KEYS": keys, "PYTHONPATH": str(ROOT)}
    env.pop("DISPATCH_API_KEYS_FILE", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "api.serve",
            "--port",
            str(port),
            "--tick-interval",
            "0",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "the server did not start"
                time.sleep(0.1)
        script = script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        out = subprocess.run(
            ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60, check=True
        )
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert '"status":"enroute_to_pickup"' in out.stdout and '"courier_id":"c-1"' in out.stdout, (
        out.stdout + out.stderr
    )
    assert "/problems/outside-delivery-area" in out.stdout
