"""One writer per run folder: an exclusive flock on RUN_DIR/bench.lock.

`bench run` and `bench score` hold it while they write. The OS releases it when the
process ends, however it ends (crash, SIGKILL), so a stale lock never blocks a resume.
The file keeps the holder's PID so the refusal can name it; it is never deleted
(deleting a lock file another process has open would let a third one in).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from bench.errors import BenchError

LOCK = "bench.lock"


class RunFolderBusy(BenchError):
    """Another process holds the run folder (exit code 2)."""


def _holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        if text:
            return text
    return "an unknown process"


def _acquire(run_dir: Path, what: str) -> int:
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        raise RunFolderBusy(
            f"{run_dir} is in use by {holder}; wait for it to finish (or stop it) before "
            f"`bench {what}` uses this folder"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"PID {os.getpid()} (bench {what})\n".encode(), 0)
    return fd


@contextlib.contextmanager
def run_folder_lock(run_dir: Path, what: str) -> Iterator[None]:
    """Hold the folder's lock for the block; RunFolderBusy at once if another process has it."""
    fd = _acquire(run_dir, what)
    try:
        yield
    finally:
        os.close(fd)  # releases the flock


def check_run_folder_free(run_dir: Path, what: str) -> None:
    """Fail early (before Hydra writes into the folder) if another process holds it."""
    if (run_dir / LOCK).is_file():
        os.close(_acquire(run_dir, what))
