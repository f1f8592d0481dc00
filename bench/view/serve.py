"""Run the viewer on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from bench.local_server import AllowedHost, bind_loopback
from bench.metrics.errors import FingerprintMismatch
from bench.report.runs import NotARunFolder
from bench.view.app import create_app

EXIT_OK, EXIT_USAGE = 0, 2


def serve(paths: list[Path], port: int, extra_hosts: tuple[AllowedHost, ...] = ()) -> int:
    try:
        app = create_app(paths, extra_hosts)
    except (NotARunFolder, FingerprintMismatch) as exc:
        print(f"bench view: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # Bind here, so the URL printed is the real one (also with --port 0) and a busy port is one line.
    try:
        sock = bind_loopback(port)
    except OSError as exc:
        print(
            f"bench view: --port {port}: {exc.strerror}; pick another (--port 0: any free port)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    bound = sock.getsockname()[1]
    print(
        f"bench view: serving {', '.join(map(str, paths))} at http://127.0.0.1:{bound}/ (Ctrl-C stops)",
        file=sys.stderr,
    )
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return EXIT_OK
