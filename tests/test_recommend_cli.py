"""`bench recommend PATH` on real runs: its output, verdict.json, and its exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _report_runs import NOCOLOR_TARGETS, bench, bench_in_process, make_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("recommend_runs")
    return {"base": make_run(root, "base"), "nocolor": make_run(root, "nocolor", NOCOLOR_TARGETS)}


def test_recommend_prints_the_verdict_and_writes_verdict_json(runs: dict[str, Path]) -> None:
    proc = bench("recommend", str(runs["base"]))
    print(proc.stdout, proc.stderr)
    assert proc.returncode in (0, 1), proc.stderr
    data = json.loads((runs["base"] / "verdict.json").read_text())
    assert data["signal"] == "clip" and data["fingerprint"] == "test-oracle:saturation:0000"
    assert data["exit_code"] == proc.returncode
    assert "Verdict:" in proc.stdout and all(len(line) <= 120 for line in proc.stdout.splitlines())


def test_a_model_that_drops_colour_is_not_recommended(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    proc = bench_in_process(capsys, "recommend", str(runs["nocolor"]))  # the exit codes: the other tests
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads((runs["nocolor"] / "verdict.json").read_text())
    assert data["recommended"] == data["best"] == "local:shapes-quality steps=4 cfg=2 128x128"
    assert "local:shapes-fast steps=4 cfg=2 128x128" not in data["non_inferior"]


def test_constraints_that_exclude_every_group_exit_1(runs: dict[str, Path]) -> None:
    proc = bench("recommend", str(runs["nocolor"]), "--max-p90-latency", "0.000001")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "constraints exclude every group" in proc.stdout
    assert json.loads((runs["nocolor"] / "verdict.json").read_text())["status"] == "excluded"


def test_bad_input_exits_2_and_leaves_verdict_json_alone(runs: dict[str, Path], tmp_path: Path) -> None:
    before = (
        (runs["nocolor"] / "verdict.json").read_bytes()
        if (runs["nocolor"] / "verdict.json").exists()
        else b""
    )
    bad = bench("recommend", str(runs["nocolor"]), "--max-refusal-rate", "5")
    assert bad.returncode == 2 and "--max-refusal-rate=5.0" in bad.stderr
    assert bench("recommend", str(tmp_path / "nothing")).returncode == 2
    after = (
        (runs["nocolor"] / "verdict.json").read_bytes()
        if (runs["nocolor"] / "verdict.json").exists()
        else b""
    )
    assert before == after
