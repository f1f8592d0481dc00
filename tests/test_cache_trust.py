"""The response cache replays only what was asked, only while it is fresh, and trusts none of its files.

Every run here talks to an emulator on 127.0.0.1; `emu.submissions` counts what was
actually sent (and paid for) at the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.main import main
from bench.emulators import openai_compat

DAY = 86400.0


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def gpt_image(url: str, results: Path, run_name: str, *extra: str, host: str = "openai") -> list[str]:
    """A run of gpt-image-2 at OpenAI's (emulated) host, or at AIML's (`host="aimlapi"`)."""
    model = "openai/gpt-image-2" if host == "aimlapi" else "gpt-image-2"
    return [
        "run",
        f"targets=[{host}:{model}]",
        f"providers.{host}.base_url={url}",
        f"providers.{host}.api_key_env={KEY_ENV}",
        "prompts.n=2",
        "sweep=quick",
        "metrics=off",
        "report.write=false",
        "report.print_summary=false",
        "runner.progress=off",
        f"results_dir={results}",
        f"run_name={run_name}",
        *extra,
    ]


def records(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "records.parquet")


def entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("requests/*/*.json"))


def edit_entries(cache_dir: Path, change: Callable[[dict[str, Any]], None], *, reseal: bool) -> None:
    """Apply `change` to every stored response; `reseal`: recompute the entry's integrity digest
    (a consistent forgery, so that the check under test is the only one that can catch it)."""
    for path in entries(cache_dir):
        body = json.loads(path.read_text(encoding="utf-8"))
        for response in body.get("responses", body.get("rows", [])):
            change(response)
        if reseal and "digest" in body:
            from bench.cache import entry_digest

            body["digest"] = entry_digest(body)
        path.write_text(json.dumps(body), encoding="utf-8")


# ---- 2. replays never relabel the current run --------------------------------------------
def suite_file(folder: Path, suite: str, items: list[dict[str, str]]) -> Path:
    path = folder / f"{suite}.json"  # YAML is a superset of JSON
    path.write_text(json.dumps({"suite": suite, "prompts": items}), encoding="utf-8")
    return path


def test_a_replay_keeps_the_current_jobs_prompt_labels_suite_and_size(tmp_path: Path) -> None:
    text = "a red apple on a white table"
    old = suite_file(tmp_path, "project", [{"id": "p01", "category": "color", "text": text}])
    new = suite_file(tmp_path, "fruit", [{"id": "fruit-01", "category": "food", "text": text}])
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (url, emu):
        # AIML's gpt-image-2 has three sizes, neither 512 nor 768: both requests reach it without
        # one, under one key.
        old_run = (f"prompts.path={old}", "sweep.sizes=[768x768]", "prompts.n=null")
        assert main(gpt_image(url, results, "old", *old_run, host="aimlapi")) == 0
        new_run = (f"prompts.path={new}", "sweep.sizes=[512x512]", "prompts.n=null")
        assert main(gpt_image(url, results, "new", *new_run, host="aimlapi")) == 0
        assert emu.submissions == 1  # the second request was a replay
    before, after = records(results / "old").iloc[0], records(results / "new").iloc[0]
    assert after.cached and after.request_key == before.request_key
    # Every request field is the current job's ...
    assert (after.prompt_id, after.category, after.suite) == ("fruit-01", "food", "fruit")
    assert (after["size"], after.width, after.height) == ("512x512", 512.0, 512.0)
    assert after.run_id == "new"
    # ... every response field the original answer's, with where and when it came from.
    assert (after.image_sha256, after.latency_s, after.cost_usd) == (
        before.image_sha256,
        before.latency_s,
        before.cost_usd,
    )
    assert after.cache_origin_run == "old" and after.cache_age_s >= 0
    assert pd.isna(before.cache_age_s) and pd.isna(before.cache_origin_run)


# ---- 3. the cache trusts nothing -------------------------------------------------------------
def first_run(url: str, results: Path) -> None:
    assert main(gpt_image(url, results, "one")) == 0


def test_an_image_whose_bytes_changed_is_a_miss_and_its_entry_is_dropped(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        first_run(url, results)
        cached_images = sorted((results / ".cache" / "images").rglob("*.png"))
        assert len(cached_images) == 2
        damaged = cached_images[0]
        data = bytearray(damaged.read_bytes())
        data[-20] ^= 0xFF  # one flipped byte, the PNG still looks like one
        damaged.unlink()  # (a hard link to the first run's image: write a new file in its place)
        damaged.write_bytes(bytes(data))
        assert main(gpt_image(url, results, "two")) == 0
        assert emu.submissions == 3  # the damaged one was sent again, the intact one replayed
    second = records(results / "two")
    assert second.cached.sum() == 1
    for _, row in second.iterrows():
        stored = (results / "two" / row.image_path).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == row.image_sha256
    # The damaged image was dropped and the live answer stored in its place.
    cache_bytes = {p.name: p.read_bytes() for p in (results / ".cache" / "images").rglob("*.png")}
    for name, data in cache_bytes.items():
        assert hashlib.sha256(data).hexdigest() == name.split(".")[0]


def test_an_image_path_outside_the_cache_is_refused(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        first_run(url, results)

        def escape(response: dict[str, Any]) -> None:
            response["image_path"] = "../../../../../../../../etc/passwd"

        edit_entries(results / ".cache", escape, reseal=True)
        assert main(gpt_image(url, results, "two")) == 0
        assert emu.submissions == 4  # both entries refused: both requests sent again
    second = records(results / "two")
    assert not second.cached.any()
    run_dir = (results / "two").resolve()
    for path in second.image_path:
        assert (run_dir / path).resolve().is_relative_to(run_dir)


def test_an_edited_cost_is_a_miss(tmp_path: Path) -> None:
    """The entry's integrity digest covers every field: an edit without it is a miss."""
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        first_run(url, results)
        live_costs = sorted(records(results / "one").cost_usd)

        def cheaper(response: dict[str, Any]) -> None:
            response["cost_usd"] = 0.0

        edit_entries(results / ".cache", cheaper, reseal=False)
        assert main(gpt_image(url, results, "two")) == 0
        assert emu.submissions == 4
    second = records(results / "two")
    assert not second.cached.any()
    assert sorted(second.cost_usd) == live_costs  # the live answers' costs, not the edited 0


