"""The README's "choose a model in five commands" block, run as written.

The block is read from README.md (the same function the docs build uses to show it), split into
commands, and each is run as a user would type it, in a fresh folder: `bench emulate ... &`
starts a server in the background, `export` sets variables, `bench view` is started, asked for
its page and stopped, and every other command must exit 0. Only the port numbers are changed, to
free ones (the README's fixed ports may be taken on a shared machine).
"""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from tools.docs_reference import readme_walkthrough

README = Path(__file__).resolve().parents[1] / "README.md"
BENCH = [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())"]
FIVE_STEPS = ("estimate", "run", "recommend", "view", "compare")


def commands(block: str) -> list[str]:
    """Shell lines of the block: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        code = line.split("  #", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if code:
            out.append(code)
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_free_ports(block: str) -> str:
    ports = sorted(set(re.findall(r"(?:127\.0\.0\.1:|--port )(\d{4,5})\b", block)))
    for port in ports:
        block = re.sub(rf"\b{port}\b", str(_free_port()), block)
    return block


def _wait_for_line(proc: subprocess.Popen[str], text: str) -> str:
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"{text!r} never printed; output: {''.join(seen)}")


@pytest.fixture
def background() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=30)


def test_readme_block_is_the_five_steps() -> None:
    steps = [c.split()[1] for c in commands(readme_walkthrough(README.read_text())) if c.startswith("bench ")]
    steps = [s for s in steps if s != "emulate"]
    # estimate, run, recommend, view, then the CI step: a run of the chosen model and the gate.
    assert steps == [*FIVE_STEPS[:4], "run", "compare"], steps


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written(tmp_path: Path, background: list[subprocess.Popen[str]]) -> None:
    block = with_free_ports(readme_walkthrough(README.read_text()))
    env = dict(os.environ)
    ran: list[str] = []
    for command in commands(block):
        argv = shlex.split(command.removesuffix("&").strip())
        if argv[0] == "export":
            env.update(a.split("=", 1) for a in argv[1:])
            continue
        assert argv[0] == "bench", f"the walkthrough runs only bench commands: {command}"
        step = argv[1]
        if command.endswith("&") or step == "view":
            proc = subprocess.Popen(
                [*BENCH, *argv[1:]],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            background.append(proc)
            if step == "emulate":
                _wait_for_line(proc, "emulating")
            else:
                port = argv[argv.index("--port") + 1]
                _wait_for_page(f"http://127.0.0.1:{port}/", proc)
                proc.terminate()
                proc.wait(timeout=30)
        else:
            done = subprocess.run(
                [*BENCH, *argv[1:]], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
        ran.append(step)
    assert ran == ["emulate", "emulate", "estimate", "run", "recommend", "view", "run", "compare"]

    study = tmp_path / "results" / "choose"
    records = pd.read_parquet(study / "records.parquet")
    ok = records[records["status"] == "ok"]
    assert len(ok) == len(records) > 0 and ok["emulated"].all()
    # the quality signal of step 2: the judge scored every image
    assert ok["judge_adherence"].notna().all()
    assert (study / "report.html").is_file()
    candidate = pd.read_parquet(tmp_path / "results" / "candidate" / "records.parquet")
    assert not candidate["cached"].any()  # the CI step sent its requests live
    verdict = (tmp_path / "results" / "candidate" / "gate.md").read_text().splitlines()[0]
    assert "PASS" in verdict, verdict


def _wait_for_page(url: str, proc: subprocess.Popen[str]) -> None:
    for _ in range(300):
        if proc.poll() is not None:
            raise AssertionError(f"bench view exited {proc.returncode}")
        try:
            answer = httpx.get(url, timeout=2)
        except httpx.TransportError:
            time.sleep(0.2)
            continue
        assert answer.status_code == 200 and "<html" in answer.text.lower()
        return
    raise AssertionError(f"bench view never served {url}")
