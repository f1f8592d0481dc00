"""Run the viewer on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from bench.metrics.errors import FingerprintMismatch
from bench.report.runs import NotARunFolder
from bench.view.app import create_app

EXIT_OK, EXIT_USAGE = 0, 2


def serve(paths: list[Path], port: int) -> int:
    try:
        app = create_app(paths)
    except (NotARunFolder, FingerprintMismatch) as exc:
        print(f"bench view: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(
        f"bench view: serving {', '.join(map(str, paths))} on http://127.0.0.1:{port}/ (Ctrl-C stops)",
        file=sys.stderr,
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    return EXIT_OK
