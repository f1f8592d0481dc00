"""What a 200 MB vote body costs `bench rate`: its resident memory before and after one, and the answer.

Starts `bench rate RUN --port 0` as a user would (a subprocess, so its memory is its own), sends
POST /api/vote with a 200 MiB body from its own origin over a plain socket (all of it, unless the
server closes first), then reads /proc/PID/status (VmRSS, VmHWM: the peak) and checks that the server
still answers. Linux only (/proc).

Run: PYTHONPATH=$PWD .venv/bin/python tests/benchmarks/bench_local_server_body.py RUN_FOLDER [--mib 200]
(RUN_FOLDER: any run folder with two targets, e.g. `bench run targets=[local:shapes-fast,local:shapes-quality]`).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BENCH = [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())"]


def memory_mib(pid: int) -> tuple[float, float]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"VmRSS:\s+(\d+) kB", status)[1])  # type: ignore[index]
    peak = int(re.search(r"VmHWM:\s+(\d+) kB", status)[1])  # type: ignore[index]
    return rss / 1024, peak / 1024


def post_big_body(port: int, mib: int) -> tuple[str, int]:
    """Send the whole body unless the server stops us; return its status line and the bytes sent."""
    head = (
        f"POST /api/vote HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {mib * 2**20}\r\n\r\n"
    )
    block = b'{"pad": "' + b"x" * (2**20 - 9)
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(head.encode())
        try:
            for _ in range(mib):
                sock.sendall(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b"(connection reset)"
    return answer.split(b"\r\n", 1)[0].decode(errors="replace"), sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--mib", type=int, default=200)
    ns = parser.parse_args()
    proc = subprocess.Popen(
        [*BENCH, "rate", str(ns.run), "--port", "0", "--rater", "bench"],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if not match:
            print(f"bench rate did not start: {line!r}", file=sys.stderr)
            return 1
        port = int(match[1])
        for _ in range(600):  # the socket is bound before uvicorn listens on it
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        before, peak_before = memory_mib(proc.pid)
        status, sent = post_big_body(port, ns.mib)
        after, peak = memory_mib(proc.pid)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
            still_up = sock.recv(64).split(b"\r\n", 1)[0].decode()
        print(f"body declared: {ns.mib} MiB; sent before the server stopped it: {sent / 2**20:.1f} MiB")
        print(f"answer: {status}; afterwards GET /: {still_up}")
        print(
            f"server RSS: {before:.0f} MiB before, {after:.0f} MiB after (+{after - before:.0f}); "
            f"peak {peak_before:.0f} MiB before, {peak:.0f} MiB after (+{peak - peak_before:.0f})"
        )
        return 0
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
