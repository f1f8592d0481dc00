"""Every provider end to end: `bench run` (in process) against its emulator, then records.parquet.

These go through the real runner, store and CLI: retries with Retry-After, refusals,
timeouts that cancel the remote job, cost resolution, and the key kept out of every
file a run writes and every log line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.main import main
from bench.emulators import akiio, eachlabs, fal, kidjig, openai_compat, replicate
from bench.emulators.common import Knobs

# provider -> (emulator factory, cost_source its answers lead to)
PROVIDERS: dict[str, tuple[Callable[[Knobs], Any], str]] = {
    "openai": (lambda k: openai_compat.create_app(k, profile="openai"), "price_table"),
    "aimlapi": (lambda k: openai_compat.create_app(k, profile="aimlapi"), "reported"),
    "apipie": (lambda k: openai_compat.create_app(k, profile="apipie"), "reported"),
    "eachlabs": (lambda k: eachlabs.create_app(k), "reported"),
    "akiio": (lambda k: akiio.create_app(k), "unknown"),
    "kidjig": (lambda k: kidjig.create_app(k), "reported"),
    # fal publishes prices (its pricing API, which the emulator serves): priced from it at run time
    "fal": (lambda k: fal.create_app(k), "price_api"),
    "replicate": (lambda k: replicate.create_app(k), "price_table"),
}


def bench_run(provider: str, url: str, tmp_path: Path, *extra: str) -> pd.DataFrame:
    code = main(
        [
            "run",
            f"models={provider}",
            f"providers.{provider}.base_url={url}",
            f"providers.{provider}.api_key_env={KEY_ENV}",
            f"providers.{provider}.poll_interval_s=0.01",
            "prompts.n=2",
            "sweep=quick",
            "metrics=off",
            "runner.progress=off",
            "runner.backoff_base_s=0.01",
            f"results_dir={tmp_path}",
            "run_name=r",
            *extra,
        ]
    )
    assert code in (0, 1), f"bench run exited {code}"
    return pd.read_parquet(tmp_path / "r" / "records.parquet")


def assert_no_key_anywhere(root: Path, *texts: str) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), f"the API key was written to {path}"
    for text in texts:
        assert KEY not in text, "the API key reached a log line or the console"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_sweep_end_to_end(
    provider: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    factory, cost_source = PROVIDERS[provider]
    caplog.set_level(logging.DEBUG)
    # GPT image models are priced from their usage tokens (the price table)
    extra = ["targets=[openai:gpt-image-2]"] if provider == "openai" else []
    with emulator(factory(knobs(inference_s=(0.005, 0.01)))) as (url, emu):
        df = bench_run(provider, url, tmp_path, *extra)
    assert len(df) >= 2 and (df.status == "ok").all(), df[["target", "status", "error_message"]].to_string()
    assert (df.latency_s > 0).all()
    assert (df.download_s.isna() | (df.download_s >= 0)).all()  # NaN where the image came inline
    assert set(df.cost_source) == {cost_source}
    if cost_source == "unknown":
        assert df.cost_usd.isna().all()
    else:
        assert (df.cost_usd > 0).all()
    assert emu.submissions == len(df)
    # The emulator said so in a response header: emulated, and its images (local generator) synthetic.
    assert df.emulated.all() and df.synthetic.all()
    assert (df.poll_interval_s.isna() | (df.poll_interval_s <= 0.01)).all()  # never beyond the setting
    out, err = capfd.readouterr()
    assert_no_key_anywhere(tmp_path, caplog.text, out, err)


def test_gpt_image_priced_from_usage_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, _):
        df = bench_run("openai", url, tmp_path, "targets=[openai:gpt-image-2]")
    assert (df.status == "ok").all()
    assert (df.cost_source == "price_table").all()
    assert (df.cost_usd > 0).all()


def test_retries_then_success(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    app = openai_compat.create_app(
        knobs(fault="rate_limit", fault_first=2, retry_after_s=0.01), profile="aimlapi"
    )
    with emulator(app) as (url, emu):
        df = bench_run(
            "aimlapi", url, tmp_path, "targets=[aimlapi:flux/schnell]", "providers.aimlapi.concurrency=1"
        )
    assert (df.status == "ok").all()
    assert df.attempts.sum() == len(df) + 2  # two 429s, each retried once
    assert emu.submissions == len(df) + 2


def test_refusal_recorded_as_refused_not_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(fal.create_app(knobs(fault="refuse"))) as (url, emu):
        df = bench_run("fal", url, tmp_path, "targets=[fal:fal-ai/flux/schnell]")
    assert (df.status == "refused").all()
    assert df.error_message.str.contains("content_policy_violation").all()
    assert (df.attempts == 1).all() and emu.submissions == len(df)


def test_timeout_cancels_remote_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(replicate.create_app(knobs(fault="hang"))) as (url, emu):
        df = bench_run(
            "replicate",
            url,
            tmp_path,
            "targets=[replicate:black-forest-labs/flux-schnell]",
            "providers.replicate.timeout_s=0.3",
            "runner.max_attempts=1",
        )
    assert (df.error_type == "timeout").all()
    assert sorted(emu.cancels) == sorted(emu.jobs) and len(emu.cancels) == len(df)


def test_malformed_answer_is_typed_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    with emulator(kidjig.create_app(knobs(fault="missing_field"))) as (url, _):
        df = bench_run("kidjig", url, tmp_path, "runner.max_attempts=1")
    assert (df.error_type == "malformed_response").all()
    assert df.error_message.str.contains("expected data.images").all()
    assert all(math.isnan(c) for c in df.cost_usd)


def test_wrong_key_never_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """The OpenAI emulator echoes the key in its 401 body; nothing the run writes may contain it."""
    monkeypatch.setenv(KEY_ENV, KEY)
    caplog.set_level(logging.DEBUG)
    with emulator(openai_compat.create_app(knobs(api_key="another-key"), profile="openai")) as (url, _):
        df = bench_run("openai", url, tmp_path, "runner.max_attempts=1")
    assert (df.error_type == "auth").all()
    out, err = capfd.readouterr()
    assert_no_key_anywhere(tmp_path, caplog.text, out, err)
