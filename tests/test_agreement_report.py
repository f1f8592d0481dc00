"""A study where one automated signal agrees with the votes by construction and another disagrees.

Votes come from a rater driven through the arena over HTTP who prefers the image of higher hidden
quality (found by hashing the image served); PickScore is set to that quality and HPSv2 to its
negation. `bench report` must name PickScore, table both, and let `auto` plot PickScore.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from _report_runs import bench, bench_in_process, make_run

from bench.arena.agreement import MIN_VOTES
from bench.arena.app import Arena, build_app
from bench.arena.votes import VOTES_FILE, read_votes
from bench.emulators.serve import running

KEYS = ["target", "steps", "guidance", "size"]


def _hidden_quality(records: pd.DataFrame) -> dict[str, float]:
    """Per image: the better target +1, plus a per-image term from its hash (so images differ)."""
    out = {}
    for sha, target in zip(records["image_sha256"], records["target"], strict=True):
        if isinstance(sha, str):
            out[sha] = (1.0 if target == "local:shapes-quality" else 0.0) + int(sha[:6], 16) / 0xFFFFFF
    return out


def _set_signals(folder: Path, quality: dict[str, float]) -> None:
    path = folder / "records.parquet"
    df = pd.read_parquet(path)
    q = df["image_sha256"].map(quality).astype(float)
    df["pickscore"], df["pickscore_fingerprint"] = q, "test:agrees"
    df["hpsv2"], df["hpsv2_fingerprint"] = -q, "test:disagrees"
    df.to_parquet(path, index=False)
    # Per-group means (what bench score writes to metrics.parquet), so the report can plot them.
    ok = df[df["status"] == "ok"]
    groups = ok.groupby(KEYS, dropna=False)[["pickscore", "hpsv2"]].mean().reset_index()
    for col in ("pickscore", "hpsv2"):
        groups[f"{col}_ci_low"] = groups[f"{col}_ci_high"] = groups[col]
        groups = groups.rename(columns={col: f"{col}_mean"})
        groups[f"{col}_fingerprint"] = f"test:{col}"
    metrics = folder / "metrics.parquet"
    if metrics.exists():
        old = pd.read_parquet(metrics)
        groups = old.drop(columns=[c for c in groups.columns if c in old and c not in KEYS]).merge(
            groups, on=KEYS, how="left"
        )
    groups.to_parquet(metrics, index=False)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = make_run(tmp_path_factory.mktemp("agree_runs"), "agree")
    folder = tmp_path_factory.mktemp("agree") / "run"
    shutil.copytree(run, folder, ignore=shutil.ignore_patterns(VOTES_FILE))
    quality = _hidden_quality(pd.read_parquet(folder / "records.parquet"))
    _set_signals(folder, quality)
    arena = Arena.open(folder, "ana", seed=5)
    with running(build_app(arena)) as url, httpx.Client(base_url=url, timeout=10) as c:
        d = c.get("/api/next", params={"rater": "ana"}).json()
        for _ in range(2 * MIN_VOTES):
            left = hashlib.sha256(c.get(d["left"]).content).hexdigest()
            right = hashlib.sha256(c.get(d["right"]).content).hexdigest()
            choice = "left" if quality[left] > quality[right] else "right"
            d = c.post(
                "/api/vote",
                json={"token": d["token"], "choice": choice, "rater": "ana"},
                headers={"origin": url},
            ).json()
    assert len(read_votes(folder / VOTES_FILE)) == 2 * MIN_VOTES
    return folder


def test_report_names_the_agreeing_signal(study: Path) -> None:
    proc = bench("report", str(study))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "Signals against the votes:" in out
    lines = {
        line.split()[0]: line for line in out.splitlines() if line.startswith(("  PickScore", "  HPSv2"))
    }
    assert "100%" in lines["PickScore"].split()[1] and lines["HPSv2.1"].split()[1] == "0%"
    assert f"PickScore agrees best with the votes: 100% of {2 * MIN_VOTES} decisive votes" in out
    page = (study / "report.html").read_text()
    assert "id='signal-agreement'" in page
    assert (
        "Quality axis: PickScore (mean, 95% CI over prompts) — report.quality_metric=auto prefers it" in page
    )


def test_too_few_votes_leave_auto_alone(
    study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "few"
    shutil.copytree(study, folder)
    votes = (folder / VOTES_FILE).read_text().splitlines()[: MIN_VOTES - 1]
    (folder / VOTES_FILE).write_text("\n".join(votes) + "\n")
    proc = bench_in_process(capsys, "report", str(folder))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "No automated signal is trusted by the votes yet" in proc.stdout
    page = (folder / "report.html").read_text()
    # auto is left to its own order (the verdict's: with fewer than 30 votes Elo cannot carry a choice)
    assert "the best signal available (report.quality_metric=auto)" in page and "prefers it" not in page
    assert np.isfinite(pd.read_parquet(folder / "summary.parquet")["arena_elo"]).any()
