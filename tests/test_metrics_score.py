"""score_run end to end on a synthetic run: records columns, metrics.parquet, caching, offline fallback."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import bench  # noqa: F401
from bench.errors import ConfigError
from bench.metrics import clip as clipmod
from bench.metrics.notes import MetricsWarning
from bench.metrics.score import read_fingerprints, score_run
from bench.metrics.synthetic import write_synthetic_run
from bench.records import RECORD_SCHEMA


def _cfg(cache: Path, **fid: Any) -> dict[str, Any]:
    return {
        "clip": {"pretrained": None, "batch_size": 8, "allow_download": False},
        "fid": {"reference": None, "batch_size": 8, **fid},
        "kid": {"subset_size": 50, "subsets": 10},
        "stats": {"n_boot": 200},
        "cache_dir": str(cache),
    }


def test_score_run_writes_records_and_metrics_and_rescoring_computes_nothing(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, per_target=5, size=48)
    cfg = _cfg(tmp_path / "cache", reference={"kind": "target", "target": "model-a"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = score_run(run, cfg)
    assert first.clip_computed == 10 and first.inception_computed == 10
    assert sum(issubclass(w.category, MetricsWarning) and "n=2048" in str(w.message) for w in caught) == 1

    table = pq.read_table(run / "records.parquet")
    assert (
        table.schema.metadata[b"t2i_bench_schema_version"]
        == RECORD_SCHEMA.metadata[b"t2i_bench_schema_version"]
    )
    assert table.schema.field("clip_score").type == RECORD_SCHEMA.field("clip_score").type
    df = table.to_pandas()
    ok = df[df.status == "ok"]
    assert ok.clip_score.between(0, 100).all() and ok.clip_fingerprint.str.contains("random-init").all()
    assert (ok.clip_truncated == False).all()  # noqa: E712
    err = df[df.status == "error"]
    assert err.clip_score.isna().all() and err.clip_fingerprint.isna().all()

    metrics = pd.read_parquet(run / "metrics.parquet")
    assert list(metrics.target) == ["model-a", "model-b"] and (metrics.n == 5).all()
    by_target = metrics.set_index("target")
    assert abs(by_target.loc["model-a", "fid"]) < 1e-3  # the reference itself
    assert by_target.loc["model-b", "fid"] > 1.0
    assert by_target.loc["model-b", "kid_mean"] > by_target.loc["model-a", "kid_mean"]
    assert (metrics.kid_subset_size < metrics.n).all() and metrics.kid_std.gt(0).all()
    assert metrics.reference_id.str.startswith("target:model-a:").all()
    assert metrics.clip_mean.between(0, 100).all()
    fps = read_fingerprints(run)
    assert set(fps) == {metrics.fid_fingerprint.iloc[0], metrics.clip_fingerprint.iloc[0]}

    second = score_run(run, cfg)
    assert second.clip_computed == 0 and second.inception_computed == 0
    again = pq.read_table(run / "records.parquet").to_pandas()
    np.testing.assert_array_equal(again.clip_score.to_numpy(), df.clip_score.to_numpy())
    pd.testing.assert_frame_equal(pd.read_parquet(run / "metrics.parquet"), metrics)
    assert "CLIP" in str(second) and str(second).count("\n") <= 2 + len(second.notes)


def test_offline_default_weights_give_nan_and_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clipmod, "_cached_pretrained_file", lambda pcfg: None)
    monkeypatch.setattr(clipmod, "_host_reachable", lambda url, timeout_s=2.0: False)
    run = tmp_path / "run"
    write_synthetic_run(run, per_target=2, size=32, prompts=("x " * 100,))
    cfg = _cfg(tmp_path / "cache")
    cfg["clip"] = {"pretrained": "openai"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = score_run(run, cfg)
    ours = [w for w in caught if issubclass(w.category, MetricsWarning)]
    assert len(ours) == 1 and "metrics.clip.pretrained" in str(ours[0].message)
    df = pd.read_parquet(run / "records.parquet")
    ok = df[df.status == "ok"]
    assert ok.clip_score.isna().all() and ok.clip_fingerprint.isna().all()
    assert ok.clip_truncated.all()  # known from the tokenizer even without weights
    assert report.clip_fingerprint is None and report.fid_fingerprint is None
    assert pd.read_parquet(run / "metrics.parquet").fid.isna().all()


def test_npz_and_folder_references_and_disabled_metrics(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, targets=("m",), per_target=4, size=40, failed=0)
    ref_dir = tmp_path / "ref"
    write_synthetic_run(ref_dir, targets=("r",), per_target=4, size=40, failed=0, seed=9)
    cache = tmp_path / "cache"
    folder = {"kind": "folder", "path": str(ref_dir / "images")}
    cfg = _cfg(cache, reference=folder)
    cfg["clip"]["enabled"] = False
    r1 = score_run(run, cfg)
    assert r1.reference_id is not None and r1.reference_id.startswith("folder:")
    fid_folder = pd.read_parquet(run / "metrics.parquet").fid.iloc[0]

    from bench.metrics.fid import gaussian_stats
    from bench.metrics.score import EmbeddingCache

    with np.load(next((cache / "reference").glob("*.npz"))) as cached:
        stats = gaussian_stats(cached["features"])
    npz = tmp_path / "ref_stats.npz"
    np.savez(npz, mu=stats.mu, sigma=stats.sigma)  # the pytorch-fid layout
    cfg["fid"]["reference"] = str(npz)
    r2 = score_run(run, cfg)
    m2 = pd.read_parquet(run / "metrics.parquet")
    assert r2.reference_id is not None and r2.reference_id.startswith("npz:")
    assert m2.fid.iloc[0] == pytest.approx(fid_folder, rel=1e-6) and np.isnan(m2.kid_mean.iloc[0])
    assert r2.inception_computed == 0  # features came from the cache
    EmbeddingCache(cache).close()

    off = score_run(
        run,
        {
            "clip": {"enabled": False},
            "fid": {"enabled": False},
            "kid": {"enabled": False},
            "cache_dir": str(cache),
        },
    )
    assert off.clip_fingerprint is None and off.fid_fingerprint is None


def test_config_errors_are_clear(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, per_target=1, size=16)
    with pytest.raises(ConfigError, match=r"metrics\.fid\.reference\.path"):
        score_run(run, {"fid": {"reference": {"kind": "folder"}}, "cache_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="unknown key"):
        score_run(run, {"clip": {"backbon": "x"}, "cache_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match="group_by"):
        score_run(
            run, {"clip": {"enabled": False}, "fid": {"group_by": ["nope"]}, "cache_dir": str(tmp_path)}
        )


def test_bench_score_refreshes_summary_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bench.cli import main

    run = tmp_path / "run"
    write_synthetic_run(run, per_target=3, size=48)
    score = ["score", str(run), "metrics=test", "metrics.fid.enabled=false", "metrics.kid.enabled=false",
             f"+metrics.cache_dir={tmp_path / 'cache'}", "report.n_boot=200"]  # fmt: skip
    assert main(["report", str(run), "report.n_boot=200"]) == 0
    assert pd.read_parquet(run / "summary.parquet")["clip_mean"].isna().all()  # not scored yet
    stale_html = (run / "report.html").read_text(encoding="utf-8")

    assert main(score) == 0
    records = pd.read_parquet(run / "records.parquet")
    summary = pd.read_parquet(run / "summary.parquet")
    means = records[records["status"] == "ok"].groupby("target")["clip_score"].mean()
    assert means.notna().all() and len(means) == 2
    for target, mean in means.items():
        assert summary.loc[summary["target"] == target, "clip_mean"].item() == pytest.approx(mean)
    html = (run / "report.html").read_text(encoding="utf-8")
    fingerprint = str(records["clip_fingerprint"].dropna().iloc[0])
    assert "No CLIP scores" in stale_html and fingerprint not in stale_html
    assert "No CLIP scores" not in html and f"CLIP fingerprint: {fingerprint}" in html
    assert "refreshed" in capsys.readouterr().err

    # Written whether or not they existed before; report.write=false leaves them alone, as for `bench run`.
    (run / "summary.parquet").unlink()
    (run / "report.html").unlink()
    assert main([*score, "report.write=false"]) == 0
    assert not (run / "summary.parquet").exists() and not (run / "report.html").exists()
    assert main(score) == 0
    assert pd.read_parquet(run / "summary.parquet")["clip_mean"].notna().all()
    assert (run / "report.html").is_file()


def test_bench_score_of_a_sweep_refreshes_each_run_and_the_sweeps_own_report(tmp_path: Path) -> None:
    from bench.cli import main

    sweep = tmp_path / "sweep"
    for i, job in enumerate(("job-a", "job-b")):
        write_synthetic_run(sweep / job, targets=(f"model-{job}",), per_target=2, size=40, failed=0, seed=i)
    assert main(["report", str(sweep), "report.n_boot=100"]) == 0  # the sweep's own summary, unscored
    assert pd.read_parquet(sweep / "summary.parquet")["clip_mean"].isna().all()
    score = ["score", str(sweep), "metrics=test", "metrics.fid.enabled=false", "metrics.kid.enabled=false",
             f"+metrics.cache_dir={tmp_path / 'cache'}", "report.n_boot=100"]  # fmt: skip
    assert main(score) == 0
    for folder in (sweep, sweep / "job-a", sweep / "job-b"):
        assert pd.read_parquet(folder / "summary.parquet")["clip_mean"].notna().all(), folder
        assert "No CLIP scores" not in (folder / "report.html").read_text(encoding="utf-8"), folder
