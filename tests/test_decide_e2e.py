"""End to end on the offline generator and the in-process emulated judge: two studies, two verdicts.

Study 1: the expensive model (shapes-quality, priced here at $40/1k) against a cheap one that draws
every colour gray (shapes-nocolor, $2/1k): the judge's colour questions fail for the cheap one, so
the expensive model is recommended. Study 2: the same expensive model against a cheap one that
follows the prompts as well (shapes-fast): the cheap one is recommended. The judge is the chat
emulator measuring pixels (never the generator's own record of what it drew), labelled so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _report_runs import bench

PRICES = (
    'prices.entries=[{provider:local,model:"shapes-quality",unit:image,usd:0.04,effective_date:"2026-12-06",'
    'source_url:"test price"},{provider:local,model:"*",unit:image,usd:0.002,effective_date:"2026-12-06",'
    'source_url:"test price"}]'
)
FAST = [
    "sweep=default",
    "sweep.steps=[8]",
    "sweep.guidance=[7.0]",
    "sweep.seeds=[0,1]",
    'sweep.sizes=["256x256"]',
    "metrics.clip.enabled=false",
    "metrics.fid.enabled=false",
    "metrics.kid.enabled=false",
    "metrics.pickscore.enabled=false",
    "metrics.hpsv2.enabled=false",
    "metrics.judge.modes=[adherence]",
    "report.write=false",  # the verdict comes from `bench recommend` below (plots are slow on a loaded machine)
    PRICES,
]


def _study(root: Path, name: str, cheap: str) -> tuple[dict[str, object], str]:
    proc = bench(
        "run", f"targets=[local:shapes-quality,{cheap}]", *FAST, f"results_dir={root}", f"run_name={name}"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rec = bench("recommend", str(root / name))
    assert rec.returncode in (0, 1) and (root / name / "verdict.json").is_file(), (
        rec.stdout + rec.stderr[-3000:]
    )
    return json.loads((root / name / "verdict.json").read_text()), rec.stdout


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, object], str]]:
    root = tmp_path_factory.mktemp("decide_e2e")
    return {
        "better": _study(root, "expensive-is-better", "local:shapes-nocolor"),
        "as_good": _study(root, "cheap-is-as-good", "local:shapes-fast"),
    }


def test_the_expensive_model_is_recommended_when_it_is_truly_better(
    studies: dict[str, tuple[dict[str, object], str]],
) -> None:
    verdict, stdout = studies["better"]
    assert verdict["status"] == "recommended" and verdict["signal"] == "judge_adherence"
    assert verdict["recommended"] == verdict["best"] == "local:shapes-quality steps=8 cfg=7 256x256"
    assert "local:shapes-nocolor steps=8 cfg=7 256x256" not in verdict["non_inferior"]  # type: ignore[operator]
    assert verdict["emulated"] is True and "EMULATED JUDGE" in stdout


def test_the_cheap_model_is_recommended_when_it_is_as_good(
    studies: dict[str, tuple[dict[str, object], str]],
) -> None:
    verdict, stdout = studies["as_good"]
    assert verdict["status"] == "recommended", verdict["reason"]
    assert verdict["recommended"] == "local:shapes-fast steps=8 cfg=7 256x256"
    assert verdict["best"] != verdict["recommended"] or verdict["non_inferior"]
    cheap = next(g for g in verdict["groups"] if g["group"] == verdict["recommended"])  # type: ignore[attr-defined]
    assert cheap["cost_per_1k_usd"] == pytest.approx(2.0)
    assert "Verdict: Recommended: local:shapes-fast steps=8 cfg=7 256x256" in stdout
    assert all(len(line) <= 120 for line in stdout.splitlines())


def test_another_judge_target_on_the_in_process_emulator_is_refused(tmp_path: Path) -> None:
    # The emulator's pixel measurements must never be labelled with a VLM's name.
    proc = bench("run", "metrics.judge.target=openai:gpt-4.1-mini", f"results_dir={tmp_path}", "run_name=r")
    assert proc.returncode == 2 and "metrics.judge.target='openai:gpt-4.1-mini'" in proc.stderr
    assert "metrics.judge.base_url=null" in proc.stderr and not (tmp_path / "r").exists()
