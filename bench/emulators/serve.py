"""Run an emulator app on 127.0.0.1, on a free port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

STARTUP_TIMEOUT_S = 10.0


@contextmanager
def running(app: Any, port: int = 0) -> Iterator[str]:
    """Serve `app` while the block runs; yields its base URL, e.g. http://127.0.0.1:54321.

    The socket is bound here (port 0 = any free port), so the URL is known
    before uvicorn starts and two tests never race for a port.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", access_log=False, timeout_graceful_shutdown=1
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="emulator", daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        while not server.started:
            if not thread.is_alive() or time.monotonic() - started > STARTUP_TIMEOUT_S:
                raise RuntimeError(f"emulator did not start on {host}:{bound_port}")
            time.sleep(0.005)
        yield f"http://{host}:{bound_port}"
    finally:
        # force_exit: hung requests (fault=hang) must not hold the shutdown.
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=STARTUP_TIMEOUT_S)
        sock.close()
