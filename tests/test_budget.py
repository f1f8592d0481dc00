"""The spend cap holds in money the emulator actually billed: across resumes, against a stale
price table, over mixed sizes, and when a billed generation fails afterwards.

Every test runs `bench run` (in process) against the AIML API emulator on 127.0.0.1, which
reports $0.003 per megapixel and counts the jobs it billed (EmulatorState.billed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cli.main import main
from bench.emulators import openai_compat
from bench.limits import Budget, CostEstimator, CostKey

MP_1024 = 1024 * 1024 / 1e6
COST_1024 = 0.003 * MP_1024  # what the emulator reports and bills for a 1024x1024 image
COST_512 = 0.003 * 512 * 512 / 1e6
TARGET = "aimlapi:flux/schnell"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def bench_run(url: str, run_dir: Path, *extra: str) -> int:
    return main(
        [
            "run",
            f"targets=[{TARGET}]",
            f"providers.aimlapi.base_url={url}",
            f"providers.aimlapi.api_key_env={KEY_ENV}",
            "providers.aimlapi.concurrency=4",
            "sweep=quick",
            "metrics=off",
            "report.write=false",
            "report.print_summary=false",
            "runner.progress=off",
            "runner.backoff_base_s=0.01",
            f"results_dir={run_dir.parent}",
            f"run_name={run_dir.name}",
            *extra,
        ]
    )


def records(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "records.parquet")


def aiml(**kw: Any) -> Any:
    return openai_compat.create_app(knobs(**kw), profile="aimlapi")


def test_resuming_with_the_same_cap_does_not_spend_it_again(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    cap = 0.01  # three 1024² images ($0.00315 each) fit, a fourth does not
    with emulator(aiml()) as (url, emu):
        for _ in range(3):
            assert bench_run(url, run_dir, "prompts.n=10", f"max_cost_usd={cap}") == 0
        billed_same_cap = emu.billed_usd()
        assert len(emu.billed) == 3
        assert billed_same_cap <= cap
        # A larger cap covers the folder's whole history too: $0.02 in all, not $0.02 more.
        assert bench_run(url, run_dir, "prompts.n=10", "max_cost_usd=0.02") == 0
        assert len(emu.billed) == 6
        assert emu.billed_usd() <= 0.02
    df = records(run_dir)
    assert (df.status == "ok").sum() == 6 and (df.status == "skipped").sum() == 4
    assert df.loc[df.status == "ok", "cost_usd"].sum() == pytest.approx(emu.billed_usd())


def test_estimate_shows_what_the_cap_leaves_in_the_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "r"
    with emulator(aiml()) as (url, emu):
        assert bench_run(url, run_dir, "prompts.n=10", "max_cost_usd=0.01") == 0
    capsys.readouterr()
    code = main(
        [
            "estimate",
            f"targets=[{TARGET}]",
            "sweep=quick",
            "prompts.n=10",
            "max_cost_usd=0.02",
            f"results_dir={tmp_path}",
            "run_name=r",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    spent = emu.billed_usd()
    assert f"${spent:.4f} spent so far" in out
    assert f"${spent:.4f} spent, ${0.02 - spent:.4f} left" in out


def test_reported_costs_beat_a_stale_price_table(tmp_path: Path, bench_cfg: Any) -> None:
    stale = (
        "prices.entries=[{provider: aimlapi, model: flux/schnell, unit: image, usd: 0.0005,"
        " effective_date: '2020-01-01', source_url: stale}]"
    )
    with emulator(aiml(inference_s=(0.02, 0.02))) as (url, emu):
        code = bench_run(url, tmp_path / "r", "prompts.n=10", "max_cost_usd=0.01", stale)
        assert code == 0
    # At the table's $0.0005 all ten ($0.0315) would have gone out, four at a time.
    assert emu.billed_usd() <= 0.01
    assert len(emu.billed) == 3


def test_a_small_probe_does_not_price_larger_sizes(tmp_path: Path) -> None:
    with emulator(aiml()) as (url, emu):
        code = bench_run(
            url,
            tmp_path / "r",
            "prompts.n=10",
            "sweep.sizes=[512x512,1024x1024]",
            "max_cost_usd=0.012",
        )
        assert code == 0
    assert emu.billed_usd() <= 0.012
    sizes = sorted((job.width, job.height) for job in emu.billed.values())
    assert (1024, 1024) in sizes and (512, 512) in sizes
    # Not a cent left on the table either: the next request in line would not have fitted.
    assert emu.billed_usd() > 0.012 - COST_1024


@pytest.mark.parametrize(
    ("fault", "error_type"), [("bad_image", "malformed_response"), ("expired_url", "download")]
)
def test_a_billed_generation_that_fails_counts_its_cost(tmp_path: Path, fault: str, error_type: str) -> None:
    # Every generation is billed, then fails: its bytes do not decode, or its URL answers 404.
    fast_downloads = [
        "+providers.aimlapi.options.download_attempts=2",
        "+providers.aimlapi.options.download_backoff_s=0.01",
    ]
    with emulator(aiml(fault=fault)) as (url, emu):
        code = bench_run(url, tmp_path / "r", "prompts.n=10", "max_cost_usd=0.01", *fast_downloads)
        assert code == 1  # nothing succeeded
    assert len(emu.billed) == 3 and emu.billed_usd() <= 0.01
    df = records(tmp_path / "r")
    failed = df[df.status == "error"]
    assert len(failed) == 3 and set(failed.error_type) == {error_type}
    assert (failed.attempts == 1).all()  # a billed failure is never sent again
    assert failed.cost_usd.sum() == pytest.approx(emu.billed_usd())
    assert set(failed.cost_source) == {"reported"}  # the answer said what the generation cost


def test_estimate_prefers_the_latest_report_at_the_same_setting_then_scales() -> None:
    est = CostEstimator()
    small = CostKey("t", '{"size":"512"}', "{}", 0.25)
    large = CostKey("t", '{"size":"1024"}', "{}", 1.0)
    assert est.estimate(large, 0.01) == 0.01  # nothing reported: the price table
    est.observe(small, 0.002, None)
    assert est.estimate(small, 0.01) == 0.002  # reported at this setting beats the table
    assert est.estimate(large, None) == pytest.approx(0.008)  # scaled by megapixels
    assert est.estimate(large, 0.05) == 0.05  # never below the table (it may be per image)
    est.observe(small, 0.003, None)
    assert est.estimate(small, None) == 0.003  # the most recent report wins
    other = CostKey("t", '{"steps":8}', '{"steps":8}', None)
    assert est.estimate(other, None) == 0.003  # no size to scale by: the target's latest report
    assert est.estimate(CostKey("u", "{}", "{}", None), None) is None  # nothing known: probe


def test_budget_waits_for_work_in_flight_and_probes_a_new_target_alone() -> None:
    budget = Budget(1.0, spent_usd=0.5)
    key = CostKey("t", "{}", "{}", None)
    assert budget.try_reserve("t", 0.2) == (True, "")  # the first request of a target: a probe
    assert budget.try_reserve("t", 0.2) == (False, "wait")  # alone until it reports
    budget.charge(key, 0.2, 0.3, reported=True)
    assert budget.spent_usd == pytest.approx(0.8)
    assert budget.try_reserve("t", 0.15) == (True, "")
    assert budget.try_reserve("t", 0.15) == (False, "wait")  # fits only if the one in flight is cheaper
    budget.release("t", 0.15)  # it failed unbilled
    ok, why = budget.try_reserve("t", 0.25)
    assert not ok and "max_cost_usd=1 reached" in why
