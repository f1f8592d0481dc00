"""What a user sees on the terminal: each caveat once, no libraries' chatter, unknown cost said
as unknown, names that tell multirun jobs apart, and one line naming the real cause.

Each test reads the captured output of the command as a user would run it.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.cli import main
from bench.cli.hydra_config import FOLDER_NAME_MAX, slug
from bench.config import parse_config
from bench.emulators.chat import create_app
from bench.emulators.common import Knobs
from bench.emulators.serve import running
from bench.progress import cost_text
from bench.runner import RunSummary

BENCH = [sys.executable, "-c", "import sys; from bench.cli import main; sys.exit(main())"]
KEY = "sk-quiet-test-0123456789"
LOCAL = "targets=[local:shapes-fast,local:shapes-quality]"  # shapes-quality: the FID reference


def bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*BENCH, *args], capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )


@pytest.fixture(scope="module")
def chat_url() -> Iterator[str]:
    with running(create_app(Knobs(api_key=KEY))) as url:
        yield url


@pytest.fixture(scope="module")
def judged_run(chat_url: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A `bench run` with the default metrics (offline: CLIP and the preference models cannot load
    their weights; FID/KID on 2 images a group) and the judge; returns its folder and its output."""
    root = tmp_path_factory.mktemp("quiet")
    proc = bench(
        "run",
        LOCAL,
        "prompts.n=2",
        "sweep=quick",
        "runner.progress=off",
        "metrics.stats.n_boot=100",
        "metrics.judge.enabled=true",
        f"metrics.judge.base_url={chat_url}",
        f"results_dir={root}",
        "run_name=r",
        env={"OPENAI_API_KEY": KEY},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "r", proc.stdout + proc.stderr


def _lines_with(text: str, needle: str) -> list[str]:
    return [line for line in text.splitlines() if needle in line]


def test_each_metric_caveat_is_printed_once(judged_run: tuple[Path, str]) -> None:
    _, out = judged_run
    assert "MetricsWarning" not in out and "warnings.warn" not in out
    fid_small = _lines_with(out, "FID is biased upwards below n=2048")
    assert len(fid_small) == 1, fid_small  # the caveat is real here (2 images a group), and said once
    notes = [line.strip() for line in out.splitlines() if line.strip().startswith("note:")]
    assert len(notes) == len(set(notes)), notes


def test_no_library_chatter_in_a_run(judged_run: tuple[Path, str]) -> None:
    _, out = judged_run
    # open_clip's INFO lines (its tokenizer is loaded for the truncation flag even without weights)
    assert not re.search(r"Parsing tokenizer identifier|Attempting to load config|SimpleTokenizer", out), out
    assert "[root]" not in out
    assert "HTTP Request:" not in out  # httpx's line per judge request


def test_no_httpx_line_per_judge_request_in_bench_score(
    judged_run: tuple[Path, str], chat_url: str, tmp_path: Path
) -> None:
    run, _ = judged_run
    proc = bench(
        "score",
        str(run),
        "metrics.stats.n_boot=100",
        *(f"metrics.{name}.enabled=false" for name in ("clip", "fid", "kid", "pickscore", "hpsv2")),
        "metrics.judge.enabled=true",
        f"metrics.judge.base_url={chat_url}",
        env={"OPENAI_API_KEY": KEY, "T2I_BENCH_CACHE": str(tmp_path / "fresh-cache")},  # sent, not cached
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    sent = re.search(r"(\d+) requests sent", out)
    assert sent is not None and int(sent.group(1)) > 0, out  # the judge did talk to the endpoint
    assert "HTTP Request:" not in out and "httpx" not in out, out


def test_unknown_cost_is_said_unknown_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The local generator's price ($0) comes from the shipped table: without it nobody knows.
    args = [LOCAL, "prompts.n=1", "sweep=quick", "prices.shipped=[]", "metrics=off", "runner.progress=off"]
    assert main(["estimate", *args, f"results_dir={tmp_path}", "run_name=e"]) == 0
    estimate = capsys.readouterr()
    assert "cost unknown (2 requests unpriced)" in estimate.out and "$0.0000" not in estimate.out
    assert "prices.entries=" in estimate.err
    assert main(["run", *args, f"results_dir={tmp_path}", "run_name=r", "report.print_summary=false"]) == 0
    err = capsys.readouterr().err
    finished = _lines_with(err, "requests finished")
    assert len(finished) == 1 and "$0.0000" not in finished[0], finished
    assert "cost unknown" in finished[0]
    assert "no price known for local:shapes-fast, local:shapes-quality" in finished[0]
    assert "prices.entries=" in finished[0]


def test_partly_unknown_cost_keeps_the_known_part() -> None:
    summary = RunSummary(ok=3, cost_usd=0.5, cost_priced=2, unknown_cost={"akiio:z_image_turbo": 1})
    line = summary.line()
    assert "cost $0.5000 (+1 unpriced)" in line and "no price known for akiio:z_image_turbo" in line
    assert cost_text(0.0, 2, 0) == "$0.0000"  # a known $0 (a free local model) is said as $0
    assert cost_text(0.0, 0, 4) == "unknown (4 unpriced)"


def test_price_entries_add_to_the_shipped_table(bench_cfg: Any) -> None:
    shipped = parse_config(bench_cfg([])).prices
    fal_dev = shipped.lookup("fal", "fal-ai/flux/dev")
    assert fal_dev is not None and fal_dev.source_url != "ours"
    mine = (
        "prices.entries=[{provider: fal, model: fal-ai/flux/dev, unit: image, usd: 0.5, "
        "effective_date: '2026-12-01', source_url: ours}, {provider: kidjig, model: '*', unit: image, "
        "usd: 0.01, effective_date: '2026-12-01', source_url: ours}]"
    )
    table = parse_config(bench_cfg([mine])).prices
    assert len(table) == len(shipped) + 2  # added, nothing replaced
    assert table.lookup("fal", "fal-ai/flux/schnell") == shipped.lookup("fal", "fal-ai/flux/schnell")
    ours = table.lookup("fal", "fal-ai/flux/dev")
    assert ours is not None and ours.usd == 0.5 and ours.source_url == "ours"  # at equal specificity: ours
    assert table.lookup("kidjig", "anything") is not None
    assert len(parse_config(bench_cfg(["prices.shipped=[]", mine])).prices) == 2


def test_slug_cuts_long_names_with_a_hash_that_tells_them_apart() -> None:
    common = "sweep.negative_prompt=" + "blurry_" * 20
    a, b = slug(f"{common},targets=a"), slug(f"{common},targets=b")
    assert len(a) == len(b) == FOLDER_NAME_MAX and a != b
    assert slug("sweep.steps=[8]") == "sweep.steps=8"  # short names as before


def test_multirun_folder_names_keep_the_key_that_differs(tmp_path: Path) -> None:
    # A long override every job shares sorts before the one that differs (targets).
    negative = "blurry,low_quality,distorted,oversaturated,watermark,text,signature,frame,jpeg"
    code = main(
        [
            "run",
            "-m",
            "prompts.n=1",
            "sweep=quick",
            f"sweep.negative_prompt='{negative}'",
            "metrics=off",
            "report.print_summary=false",
            "runner.progress=off",
            f"results_dir={tmp_path}",
            "sweep_name=s",
            "targets=[local:shapes-fast],[local:shapes-quality]",
        ]
    )
    assert code == 0
    names = sorted(p.parent.name for p in (tmp_path / "sweeps" / "s").glob("*/records.parquet"))
    assert names == ["0-targets=local_shapes-fast", "1-targets=local_shapes-quality"], names


def _closed_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when this returns: connections are refused


def test_a_hub_id_with_the_hub_unreachable_says_so(tmp_path: Path) -> None:
    pytest.importorskip("diffusers", reason="the `local` extra is not installed")
    # The hub's address points at a closed port on this machine: no traffic leaves it.
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_loopback_port()}", "HF_HOME": str(tmp_path / "hf")}
    proc = bench("run", "targets=[diffusers:stabilityai/sd-turbo]", f"results_dir={tmp_path}/out", env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "is unreachable" in lines[0] and "not in the local Hugging Face cache" in lines[0]
    assert "model_index.json" not in lines[0]
    assert not (tmp_path / "out").exists()
