"""A real ``redis-server`` for the tests: its own free port and temporary directory, never 6379.

Where no ``redis-server`` is installed, the tests that need one are skipped with a clear
message, unless ``DISPATCH_REQUIRE_REDIS=1`` (CI sets it): then they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

__all__ = ["RedisServer", "free_port", "require_redis_server"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s; returns once it is gone."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def require_redis_server() -> str:
    """The path of ``redis-server``, or skip (fail under ``DISPATCH_REQUIRE_REDIS=1``)."""
    path = shutil.which("redis-server")
    if path is None:
        message = "redis-server is not installed: the RedisStore tests need a real one"
        message += " (apt install redis-server)"
        if os.environ.get("DISPATCH_REQUIRE_REDIS") == "1":
            pytest.fail(message + "; DISPATCH_REQUIRE_REDIS=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    return path


class RedisServer:
    """One ``redis-server`` process: AOF on with ``appendfsync always`` unless told otherwise."""

    def __init__(self, directory: Path, *, appendfsync: str = "always") -> None:
        self.binary = require_redis_server()
        self.directory = directory
        self.port = free_port()
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
            "--logfile", str(self.directory / "redis.log"),
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.exceptions.BusyLoadingError:
                pass
            except redis.exceptions.ConnectionError:
                if self.process.poll() is not None:
                    log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"redis-server exited: {log}") from None
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer PING within 20 s")
            time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """``kill -9``: no shutdown, no last write; what the AOF holds is what survives."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        self.process = None

    def restart(self, *, hard: bool = True) -> None:
        """Kill (or stop) the server and start it again on the same port and directory."""
        if hard:
            self.kill()
        else:
            self.stop()
        self.start()


def _free_cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port
    raise RuntimeError("no free port pair for a cluster node")


class RedisClusterServers:
    """A three-node Redis Cluster (no replicas), slots split evenly, for the cluster tests."""

    def __init__(self, directory: Path) -> None:
        self.binary = require_redis_server()
        self.directory = directory
        self.ports = [_free_cluster_port() for _ in range(3)]
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> None:
        for port in self.ports:
            node = self.directory / str(port)
            node.mkdir(parents=True, exist_ok=True)
            command = [
                self.binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--dir", str(node),
                "--cluster-enabled", "yes",
                "--cluster-config-file", "nodes.conf",
                "--save", "",
                "--appendonly", "no",
                "--logfile", str(node / "redis.log"),
            ]  # fmt: skip
            self.processes.append(
                subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        clients = [redis.Redis(port=p, socket_timeout=2, socket_connect_timeout=2) for p in self.ports]
        deadline = time.monotonic() + 20
        for client in clients:
            while True:
                try:
                    client.ping()
                    break
                except redis.exceptions.ConnectionError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("a cluster node did not answer PING") from None
                    time.sleep(0.05)
        bounds = [0, 5461, 10923, 16384]
        for i, client in enumerate(clients):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", bounds[i], bounds[i + 1] - 1)
        for port in self.ports[1:]:
            clients[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)
        while not all(b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO") for c in clients):
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not become ok")
            time.sleep(0.1)
        for client in clients:
            client.close()

    def flush(self) -> None:
        for port in self.ports:
            client = redis.Redis(port=port)
            client.flushall()
            client.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        self.processes = []
