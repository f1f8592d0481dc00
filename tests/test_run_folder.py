"""The run folder holds: one writer at a time, a journal that survives torn and garbage lines,
and a damaged records.parquet that is reported (and rebuilt), not a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.main import main
from bench.emulators import openai_compat

SMOKE = [
    "experiment=smoke",
    "sweep.seeds=[0,1,2]",
    "metrics=off",
    "runner.progress=off",
    "report.write=false",
]


def bench(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())", *args]


def journal_lines(run_dir: Path) -> list[bytes]:
    path = run_dir / "journal.jsonl"
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def aiml_args(url: str, run_dir: Path, *extra: str) -> list[str]:
    return [
        "run",
        "targets=[aimlapi:flux/schnell]",
        f"providers.aimlapi.base_url={url}",
        f"providers.aimlapi.api_key_env={KEY_ENV}",
        "providers.aimlapi.concurrency=1",
        "sweep=quick",
        *SMOKE[2:],
        f"results_dir={run_dir.parent}",
        f"run_name={run_dir.name}",
        *extra,
    ]


# ---- one writer per folder ----------------------------------------------------------------
class HeldAfterFirst:
    """ASGI wrapper: the first generation goes through, the rest wait until `release` is set,
    so the first run is certainly still running (and holding the folder) while others try."""

    def __init__(self, app: Any) -> None:
        self.app, self.state = app, app.state
        self.release = threading.Event()
        self.posts = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            self.posts += 1
            while self.posts > 1 and not self.release.is_set():
                await asyncio.sleep(0.01)
        await self.app(scope, receive, send)


def test_a_second_run_or_score_on_a_busy_folder_is_refused_naming_the_pid(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    env = {**os.environ, KEY_ENV: KEY}
    app = HeldAfterFirst(openai_compat.create_app(knobs(), profile="aimlapi"))
    with emulator(app) as (url, emu):
        first = subprocess.Popen(
            bench(*aiml_args(url, run_dir, "prompts.n=12")),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 120
        while len(journal_lines(run_dir)) < 1:
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first run made no progress"
            time.sleep(0.05)
        second = subprocess.run(
            bench(*aiml_args(url, run_dir, "prompts.n=12")),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        score = subprocess.run(
            bench("score", str(run_dir)), env=env, capture_output=True, text=True, timeout=120
        )
        app.release.set()
        _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    for refused in (second, score):
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and f"PID {first.pid}" in lines[0], refused.stderr
    # Only the first run sent anything: 12 requests, 12 generations billed.
    assert len(emu.billed) == 12
    df = pd.read_parquet(run_dir / "records.parquet")
    assert len(df) == 12 and (df.status == "ok").all() and df.request_key.is_unique


# ---- crash-consistent journal -----------------------------------------------------------
def smoke_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["run", *SMOKE, f"results_dir={tmp_path}", "run_name=r"])
    captured = capsys.readouterr()  # Hydra's log handler writes to stdout
    return code, captured.out + captured.err


def sent_and_stored(err: str) -> tuple[int, int]:
    import re

    m = re.search(r"(\d+) requests finished .*; (\d+) already stored", err)
    assert m, err
    return int(m.group(1)), int(m.group(2))


def finished_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, list[bytes]]:
    code, _ = smoke_run(tmp_path, capsys)
    assert code == 0
    return tmp_path / "r", journal_lines(tmp_path / "r")


def assert_nothing_lost(run_dir: Path, total: int) -> None:
    after = journal_lines(run_dir)
    assert len(after) == total and all(json.loads(line) for line in after)  # nothing fused
    df = pd.read_parquet(run_dir / "records.parquet")
    assert len(df) == total and (df.status == "ok").all() and df.request_key.is_unique


def test_a_torn_last_line_is_moved_aside_and_resume_appends_on_a_line_boundary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, lines = finished_run(tmp_path, capsys)
    total = len(lines)
    torn = lines[-1][: len(lines[-1]) // 2]  # the crash cut the last write in half
    (run_dir / "journal.jsonl").write_bytes(b"".join(lines[:-1]) + torn)

    code, err = smoke_run(tmp_path, capsys)
    assert code == 0
    assert sent_and_stored(err) == (1, total - 1)  # only the torn request is sent again
    assert (run_dir / "journal.jsonl.torn").read_bytes() == torn + b"\n"
    assert "cut off by a crash" in err
    assert_nothing_lost(run_dir, total)


def test_unreadable_middle_lines_are_reported_moved_and_only_they_are_redone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, lines = finished_run(tmp_path, capsys)
    total = len(lines)
    bad = {
        2: b"{not json at all\n",
        4: b'[{"request_key": "\xff\xfe bad utf-8", "status": "ok"}]\n',
        6: b'{"request_key": "right keys, wrong shape"}\n',
        7: b'[{"status": "ok"}]\n',  # no request_key: used to abort resume with a KeyError
    }
    for index, garbage in bad.items():
        lines[index] = garbage
    (run_dir / "journal.jsonl").write_bytes(b"".join(lines))

    # A read-only look names the lines too (report rebuilds never skip silently).
    from bench.store import RunStore

    assert len(RunStore(run_dir).finished_keys()) == total - len(bad)
    logged = capsys.readouterr().out  # Hydra's log handler (set up by the run above) writes to stdout
    assert all(f"line {i + 1}: unreadable" in logged for i in bad)

    code, err = smoke_run(tmp_path, capsys)
    assert code == 0
    assert sent_and_stored(err) == (len(bad), total - len(bad))
    assert "(line 3, 5, 7, 8) moved to journal.rejects.jsonl" in err
    assert (run_dir / "journal.rejects.jsonl").read_bytes() == b"".join(bad[i] for i in sorted(bad))
    assert_nothing_lost(run_dir, total)


# ---- a damaged records.parquet ------------------------------------------------------------
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_report_and_compare_on_a_broken_parquet_say_how_to_rebuild(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: str
) -> None:
    run_dir = tmp_path / "r"
    code, _ = smoke_run(tmp_path, capsys)
    assert code == 0
    parquet = run_dir / "records.parquet"
    good_rows = len(pd.read_parquet(parquet))
    data = parquet.read_bytes()
    parquet.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"not a parquet file" * 10)

    assert main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(parquet) in err and f"bench report --rebuild {run_dir}" in err

    assert main(["compare", str(run_dir), str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert str(parquet) in err and "--rebuild" in err and "Traceback" not in err

    assert main(["report", "--rebuild", str(run_dir)]) == 0
    df = pd.read_parquet(parquet)
    assert len(df) == good_rows and (df.status == "ok").all()