def test_an_impossible_cost_is_a_miss_even_with_a_matching_digest(tmp_path: Path) -> None:
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        first_run(url, results)

        def negative(response: dict[str, Any]) -> None:
            response["cost_usd"] = -1.0

        edit_entries(results / ".cache", negative, reseal=True)
        assert main(gpt_image(url, results, "two")) == 0
        assert emu.submissions == 4
    assert (records(results / "two").cost_usd > 0).all()


def test_a_garbled_entry_is_a_miss_with_one_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        first_run(url, results)
        garbled = entries(results / ".cache")[0]
        garbled.write_bytes(garbled.read_bytes()[:40])  # a torn write
        capsys.readouterr()
        assert main(gpt_image(url, results, "two", "cache.mode=read")) == 0  # read: nothing is dropped
        assert emu.submissions == 3
    out = capsys.readouterr()
    logged = (out.out + out.err).splitlines()
    warnings = [line for line in logged if "WARNING" in line]
    assert len(warnings) == 1, warnings
    assert garbled.name in warnings[0] and "a miss" in warnings[0]
    assert "Traceback" not in out.err
    assert records(results / "two").cached.sum() == 1


# ---- 1. hosted answers have an age -------------------------------------------------------------
def runner_args(url: str, results: Path, run_name: str, *extra: str) -> list[str]:
    return [a for a in gpt_image(url, results, run_name, *extra) if a != "run"]


def run_at(bench_cfg: Any, overrides: list[str], run_dir: Path, now: float) -> Any:
    """The runner with the cache's wall clock at `now` (seconds): the run a user starts then."""
    from bench.cache import ResponseCache
    from bench.cli.run import _generate, prepare
    from bench.runner import Runner
    from bench.store import RunStore

    config, providers, plan = prepare(bench_cfg(overrides), require_keys=True)
    store = RunStore(run_dir)
    runner = Runner(
        run_id=run_dir.name,
        providers=providers,
        store=store,
        settings=config.runner,
        prices=config.prices,
        max_cost_usd=None,
        cache=ResponseCache(config.cache, now=lambda: now),
    )
    summary = asyncio.run(_generate(runner, plan, providers))
    store.write_records({"run_id": run_dir.name})
    return summary


