"""``dispatch serve``: the HTTP API on uvicorn.

Over the embedded in-memory state, one process holds the state, so it runs one worker (more
would be more cities, not more capacity) and ``--workers`` above 1 is refused. With
``DISPATCH_REDIS_URL`` set, ``--workers N`` runs N uvicorn worker processes over the shared
state; one of them at a time (the lease holder) runs the background tick. ``python -m api.serve``
runs the same function with the same options. What one connection may cost (header size and
count, read timeout, keep-alive) is bounded as :mod:`api.server_limits` says. With several
workers, metrics are kept in prometheus_client's multiprocess mode (a fresh
``PROMETHEUS_MULTIPROC_DIR`` unless one is set; a directory you set yourself should be emptied
between runs), so a scrape shows every worker's totals.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence

__all__ = ["add_serve_arguments", "main", "run_serve", "serve"]


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    tick_interval_s: float | None = None,
    log_level: str = "info",
    access_log: bool = False,
    workers: int = 1,
) -> int:
    """Build the app from the environment (``DISPATCH_*``) and serve it until interrupted.

    ``tick_interval_s`` overrides ``DISPATCH_TICK_INTERVAL_S``. Returns the exit status: 2 when
    the configuration is refused (no API keys, a short key, several workers without Redis ...),
    with the reason on stderr.
    """
    import uvicorn
    from pydantic import ValidationError

    from api.app import create_app
    from api.server_limits import uvicorn_options
    from api.settings import Settings

    try:
        settings = Settings() if tick_interval_s is None else Settings(tick_interval_s=tick_interval_s)
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        print(f"dispatch serve: configuration refused: {reasons}", file=sys.stderr)
        return 2
    if workers < 1:
        print(f"dispatch serve: --workers must be at least 1, got {workers}", file=sys.stderr)
        return 2
    if workers > 1 and settings.redis_url is None:
        print(
            f"dispatch serve: --workers {workers} needs shared state: set DISPATCH_REDIS_URL "
            "(in-memory state lives in one process, so without Redis run one worker)",
            file=sys.stderr,
        )
        return 2
    # the h11 protocol of every worker reads it from the environment (api/server_limits.py)
    os.environ["DISPATCH_REQUEST_READ_TIMEOUT_S"] = str(settings.request_read_timeout_s)
    if workers == 1:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            log_level=log_level,
            access_log=access_log,
            **uvicorn_options(),
        )
        return 0
    # Each worker process builds its own app from the environment (no state crosses processes).
    # prometheus_client's multiprocess mode is chosen when a process imports it: the workers
    # inherit the directory, and each scrape adds up every worker's counts.
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="dispatch-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    if tick_interval_s is not None:
        os.environ["DISPATCH_TICK_INTERVAL_S"] = str(tick_interval_s)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        workers=workers,
        **uvicorn_options(),
    )
    return 0


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``dispatch serve``."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    parser.add_argument(
        "--tick-interval",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between background dispatch ticks, 0 = off (default: DISPATCH_TICK_INTERVAL_S or 10)",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level",
    )
    parser.add_argument("--access-log", action="store_true", help="log every request")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes (default 1); more than 1 needs DISPATCH_REDIS_URL (shared state)",
    )


def run_serve(args: argparse.Namespace) -> int:
    """The ``run`` of the ``serve`` subparser: ``serve.set_defaults(run=run_serve)``."""
    return serve(
        args.host,
        args.port,
        tick_interval_s=args.tick_interval,
        log_level=args.log_level,
        access_log=args.access_log,
        workers=args.workers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dispatch serve", description="Serve the dispatch HTTP API.")
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
