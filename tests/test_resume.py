"""Crash safety: SIGKILL mid-run loses at most what was in flight; Ctrl-C stops cleanly; re-runs finish."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

SLOW_TARGET = 'targets=[{target:"local:shapes-fast",params:{extra_latency_s:0.15}}]'
ARGS = [
    "experiment=smoke",
    "prompts.n=null",
    "sweep.seeds=[0,1,2]",
    SLOW_TARGET,
    "runner.progress=log",
    "metrics=off",
]
TOTAL = 12 * 3


def bench(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())", *args]


def journal_lines(run_dir: Path) -> int:
    path = run_dir / "journal.jsonl"
    return path.read_text().count("\n") if path.exists() else 0


def start_and_wait(run_dir: Path, min_lines: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        bench("run", *ARGS, f"results_dir={run_dir.parent}", f"run_name={run_dir.name}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while journal_lines(run_dir) < min_lines:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "run made no progress"
        time.sleep(0.05)
    return proc


def rerun(run_dir: Path) -> tuple[int, int]:
    """Re-run the same sweep; returns (requests sent, results already stored) from its summary line."""
    done = subprocess.run(
        bench("run", *ARGS, f"results_dir={run_dir.parent}", f"run_name={run_dir.name}"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    m = re.search(r"(\d+) requests finished .*; (\d+) already stored", done.stderr)
    assert m, done.stderr
    return int(m.group(1)), int(m.group(2))


def test_sigkill_loses_only_in_flight_and_rerun_sends_only_the_rest(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = start_and_wait(run_dir, min_lines=6)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    kept = journal_lines(run_dir)
    assert 6 <= kept < TOTAL
    sent, stored = rerun(run_dir)
    assert stored == kept  # nothing finished before the kill was lost...
    assert sent == TOTAL - kept  # ...and nothing stored was requested again
    df = pd.read_parquet(run_dir / "records.parquet")
    assert len(df) == TOTAL and (df.status == "ok").all()
    assert df.request_key.is_unique
    assert all((run_dir / p).is_file() for p in df.image_path)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_stops_cleanly_and_keeps_finished_work(tmp_path: Path, sig: signal.Signals) -> None:
    run_dir = tmp_path / "run"
    proc = start_and_wait(run_dir, min_lines=4)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b"re-run the same command" in err
    df = pd.read_parquet(run_dir / "records.parquet")  # written on the way out
    kept = journal_lines(run_dir)
    assert len(df) == kept and 4 <= kept < TOTAL
    sent, stored = rerun(run_dir)
    assert (sent, stored) == (TOTAL - kept, kept)


def test_a_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    from bench.store import RunStore

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "journal.jsonl").write_text(
        '[{"request_key": "a", "status": "ok"}]\n[{"request_key": "b", "status": "error"}]\n[{"request_key": "c", "sta'
    )
    assert RunStore(run_dir).finished_keys() == {"a"}
    os.sync()


def test_a_write_failure_mid_run_stops_with_one_line_and_keeps_the_journal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bench.cli import main

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "images").write_text("a file where the image folder should be")  # every image write fails
    code = main(
        [
            "run",
            "experiment=smoke",
            "metrics=off",
            "runner.progress=off",
            f"results_dir={tmp_path}",
            "run_name=run",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot write results" in err and "finished requests are kept" in err
    assert journal_lines(run_dir) == 0  # nothing was claimed as finished that is not on disk
