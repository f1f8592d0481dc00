"""report.quality_metric: the frontier plots' quality axis, the best available by default, and no empty
boxes when a run has no quality signal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _report_runs import make_run

from bench.errors import ConfigError
from bench.report.build import write_report
from bench.report.quality import NO_SIGNAL, choose_axis, plotted, self_referenced


def summary(**cols: list[object]) -> pd.DataFrame:
    base = {
        "group": ["a", "b"],
        "target": ["t1", "t2"],
        "cost_per_1k_usd": [1.0, 2.0],
        "latency_p90_s": [0.5, 0.4],
    }
    return pd.DataFrame({**base, **cols})


def test_auto_takes_the_best_available_signal() -> None:
    s = summary(
        clip_mean=[25.0, 26.0], clip_ci_low=[24.0, 25.0], clip_ci_high=[26.0, 27.0], clip_fingerprint=["clip:x:1"] * 2,
        judge_adherence_mean=[0.7, 0.9], judge_adherence_ci_low=[0.6, 0.8], judge_adherence_ci_high=[0.8, 1.0],
        fid=[30.0, 20.0],
    )  # fmt: skip
    axis = choose_axis(s)
    assert axis is not None and axis.name == "judge_adherence"
    assert choose_axis(s, "clip").name == "clip"  # type: ignore[union-attr]
    fid = choose_axis(s, "fid")
    assert fid is not None and not fid.higher_is_better
    assert list(plotted(s, fid)["_quality"]) == [-30.0, -20.0]  # lower FID plots higher
    # human votes come first; the arena's interval columns are named *_low / *_high
    arena = s.assign(
        arena_elo=[1000.0, 1040.0], arena_elo_low=[980.0, 1010.0], arena_elo_high=[1020.0, 1070.0]
    )
    elo = choose_axis(arena)
    assert elo is not None and (elo.name, elo.low, elo.high) == (
        "arena_elo",
        "arena_elo_low",
        "arena_elo_high",
    )
    assert list(plotted(arena, elo)["_quality_high"]) == [1020.0, 1070.0]
    with pytest.raises(ConfigError, match=r"report\.quality_metric"):
        choose_axis(s, "aesthetics")


def test_misleading_signals_are_never_picked_automatically() -> None:
    random_clip = summary(clip_mean=[1.0, 2.0], clip_fingerprint=["clip:ViT-B-32:random-init:abc"] * 2)
    assert choose_axis(random_clip) is None
    assert choose_axis(random_clip, "clip") is not None  # by name, it is plotted
    own_ref = summary(
        fid=[3.0, 0.5], kid_mean=[0.01, 0.0], reference_id=["target:local:shapes-quality:ab"] * 2
    )
    assert self_referenced(own_ref)
    assert choose_axis(own_ref, self_reference=True) is None
    kid = choose_axis(own_ref.assign(reference_id="folder:/data/coco:12"), self_reference=False)
    assert kid is not None and kid.name == "kid"
    assert choose_axis(summary(clip_mean=[np.nan, np.nan])) is None


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("quality_runs")
    return {"bare": make_run(root, "bare", score=False), "oracle": make_run(root, "oracle")}


def _plots(run: Path) -> set[str]:
    return {p.stem for p in (run / "plots").glob("*.svg")}


def test_no_quality_signal_no_empty_boxes(runs: dict[str, Path]) -> None:
    out = write_report(runs["bare"], {"n_boot": 100})
    page = out.html_path.read_text()
    assert NO_SIGNAL.split(",")[0] in page and "bench rate" in page
    plots = _plots(runs["bare"])
    assert "cost_vs_latency" in plots
    assert not plots & {"quality_vs_cost", "quality_vs_latency", "clip_vs_params"}
    assert "No group has both a quality score" not in page


def test_quality_axis_follows_the_config(runs: dict[str, Path]) -> None:
    out = write_report(runs["oracle"], {"n_boot": 100})
    page = out.html_path.read_text()
    assert "Quality axis: CLIP score" in page and "best signal available" in page
    assert {"quality_vs_cost", "quality_vs_latency"} <= _plots(runs["oracle"])
    assert "cost_vs_latency" in _plots(runs["oracle"])  # drawn in every report
    with pytest.raises(ConfigError):
        write_report(runs["oracle"], {"n_boot": 100, "quality_metric": "beauty"})
    page = write_report(runs["oracle"], {"n_boot": 100, "quality_metric": "pickscore"}).html_path.read_text()
    assert "report.quality_metric=pickscore has no values in this run" in page
