"""Metrics with two real worker processes (``dispatch serve --workers 2`` over Redis): every
scrape shows the totals of both workers, whichever of them answers it (prometheus_client in
multiprocess mode). A per-process registry would show one worker's share."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.multiprocess import MultiProcessCollector

from tests.api.conftest import ADMIN, API_KEYS, auth, metric
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


def _served_per_worker(directory: Path) -> dict[str, float]:
    """GET /healthz requests each worker process counted, from its own values file."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        total = 0.0
        for family in MultiProcessCollector.merge([str(path)], accumulate=True):  # type: ignore[no-untyped-call]
            for sample in family.samples:
                if sample.name == "dispatch_http_requests_total" and sample.labels.get("route") == "/healthz":
                    total += sample.value
        counts[path.stem] = total
    return counts


def _get(port: int, path: str, **headers: str) -> httpx.Response:
    # a new connection each time, so the kernel hands requests to either worker
    return httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Connection": "close", **headers}, timeout=10)


def test_two_workers_scrape_the_same_totals(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DISPATCH_API_KEYS": API_KEYS,
        "DISPATCH_REDIS_URL": redis.url,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--workers", "2", "--port", str(port), "--tick-interval", "0"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(port, "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "dispatch serve --workers 2 did not start"
            time.sleep(0.2)
        sent = 1
        while sent < 400:
            for _ in range(20):
                assert _get(port, "/healthz").status_code == 200
            sent += 20
            served = _served_per_worker(metrics_dir)
            if sum(1 for n in served.values() if n > 0) >= 2:
                break
        # a request is counted just after its response went out: wait for the last one to land
        counted_by = time.monotonic() + 5
        served = _served_per_worker(metrics_dir)
        while sum(served.values()) < sent and time.monotonic() < counted_by:
            time.sleep(0.05)
            served = _served_per_worker(metrics_dir)
        assert sum(1 for n in served.values() if n > 0) == 2, served  # both workers answered some
        assert sum(served.values()) == sent, served
        for _ in range(6):  # whichever worker answers the scrape, it shows both workers' totals
            text = _get(port, "/metrics", **auth(ADMIN)).text
            assert (
                metric(text, "dispatch_http_requests_total", method="GET", route="/healthz", status="200")
                == sent
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        redis.stop()
