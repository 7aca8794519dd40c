"""Run the app with uvicorn: in the foreground (`rag serve`) or in a thread beside another server (`--ui`)."""

from __future__ import annotations

import logging
import sys
import threading
import time

import uvicorn

from rag import RagService
from rag.api.app import create_app, warm_up
from rag.api.auth import KeyRing, check_bind
from rag.api.ops import access_log


def build_server(
    svc: RagService, host: str, port: int, *, log_level: str = "info", access_log: bool = False
) -> uvicorn.Server:
    """Checks the keys and the bind address, warms the service, and returns a uvicorn server for the app.

    Raises ConfigError (no key off loopback, a bad key file) or RagIndexError (the index cannot be opened).
    """
    keys = KeyRing.from_settings(svc.settings)
    check_bind(host, keys)
    warm_up(svc)
    app = create_app(svc, keys, warm=True)
    log_requests(log_level)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,  # off: rag.api.access writes one JSON line per request instead
        server_header=False,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def log_requests(level: str) -> None:
    """One JSON line per request on standard error (logger rag.api.access), unless the level is above info."""
    if not access_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_log.addHandler(handler)
        access_log.propagate = False  # not again through the CLI's root handler
    access_log.setLevel(logging.INFO if level.lower() in ("info", "debug", "trace") else logging.WARNING)


def start_in_thread(server: uvicorn.Server, timeout: float = 30.0) -> threading.Thread:
    """Start the server on a daemon thread and wait until it listens (signals stay with the main thread)."""
    thread = threading.Thread(target=server.run, name="rag-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API did not start on {server.config.host}:{server.config.port}")
        time.sleep(0.02)
    return thread


def stop(server: uvicorn.Server, thread: threading.Thread, timeout: float = 10.0) -> None:
    server.should_exit = True
    thread.join(timeout)