def test_answers_older_than_max_age_are_sent_again_and_replays_say_how_old(
    bench_cfg: Any, tmp_path: Path
) -> None:
    results = tmp_path / "results"
    t0 = 1_800_000_000.0
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        run_at(bench_cfg, runner_args(url, results, "day0"), results / "day0", t0)
        assert emu.submissions == 2
        summary = run_at(bench_cfg, runner_args(url, results, "day13"), results / "day13", t0 + 13 * DAY)
        assert emu.submissions == 2  # 13 days < cache.max_age (14d by default): replayed
        assert "2 replayed from the cache, oldest 13.0 days" in summary.line()
        replayed = records(results / "day13")
        assert replayed.cached.all() and (replayed.cache_origin_run == "day0").all()
        assert replayed.cache_age_s.tolist() == [13 * DAY, 13 * DAY]
        run_at(bench_cfg, runner_args(url, results, "day15"), results / "day15", t0 + 15 * DAY)
        assert emu.submissions == 4  # older than 14 days: sent again
        assert not records(results / "day15").cached.any()
        # A shorter max_age, in the documented format.
        run_at(
            bench_cfg,
            runner_args(url, results, "h3", "cache.max_age=2h"),
            results / "h3",
            t0 + 15 * DAY + 3 * 3600,
        )
        assert emu.submissions == 6


@pytest.mark.parametrize("value", ["14", "fortnight", "-3d", "0h"])
def test_a_bad_max_age_is_one_line_exit_2(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "experiment=smoke", f"cache.max_age={value}", f"results_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cache.max_age" in err[0] and "14d" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_the_terminal_line_and_the_report_say_how_old_the_replays_are(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, _):
        assert main(gpt_image(url, results, "one")) == 0
        capsys.readouterr()
        with_report = [a for a in gpt_image(url, results, "two") if a != "report.write=false"]
        assert main(with_report) == 0
    err = capsys.readouterr().err
    assert "2 replayed from the cache, oldest " in err
    html = (results / "two" / "report.html").read_text(encoding="utf-8")
    assert "replayed from the response cache, the oldest " in html
    assert "(run one, " in html  # each replayed image's tooltip names the run that paid for it


# ---- 4. replays that share one image never collide ------------------------------------------
def test_replays_sharing_one_image_at_the_same_moment_do_not_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four requests (repeats of one prompt and seed) answered with one image, replayed at once.

    By construction: every replay thread is held at its hard link until all four are there,
    so they link the one cached image into the run's folder at the same moment (the
    interleaving that made 1 in 4 replaying runs fail with "... are the same file").
    """
    results = tmp_path / "results"
    args = [
        "targets=[aimlapi:flux/schnell]",
        f"providers.aimlapi.api_key_env={KEY_ENV}",
        "providers.aimlapi.concurrency=4",
        "prompts.n=1",
        "sweep=quick",
        "sweep.seeds=[7]",
        "sweep.repeats=4",
        "metrics=off",
        "report.write=false",
        "report.print_summary=false",
        "runner.progress=off",
        f"results_dir={results}",
    ]
    with emulator(openai_compat.create_app(knobs(), profile="aimlapi")) as (url, emu):
        assert main(["run", *args, f"providers.aimlapi.base_url={url}", "run_name=one"]) == 0
        assert emu.submissions == 4
        assert records(results / "one").image_sha256.nunique() == 1  # one image for all four

        replay_dir = str(results / "two")
        arrived = threading.Barrier(4, timeout=20)
        real_link = os.link

        def link_together(src: Any, dst: Any, *a: Any, **kw: Any) -> None:
            if str(dst).startswith(replay_dir):
                try:
                    arrived.wait()
                except threading.BrokenBarrierError:
                    pytest.fail("the four replays did not reach their link at once")
            real_link(src, dst, *a, **kw)

        monkeypatch.setattr(os, "link", link_together)
        assert main(["run", *args, f"providers.aimlapi.base_url={url}", "run_name=two"]) == 0
        assert emu.submissions == 4
    second = records(results / "two")
    assert len(second) == 4 and second.cached.all() and (second.status == "ok").all()
    image = results / "two" / second.image_path.iloc[0]
    assert hashlib.sha256(image.read_bytes()).hexdigest() == second.image_sha256.iloc[0]
    assert not [p for p in image.parent.iterdir() if p.name.endswith(".tmp")]
