"""Stop paying when results cannot be stored: the first write failure stops dispatch, cancels
what is in flight, leaves a consistent journal and no .tmp files, and exits 1 with one line.

Money is counted by the emulator (jobs it billed), on 127.0.0.1.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs
from test_runner import run_in_process

from bench.emulators import openai_compat
from bench.store import RunStore, StoreWriteError

CONCURRENCY = 4
MAX_PENDING = 2


def aiml_overrides(url: str, *extra: str) -> list[str]:
    return [
        "targets=[aimlapi:flux/schnell]",
        f"providers.aimlapi.base_url={url}",
        f"providers.aimlapi.api_key_env={KEY_ENV}",
        f"providers.aimlapi.concurrency={CONCURRENCY}",
        "sweep=quick",
        "metrics=off",
        "report.write=false",
        "report.print_summary=false",
        "runner.progress=off",
        *extra,
    ]


class DiskFullAfter(RunStore):
    """A store whose disk fills up after `lines` journal lines: the failing write gets half a
    line out (as a real ENOSPC mid-write does) and then raises."""

    def __init__(self, run_dir: Path, lines: int) -> None:
        super().__init__(run_dir, max_pending_writes=MAX_PENDING)
        self.room_for = lines
        self.written = 0

    def _append_journal(self, fd: int, data: bytes) -> None:
        lines = data.count(b"\n")
        if self.written + lines > self.room_for:
            os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        super()._append_journal(fd, data)
        self.written += lines


def journal_is_consistent(run_dir: Path) -> int:
    data = (run_dir / "journal.jsonl").read_bytes()
    assert data == b"" or data.endswith(b"\n")
    lines = data.splitlines()
    assert all(json.loads(line) for line in lines)
    return len(lines)


def test_disk_full_stops_dispatch_within_the_requests_in_flight(
    tmp_path: Path, bench_cfg: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    run_dir = tmp_path / "r"
    with emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (url, emu):
        store = DiskFullAfter(run_dir, lines=5)
        with pytest.raises(StoreWriteError, match="No space left"):
            run_in_process(bench_cfg(aiml_overrides(url, "prompts.n=60")), store)
        billed = len(emu.billed)
    # The half line was cut back: the journal holds exactly the lines written before the failure
    # (up to 5; a batch of several lines that would pass 5 fails whole).
    assert journal_is_consistent(run_dir) == store.written
    assert 0 < store.written <= 5
    # Paid for: what was stored, what waited for the disk, and what held a provider slot.
    assert billed <= store.written + MAX_PENDING + CONCURRENCY
    assert billed < 60  # of the 60 planned
    assert not list(run_dir.rglob("*.tmp"))


def test_a_file_size_limit_mid_run_exits_1_with_one_line(tmp_path: Path) -> None:
    """A real failing disk: the child process may not write files over 40 kB (RLIMIT_FSIZE)."""
    run_dir = tmp_path / "r"
    limit = 40_000  # the journal (~2 kB a line) hits it after some twenty requests

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    with emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (url, emu):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from bench.cli import main; sys.exit(main())",
                "run",
                *aiml_overrides(url, "sweep.seeds=[1,2,3,4,5,6,7,8]"),
                f"results_dir={tmp_path}",
                "run_name=r",
            ],
            env={**os.environ, KEY_ENV: KEY},
            preexec_fn=limit_file_size,
            capture_output=True,
            text=True,
            timeout=300,
        )
        billed = len(emu.billed)
    assert done.returncode == 1, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("bench: cannot write results to") and "File too large" in lines[0]
    assert "Logging error" not in done.stderr + done.stdout and "Traceback" not in done.stderr
    stored = journal_is_consistent(run_dir)
    assert 0 < stored < 96
    assert billed < 96  # dispatch stopped (the bound itself is asserted in the test above)
    assert not list(run_dir.rglob("*.tmp"))
