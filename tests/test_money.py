"""Money leftovers (issue 19 §4, issue 21 defect 4), counted at emulators on 127.0.0.1.

- A billed failure (the provider made and billed the image, the download or decode failed) is
  final: resumes do not buy it again; `bench run --retry-billed` does, within the cap.
- Per-megapixel prices follow the provider's billing rule from the price data (fal rounds each
  image up to a whole megapixel), and a first request at a size whose estimate is only scaled
  from another size goes alone.
- A target nobody can price is probed once per run folder, then refused with the fix named.
- A price published in a unit bench cannot count ("compute seconds") is warned about once and
  named in the records; a pricing 404 is not "no such model".
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
import yaml
from _provider_harness import KEY, KEY_ENV, emulator, knobs
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from bench.catalog.discovery import CatalogError, FetchContext, fal_price
from bench.cli import run as run_module
from bench.cli.hydra_config import compose_config
from bench.cli.main import main
from bench.cli.run import execute_run
from bench.emulators import fal, openai_compat, replicate
from bench.emulators.common import EmulatorState, Knobs
from bench.emulators.serve import running
from bench.limits import Budget, CostKey
from bench.prices import PriceTable
from bench.providers.base import ProviderSettings
from bench.spend import folder_spend
from bench.store import RunStore

MEGAPIXEL_PX = 1024 * 1024  # fal's billed megapixel (configs/prices/default.yaml billing_rules)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def overrides(target: str, url: str, run_dir: Path, *extra: str) -> list[str]:
    provider = target.split(":", 1)[0]
    return [
        f"targets=[{target}]",
        f"providers.{provider}.base_url={url}",
        f"providers.{provider}.api_key_env={KEY_ENV}",
        f"providers.{provider}.poll_interval_s=0.01",
        f"+providers.{provider}.options.download_attempts=2",
        f"+providers.{provider}.options.download_backoff_s=0.01",
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


def bench_run(target: str, url: str, run_dir: Path, *extra: str) -> int:
    """`bench run` with these overrides, composed once per distinct set (Hydra takes ~1 s a time)."""
    key = tuple(overrides(target, url, run_dir, *extra))
    if key not in _composed:
        _composed[key] = compose_config(list(key))
    return execute_run(copy.deepcopy(_composed[key]), run_dir)


_composed: dict[tuple[str, ...], dict[str, Any]] = {}


def records(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "records.parquet")


def aiml(**kw: Any) -> Any:
    return openai_compat.create_app(knobs(**kw), profile="aimlapi")


def fal_bill(emu: EmulatorState) -> float:
    return sum(fal.billed_usd(job) for job in emu.billed.values())


# provider -> (target, emulator, what the provider billed for the jobs it made)
PROVIDERS: dict[str, tuple[str, Callable[[Knobs], Any], Callable[[EmulatorState], float]]] = {
    "aimlapi": (
        "aimlapi:flux/schnell",
        lambda k: openai_compat.create_app(k, profile="aimlapi"),
        EmulatorState.billed_usd,
    ),
    "fal": ("fal:fal-ai/flux/schnell", fal.create_app, fal_bill),
    # Replicate reports no money; the price table's $0.003 per image is what it bills.
    "replicate": (
        "replicate:black-forest-labs/flux-schnell",
        replicate.create_app,
        lambda e: 0.003 * len(e.billed),
    ),
}


@pytest.mark.parametrize(
    ("provider", "fault"),
    [("aimlapi", "expired_url"), ("fal", "bad_image"), ("replicate", "expired_url")],
)
def test_billed_failures_are_not_bought_again_on_resume(tmp_path: Path, provider: str, fault: str) -> None:
    target, app, billed_usd = PROVIDERS[provider]
    run_dir, cap = tmp_path / "r", 0.05
    with emulator(app(knobs(fault=fault))) as (url, emu):
        for _ in range(3):
            code = bench_run(target, url, run_dir, "prompts.n=4", f"max_cost_usd={cap}")
            assert code in (0, 1)
            assert billed_usd(emu) <= cap
            assert records(run_dir).cost_usd.sum() <= cap
        assert emu.submissions == 4  # 4 requests, 3 runs: each generation bought once
    df = records(run_dir)
    assert len(df) == 4 and (df.status == "error").all() and df.billed.all()
    assert df.cost_usd.sum() == pytest.approx(billed_usd(emu))


def test_retry_billed_buys_them_again_within_the_cap(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bench.runner")
    target, app, billed_usd = PROVIDERS["aimlapi"]
    run_dir = tmp_path / "r"
    one = 0.003 * MEGAPIXEL_PX / 1e6  # what the emulator bills a 1024x1024 image
    with emulator(app(knobs(fault="expired_url"))) as (url, emu):
        assert bench_run(target, url, run_dir, "prompts.n=4", "max_cost_usd=0.05") == 1
        assert bench_run(target, url, run_dir, "prompts.n=4", "max_cost_usd=0.05") in (0, 1)
        assert emu.submissions == 4
        assert (
            "4 requests were billed but their images could not be had; they are not sent again" in caplog.text
        )
        # Asked for: sent again, and charged against the folder's cap ($0.0126 spent + 2.5 more).
        cap = 4 * one + 2.5 * one
        code = main(
            ["run", "--retry-billed", *overrides(target, url, run_dir, "prompts.n=4", f"max_cost_usd={cap}")]
        )
        assert code in (0, 1)
        assert emu.submissions == 6  # two fit under the cap, the third would pass it
        assert billed_usd(emu) <= cap
    assert folder_spend(RunStore(run_dir)).spent_usd == pytest.approx(billed_usd(emu))
    # The two the cap kept back are still billed failures: a plain resume does not send them.
    with emulator(app(knobs(fault="expired_url"))) as (url, emu):
        assert bench_run(target, url, run_dir, "prompts.n=4", "max_cost_usd=1") in (0, 1)
        assert emu.submissions == 0


def test_a_size_priced_only_by_scaling_is_probed_alone(tmp_path: Path) -> None:
    # The emulator reports costs the way fal bills: whole megapixels, rounded up per image.
    run_dir, cap = tmp_path / "r", 0.0075
    with emulator(aiml(inference_s=(0.2, 0.2), cost_round_up_px=MEGAPIXEL_PX)) as (url, emu):
        target = "aimlapi:flux/schnell"
        assert bench_run(target, url, run_dir, "prompts.n=1", f"max_cost_usd={cap}") == 0
        assert emu.billed_usd() == pytest.approx(0.003)  # one 1024x1024 answer, reported
        # Two 512x512 requests: scaled from 1024x1024 the estimate is $0.00075 each; billed $0.003.
        code = bench_run(target, url, run_dir, "prompts.n=2", "sweep.sizes=[512x512]", f"max_cost_usd={cap}")
        assert code == 0
        assert emu.peak_active[(512, 512)] == 1  # never two at once on a scaled estimate
        assert emu.billed_usd() <= cap  # the probe's report stopped the second one
        assert len(emu.billed) == 2
    df = records(run_dir)
    small = df[(df.width == 512) & (df.status == "ok")]
    assert len(small) == 1 and small.cost_usd.iloc[0] == pytest.approx(0.003)
    assert df.cost_usd.sum() == pytest.approx(emu.billed_usd())


def test_fal_megapixel_prices_round_up_per_image(tmp_path: Path) -> None:
    run_dir, cap = tmp_path / "r", 0.2
    # Images delivered at the size asked for (up to 512 px a side here), priced from fal's pricing API.
    with emulator(fal.create_app(knobs(max_side_px=512))) as (url, emu):
        code = bench_run(
            "fal:fal-ai/flux/dev",
            url,
            run_dir,
            "prompts.n=2",
            "sweep.sizes=[512x512,1024x1024]",
            f"max_cost_usd={cap}",
        )
        assert code == 0
        bills = {(job.width, job.height): fal.billed_usd(job) for job in emu.billed.values()}
    assert bills[(512, 512)] == pytest.approx(0.025)  # fal bills a 512x512 image a whole megapixel
    df = records(run_dir)
    assert (df.status == "ok").all() and len(df) == 4
    for row in df.itertuples():
        assert row.cost_usd == pytest.approx(bills[(int(row.width), int(row.height))])
    assert set(df.price_unit) == {"megapixel"}
    assert set(df.cost_source) == {"price_api"}
    assert df.price_rule.str.contains("rounded up").all()
    assert df.cost_usd.sum() == pytest.approx(fal_bill(emu)) and fal_bill(emu) <= cap
    used = yaml.safe_load((run_dir / "config.yaml").read_text())["catalog_used"]["fal:fal-ai/flux/dev"]
    assert used["live_price"]["unit"] == "megapixel" and "rounded up" in used["live_price"]["rule"]


def test_billing_rules_come_from_the_price_data() -> None:
    table = PriceTable.from_prices_config(
        {
            "entries": [
                {
                    "provider": "x",
                    "model": "m",
                    "unit": "megapixel",
                    "usd": 0.01,
                    "effective_date": "d",
                    "source_url": "u",
                },
                {
                    "provider": "y",
                    "model": "m",
                    "unit": "megapixel",
                    "usd": 0.01,
                    "effective_date": "d",
                    "source_url": "u",
                },
            ],
            "billing_rules": [
                {"provider": "x", "unit": "megapixel", "round": "up", "megapixel_px": 1_000_000, "step": 0.5}
            ],
        }
    )
    rounded, linear = table.lookup("x", "m"), table.lookup("y", "m")
    assert rounded is not None and linear is not None
    mp = 0.3 * 0.7  # a 0.21 MP image
    assert rounded.cost_usd(n_images=2, megapixels=mp, seconds=None) == pytest.approx(0.01 * 0.5 * 2)
    assert linear.cost_usd(n_images=2, megapixels=mp, seconds=None) == pytest.approx(0.01 * mp * 2)
    assert rounded.cost_usd(n_images=1, megapixels=1.0, seconds=None) == pytest.approx(
        0.01
    )  # exact: no extra step


def test_a_target_nobody_can_price_is_probed_once_then_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, run_dir = "aimlapi:flux/schnell", tmp_path / "r"  # no price entry; answers carry no cost
    with emulator(aiml(report_cost=False)) as (url, emu):
        assert bench_run(target, url, run_dir, "prompts.n=4", "max_cost_usd=0.05") == 1
        assert emu.submissions == 1
        err = capsys.readouterr().err
        assert "add a price entry under prices.entries" in err
        assert "{provider: aimlapi, model: flux/schnell, unit: image, usd: PRICE" in err
        assert bench_run(target, url, run_dir, "prompts.n=4", "max_cost_usd=0.05") == 1
        assert emu.submissions == 1  # the folder's billed probe counts: not probed again
        refused = [
            line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: refused:")
        ]
        assert len(refused) == 1 and "prices.entries" in refused[0]
        # The fix named works: with a price the rest go out, under the cap.
        entry = (
            "+prices.entries=[{provider: aimlapi, model: flux/schnell, unit: image, usd: 0.004,"
            " effective_date: '2026-12-01', source_url: test}]"
        )
        assert bench_run(target, url, run_dir, "prompts.n=4", "max_cost_usd=0.05", entry) == 0
        assert emu.submissions == 4
    df = records(run_dir)
    assert (df.status == "ok").sum() == 4


def fal_with_pricing(pricing: Callable[[Request], Response]) -> Starlette:
    """The fal emulator, with the pricing endpoint answering as `pricing` says."""
    inner = fal.create_app(knobs())

    async def price(request: Request) -> Response:
        inner.state.emu.calls.append(f"GET {request.url.path}")
        return pricing(request)

    app = Starlette(routes=[Route("/v1/models/pricing", price, methods=["GET"]), Mount("/", app=inner)])
    app.state.emu = inner.state.emu
    return app


def compute_seconds(request: Request) -> Response:
    endpoint = request.query_params.get("endpoint_id")
    row = {"endpoint_id": endpoint, "unit_price": 0.00111, "unit": "compute seconds", "currency": "USD"}
    return JSONResponse({"prices": [row], "next_cursor": None, "has_more": False})


def test_a_unit_bench_cannot_price_is_warned_once_and_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_module, "_warned_units", set())  # warned once per process: start afresh
    target = "fal:fal-ai/flux-pro/v1.1"  # shipped schema, no price entry
    with emulator(fal_with_pricing(compute_seconds)) as (url, emu):
        assert bench_run(target, url, tmp_path / "r", "prompts.n=3") == 0
        assert emu.submissions == 3
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "compute seconds" in line and "warning" in line]
    assert len(warnings) == 1 and target in warnings[0] and "prices.entries" in warnings[0]
    df = records(tmp_path / "r")
    assert set(df.price_unit) == {"compute seconds"}
    assert df.cost_usd.isna().all() and set(df.cost_source) == {"unknown"}


def test_a_unit_bench_cannot_price_is_probed_once_under_a_cap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = "fal:fal-ai/flux-pro/v1.1"
    with emulator(fal_with_pricing(compute_seconds)) as (url, emu):
        assert bench_run(target, url, tmp_path / "r", "prompts.n=3", "max_cost_usd=0.05") == 1
        assert emu.submissions == 1
    refused = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bench: refused:")]
    assert len(refused) == 1 and "'compute seconds'" in refused[0]
    df = records(tmp_path / "r")
    assert set(df.loc[df.status == "skipped", "error_type"]) == {"no_price"}


def test_a_pricing_404_is_not_a_missing_model(tmp_path: Path) -> None:
    def no_price(request: Request) -> Response:
        return JSONResponse({"detail": "Pricing not found"}, status_code=404)

    with running(fal_with_pricing(no_price)) as url:
        settings = ProviderSettings(name="fal", base_url=url, api_key_env=KEY_ENV)
        with httpx.Client() as client, pytest.raises(CatalogError) as info:
            fal_price(FetchContext("fal", "fal", settings, client), "fal-ai/flux-pro/v1.1")
    message = str(info.value)
    assert "no such model" not in message
    assert "publishes no price" in message and "404" in message


def test_a_scaled_estimate_probes_its_setting_alone_and_others_go_on() -> None:
    budget = Budget(1.0)
    big = CostKey("t", '{"size":"1024"}', "{}", 1.0)
    small = CostKey("t", '{"size":"512"}', "{}", 0.25)
    other = CostKey("t", '{"size":"768"}', "{}", 0.59)
    budget.charge(big, None, 0.004, reported=True)  # one reported answer at 1024
    estimate, basis = budget.estimate_with_basis(small, None)
    assert basis == "scaled" and estimate == pytest.approx(0.001)
    assert budget.try_reserve("t", estimate, probe_setting=small.setting) == (True, "")
    assert budget.try_reserve("t", estimate, probe_setting=small.setting) == (False, "wait")
    assert budget.try_reserve("t", 0.004) == (True, "")  # a known setting is not held up
    assert budget.try_reserve("t", 0.002, probe_setting=other.setting) == (True, "")  # nor another size
    budget.charge(small, estimate, 0.004, reported=True)  # billed a whole unit, not a quarter
    assert budget.estimate_with_basis(small, None) == (0.004, "reported")
    assert budget.try_reserve("t", 0.004) == (True, "")
