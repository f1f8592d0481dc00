"""summary.parquet, plots and report.html from `bench run` / `bench report` (run and sweep folders)."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _report_runs import bench, bench_in_process, make_run

from bench.metrics.errors import FingerprintMismatch
from bench.report.plots import PLOTS, pareto_front, style
from bench.report.runs import RunSet
from bench.report.summary import summarize


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("report_runs"), "base")


def test_bench_run_writes_report_and_plots(run: Path) -> None:
    # bench run wrote them at its end (before the oracle scores); bench report rewrites with CLIP.
    proc = bench("report", str(run), "report.n_boot=200")
    assert proc.returncode == 0, proc.stderr
    assert "local:shapes-fast steps=4 cfg=2 128x128" in proc.stdout and "synthetic" in proc.stdout
    for name in PLOTS:
        assert (run / "plots" / f"{name}.png").stat().st_size > 1000
        assert (run / "plots" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    summary = pd.read_parquet(run / "summary.parquet")
    assert len(summary) == 2 and set(summary["target"]) == {"local:shapes-fast", "local:shapes-quality"}
    for col in ("n", "ok_rate", "refusal_rate", "latency_p50_s", "latency_p90_ci_low", "latency_p99_ci_high",
                "live_req_per_s", "stream_img_per_s", "skipped", "n_images", "retries", "cost_per_image_usd", "cost_per_1k_usd", "clip_mean", "clip_ci_low",
                "fid", "kid_mean", "kid_std", "clip_fingerprint", "fid_fingerprint"):  # fmt: skip
        assert col in summary, col
    row = summary.iloc[0]
    assert row["n"] == 24 and row["ok_rate"] == 1.0 and row["cost_per_1k_usd"] == 0.0
    assert row["latency_p90_ci_low"] <= row["latency_p90_s"] <= row["latency_p90_ci_high"]
    assert row["clip_ci_low"] <= row["clip_mean"] <= row["clip_ci_high"]
    assert row["clip_fingerprint"].startswith("test-oracle")
    page = (run / "report.html").read_text()
    assert page.count("<figure class='plot'") == len(PLOTS) and "<svg" in page
    # One file: 48 embedded WebP thumbnails, each linking its original by relative path, loaded lazily.
    assert page.count("<img ") == 48 and page.count("src='data:image/webp;base64,") == 48
    assert page.count("href='images/") == 48 and "loading='lazy'" in page and "src='images/" not in page
    assert "Synthetic data." in page and "class='syn'" in page
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page)  # nothing loaded from the network


def test_unknown_cost_stays_unknown(run: Path) -> None:
    df = pd.read_parquet(run / "records.parquet")
    df.loc[df.index[0], "cost_usd"] = np.nan
    s = summarize(df)
    first = s[s["target"] == df.loc[df.index[0], "target"]].iloc[0]
    assert math.isnan(first["cost_per_image_usd"]) and math.isnan(first["cost_per_1k_usd"])
    assert (s["cost_per_image_usd"] == 0.0).sum() == 1


def test_sweep_folder_is_merged(run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sweep = tmp_path / "sweep"
    shutil.copytree(run, sweep / "0-a")
    other = shutil.copytree(run, sweep / "1-b")
    df = pd.read_parquet(other / "records.parquet")
    df["guidance"] = 7.0
    df.to_parquet(other / "records.parquet", index=False)
    proc = bench_in_process(capsys, "report", str(sweep), "report.n_boot=200")
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_parquet(sweep / "summary.parquet")
    assert len(summary) == 4 and sorted(set(summary["guidance"])) == [2.0, 7.0]
    page = (sweep / "report.html").read_text()
    assert "href='0-a/images/" in page and "href='1-b/images/" in page
    df["clip_fingerprint"] = df["clip_fingerprint"].where(df["clip_fingerprint"].isna(), "clip:other:1234")
    df.to_parquet(other / "records.parquet", index=False)
    with pytest.raises(FingerprintMismatch):
        RunSet.load(sweep)
    refused = bench_in_process(capsys, "report", str(sweep))
    assert refused.returncode == 2 and "refusing to average or compare" in refused.stderr


def test_report_on_a_non_run_folder_is_one_line(tmp_path: Path) -> None:
    proc = bench("report", str(tmp_path))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_pareto_front_and_palette() -> None:
    cost = np.array([1.0, 2.0, 2.0, 3.0, np.nan])
    clip = np.array([20.0, 25.0, 24.0, 24.5, 40.0])
    assert pareto_front(cost, clip).tolist() == [0, 1]
    styles = {(s["color"], s["marker"]) for s in (style(i) for i in range(20))}
    assert len(styles) == 20
