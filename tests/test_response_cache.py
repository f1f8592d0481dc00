"""The cross-run response cache against a real emulator on 127.0.0.1: what is sent, what is replayed.

gpt-image-2 takes no steps, so `-m sweep.steps=[4],[8]` asks it the same questions twice
(the issue's own example): with the cache, each distinct request reaches the emulator
once, however many jobs and re-runs ask for it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.main import main
from bench.emulators import openai_compat

N_PROMPTS = 2


def common(url: str, results: Path) -> list[str]:
    return [
        "targets=[openai:gpt-image-2]",
        f"providers.openai.base_url={url}",
        f"providers.openai.api_key_env={KEY_ENV}",
        f"prompts.n={N_PROMPTS}",
        "sweep=quick",
        "metrics=off",
        "report.print_summary=false",
        "runner.progress=off",
        f"results_dir={results}",
    ]


def sweep_records(results: Path, sweep: str) -> pd.DataFrame:
    files = sorted((results / "sweeps" / sweep).glob("*/records.parquet"))
    assert len(files) == 2
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def test_overlapping_multirun_sends_each_distinct_request_once_and_reports_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(inference_s=(0.005, 0.01)), profile="openai")) as (url, emu):
        for sweep in ("first", "again"):
            code = main(["run", "-m", *common(url, results), f"sweep_name={sweep}", "sweep.steps=[4],[8]"])
            assert code == 0
        assert emu.submissions == N_PROMPTS  # 2 multiruns × 2 jobs asked; each request was sent once

    first = sweep_records(results, "first")
    again = sweep_records(results, "again")
    assert (first.status == "ok").all() and (again.status == "ok").all()
    # The first job of the first sweep sent; its second job and the whole re-run replayed.
    assert first.cached.sum() == N_PROMPTS and again.cached.all()
    live = first[~first.cached].set_index("request_key")
    for _, row in again.iterrows():
        original = live.loc[row.request_key]
        assert row.latency_s == original.latency_s and row.cost_usd == original.cost_usd
        assert row.cost_source == "price_table" and not original.cached
        assert (results / "sweeps" / "again" / row.run_id / row.image_path).is_file()

    # Images are content-addressed and hard-linked, not copied.
    cached_image = next((results / ".cache" / "images").rglob("*.png"))
    run_images = list((results / "sweeps").rglob(cached_image.name))
    assert len(run_images) == 4
    assert all(os.stat(p).st_ino == os.stat(cached_image).st_ino for p in run_images)

    # The report marks the replays and keeps their latencies out of the statistics by default.
    assert main(["report", str(results / "sweeps" / "again")]) == 0
    summary = pd.read_parquet(results / "sweeps" / "again" / "summary.parquet")
    # Both jobs asked the same requests (gpt-image-2 has no steps): n counts distinct requests.
    assert summary.n_cached.tolist() == [N_PROMPTS] and summary.n.tolist() == [N_PROMPTS]
    assert summary.latency_p50_s.isna().all()
    html = (results / "sweeps" / "again" / "report.html").read_text(encoding="utf-8")
    assert "request(s) were replayed from the response cache" in html  # the note
    assert html.count("title='replayed from the response cache: not sent by this run") >= N_PROMPTS  # images
    assert main(["report", str(results / "sweeps" / "again"), "+report.include_cached_latency=true"]) == 0
    summary = pd.read_parquet(results / "sweeps" / "again" / "summary.parquet")
    assert summary.latency_p50_s.notna().all()

    # Every candidate answer is a replay: the gate measured nothing and says so (exit 1), and it
    # does not time replays against live requests.
    code = main(["compare", str(results / "sweeps" / "first"), str(results / "sweeps" / "again")])
    gate = json.loads((results / "sweeps" / "again" / "gate.json").read_text(encoding="utf-8"))
    assert code == 1 and gate["verdict"] == "NOT MEASURED" and gate["n_measured"] == 0
    assert any("have a candidate answer replayed from the response cache" in n for n in gate["notes"])
    # No live pair: no check runs at all, so no replay is timed against a live request.
    assert gate["checks"] == []


@pytest.mark.parametrize(
    ("mode", "sent_second_time", "entries_after_first"),
    [
        ("read_write", 0, N_PROMPTS),
        ("write", N_PROMPTS, N_PROMPTS),
        ("read", N_PROMPTS, 0),
        ("off", N_PROMPTS, 0),
    ],
)
def test_cache_modes(
    mode: str,
    sent_second_time: int,
    entries_after_first: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    results = tmp_path / "results"
    cache_dir = tmp_path / "shared-cache"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        args = [*common(url, results), f"cache.mode={mode}", f"cache.dir={cache_dir}", "report.write=false"]
        assert main(["run", *args, "run_name=one"]) == 0
        assert emu.submissions == N_PROMPTS
        assert len(list(cache_dir.glob("requests/*/*.json"))) == entries_after_first
        assert main(["run", *args, "run_name=two"]) == 0
        assert emu.submissions == N_PROMPTS + sent_second_time
        capsys.readouterr()
        assert main(["estimate", *args]) == 0
        answered = N_PROMPTS if mode in ("read_write", "read") and entries_after_first else 0
        out = capsys.readouterr().out
        assert (f"{N_PROMPTS} answered by the response cache" in out) == bool(answered), out
    second = pd.read_parquet(results / "two" / "records.parquet")
    assert int(second.cached.sum()) == N_PROMPTS - sent_second_time


def test_a_bad_cache_mode_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "experiment=smoke", "cache.mode=sometimes", f"results_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cache.mode" in err[0] and "read_write" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_answers_are_replayed_only_to_the_endpoint_that_gave_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An emulator's images must never stand in for the real API's (or another proxy's)."""
    monkeypatch.setenv(KEY_ENV, KEY)
    results = tmp_path / "results"
    with (
        emulator(openai_compat.create_app(knobs(), profile="openai")) as (url_a, emu_a),
        emulator(openai_compat.create_app(knobs(), profile="openai")) as (url_b, emu_b),
    ):
        assert main(["run", *common(url_a, results), "report.write=false", "run_name=a"]) == 0
        assert main(["run", *common(url_b, results), "report.write=false", "run_name=b"]) == 0
        assert main(["run", *common(url_a, results), "report.write=false", "run_name=a2"]) == 0
    assert (emu_a.submissions, emu_b.submissions) == (N_PROMPTS, N_PROMPTS)
    assert not pd.read_parquet(results / "b" / "records.parquet").cached.any()
    assert pd.read_parquet(results / "a2" / "records.parquet").cached.all()
