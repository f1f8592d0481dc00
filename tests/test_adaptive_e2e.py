"""study.mode=adaptive end to end on the offline generator and the in-process emulated judge.

Four contenders: shapes-quality at 8 and 12 steps ($40/1k), shapes-fast ($2/1k, draws as well as
quality for the judge) and shapes-nocolor ($1/1k, draws every colour gray: clearly worse on a suite
of colour prompts). The study must drop nocolor, settle on shapes-fast before the suite's end, and
send fewer requests than the grid (4 x 64). A second study is killed with SIGKILL in the middle of
its second round and resumed: it must reach the same rounds and drops and never send a request twice.

Requests are counted in the run folder's journal (one line per finished request): the offline
generator answers in-process, not over HTTP, so there is no server to count at.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from _report_runs import BENCH, bench

FAST = "local:shapes-fast steps=8 cfg=7 256x256"
NOCOLOR = "local:shapes-nocolor steps=8 cfg=7 256x256"
PROMPTS = 64
PRICES = (
    'prices.entries=[{provider:local,model:"shapes-quality",unit:image,usd:0.04,effective_date:"2026-12-06",'
    'source_url:"test price"},{provider:local,model:"shapes-nocolor",unit:image,usd:0.001,'
    'effective_date:"2026-12-06",source_url:"test price"},{provider:local,model:"*",unit:image,usd:0.002,'
    'effective_date:"2026-12-06",source_url:"test price"}]'
)


def _prompts(path: Path) -> Path:
    colors = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
    objects = ["apple", "car", "umbrella", "chair", "ball", "bird", "star", "house"]
    backgrounds = ["white", "blue", "green", "yellow", "black", "gray"]
    items = []
    for i, (c, o) in enumerate(itertools.product(colors, objects)):
        bg = backgrounds[i % len(backgrounds)]
        items.append({"id": f"q{i:03d}", "category": "color", "text": f"a {c} {o} on a {'gray' if bg == c else bg} background"})  # fmt: skip
    path.write_text(yaml.safe_dump({"suite": "adaptive-e2e", "prompts": items}), encoding="utf-8")
    return path


def _args(root: Path, name: str) -> list[str]:
    return [
        "run",
        "targets=[local:shapes-quality,{target:local:shapes-quality,name:quality-12,sweep:{steps:[12]}},"
        "local:shapes-fast,local:shapes-nocolor]",
        "sweep=default", "sweep.steps=[8]", "sweep.guidance=[7.0]", "sweep.seeds=[0]", 'sweep.sizes=["256x256"]',
        "metrics.clip.enabled=false", "metrics.fid.enabled=false", "metrics.kid.enabled=false",
        "metrics.pickscore.enabled=false", "metrics.hpsv2.enabled=false", "metrics.judge.modes=[adherence]",
        "report.n_boot=200", "report.decide.margins.judge_adherence=0.2", PRICES,
        f"prompts.path={root / 'prompts.yaml'}", "study.mode=adaptive", f"results_dir={root}", f"run_name={name}",
    ]  # fmt: skip


def _journal_keys(run_dir: Path) -> list[str]:
    keys = []
    for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines():
        rows = json.loads(line)
        keys.append(rows[0]["request_key"])
    return keys


def _looks(run_dir: Path) -> list[dict[str, object]]:
    lines = (run_dir / "adaptive.jsonl").read_text(encoding="utf-8").splitlines()
    looks = [json.loads(x) for x in lines if json.loads(x).get("kind") == "look"]
    return [{k: x[k] for k in ("round", "prompts", "alive", "settled", "recommended")} | {
        "drops": [(d["group"], d["round"], d["kind"], d["against"]) for d in x["drops"]]} for x in looks]  # type: ignore[attr-defined]  # fmt: skip


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("adaptive_e2e")
    _prompts(path / "prompts.yaml")
    return path


@pytest.fixture(scope="module")
def straight(root: Path) -> Path:
    proc = bench(*_args(root, "straight"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "straight"


def test_adaptive_drops_the_worse_model_names_the_cheap_one_and_sends_fewer_requests(straight: Path) -> None:
    verdict = json.loads((straight / "verdict.json").read_text())
    trace = verdict["adaptive"]
    assert trace["status"] == "settled" and trace["recommended"] == FAST
    assert trace["prompts"] < PROMPTS
    dropped = [d for r in trace["rounds"] for d in r["drops"]]
    assert [(d["group"], d["kind"]) for d in dropped] == [(NOCOLOR, "quality")]
    assert dropped[0]["high"] < -0.2  # its interval lay beyond the margin when it was dropped
    keys = _journal_keys(straight)
    assert len(keys) == len(set(keys)) < 4 * PROMPTS
    spent = sum(trace["spent_usd"].values())
    assert spent < trace["grid_usd"]
    page = (straight / "report.html").read_text()
    assert "<section id='adaptive'>" in page and "dropped" in page and NOCOLOR in page
    assert "Adaptive study: settled after" in page


def test_a_sigkill_mid_round_resumes_at_the_same_round_and_pays_nothing_twice(
    root: Path, straight: Path
) -> None:
    run_dir = root / "killed"
    env = {**os.environ}
    proc = subprocess.Popen(
        [*BENCH, *_args(root, "killed")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    first_round = 4 * 10
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            looks = (
                (run_dir / "adaptive.jsonl").read_text().count('"kind": "look"')
                if (run_dir / "adaptive.jsonl").exists()
                else 0
            )
            lines = (
                (run_dir / "journal.jsonl").read_text().count("\n")
                if (run_dir / "journal.jsonl").exists()
                else 0
            )
            if looks == 1 and lines >= first_round + 5:
                break
            assert proc.poll() is None, "the study finished before it could be killed mid-round"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = len(_journal_keys(run_dir))
    assert first_round < killed_at < 4 * 30  # inside round 2
    resumed = bench(*_args(root, "killed"))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    keys = _journal_keys(run_dir)
    assert len(keys) == len(set(keys))  # no request was sent twice
    assert sorted(keys) == sorted(_journal_keys(straight))  # the same requests as the uninterrupted study
    assert _looks(run_dir) == _looks(straight)  # the same rounds, drops and recommendation


def test_a_bad_study_setting_is_refused_before_any_request(tmp_path: Path) -> None:
    proc = bench("run", "study.mode=race", f"results_dir={tmp_path}", "run_name=bad")
    assert proc.returncode == 2
    assert "study.mode" in proc.stderr and "race" in proc.stderr and "adaptive" in proc.stderr
    assert not (tmp_path / "bad" / "journal.jsonl").exists()
    proc = bench(
        "run", "study.mode=adaptive", "study.round_prompts=0", f"results_dir={tmp_path}", "run_name=bad"
    )
    assert proc.returncode == 2 and "study.round_prompts" in proc.stderr


def test_max_cost_usd_covers_every_round_and_the_study_says_it_stopped_for_it(root: Path) -> None:
    """Round 1 costs $0.83 (10 prompts x $0.04 x 2 + $0.002 + $0.001): a $1 cap stops the study in round 2."""
    proc = bench(*_args(root, "capped"), "max_cost_usd=1.0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = root / "capped"
    lines = [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines()]
    costs = [float(rows[0].get("cost_usd") or 0.0) for rows in lines]
    spent = sum(c for c in costs if c == c)  # skipped requests (not sent for the budget) have no cost
    assert 0.83 <= spent <= 1.0
    trace = json.loads((run_dir / "verdict.json").read_text())["adaptive"]
    assert trace["stopped_because"] == "budget" and trace["status"] != "settled"
    assert "budget" in proc.stdout
