"""The runner against a real HTTP server on 127.0.0.1: retries, backoff, refusals, the budget cap."""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from scripted_server import Answer, paid_config, scripted, tiny_png

from bench.cli.run import _generate, execute_run, prepare
from bench.config import RunnerSettings
from bench.limits import Budget, Clock, CostKey
from bench.runner import Runner, RunSummary, backoff_delay_s
from bench.store import RunStore

KEY = "sk-test-0123456789abcdef"


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T2I_TEST_PAID_KEY", KEY)


def records(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "records.parquet")


def test_429_with_retry_after_then_success(bench_cfg: Any, tmp_path: Path) -> None:
    limited = Answer(
        429, {"Retry-After": "0.4"}, {"error": {"message": "slow down", "code": "rate_limit_exceeded"}}
    )
    with scripted([limited]) as (url, script):
        cfg = paid_config(bench_cfg, url)
        cfg["runner"]["backoff_max_s"] = 1.0  # Retry-After is honoured up to backoff_max_s
        assert execute_run(cfg, tmp_path / "run") == 0
    assert len(script.hits) == 2
    assert script.hits[1] - script.hits[0] >= 0.4  # Retry-After was honoured
    row = records(tmp_path / "run").iloc[0]
    assert row.status == "ok" and row.attempts == 2
    assert row.revised_prompt == "revised"
    assert script.auth_headers[0] == f"Bearer {KEY}"


def test_5xx_backs_off_exponentially_then_gives_up(bench_cfg: Any, tmp_path: Path) -> None:
    broken = Answer(503, {}, {"error": {"message": "overloaded"}})
    with scripted([], default=broken) as (url, script):
        cfg = paid_config(bench_cfg, url)
        cfg["runner"]["max_attempts"] = 3
        assert execute_run(cfg, tmp_path / "run") == 1  # no request succeeded
    assert len(script.hits) == 3
    row = records(tmp_path / "run").iloc[0]
    assert row.status == "error" and row.error_type == "server" and row.attempts == 3
    assert row.http_status == 503
    assert math.isnan(row.cost_usd) and row.cost_source == "unknown"


@pytest.mark.parametrize(
    ("answer", "status", "error_type"),
    [
        (
            Answer(400, {}, {"error": {"message": "bad size", "code": "invalid_parameter"}}),
            "error",
            "invalid_request",
        ),
        (
            Answer(400, {}, {"error": {"message": "blocked", "code": "content_policy_violation"}}),
            "refused",
            "refused",
        ),
        (Answer(401, {}, {"error": {"message": f"bad key {KEY}"}}), "error", "auth"),
    ],
)
def test_no_retry_on_refusal_or_invalid_request(
    answer: Answer, status: str, error_type: str, bench_cfg: Any, tmp_path: Path
) -> None:
    with scripted([], default=answer) as (url, script):
        # A refusal is an answer (exit 0); a run whose only request failed exits 1.
        assert execute_run(paid_config(bench_cfg, url), tmp_path / "run") == (status == "error")
    assert len(script.hits) == 1
    row = records(tmp_path / "run").iloc[0]
    assert (row.status, row.error_type, row.attempts) == (status, error_type, 1)
    assert KEY not in row.error_message  # an echoed key is redacted


def test_budget_cap_counts_requests_in_flight(bench_cfg: Any, tmp_path: Path) -> None:
    slow_ok = Answer(200, body={"data": [{"b64_json": tiny_png()}]}, delay_s=0.3)
    with scripted([], default=slow_ok) as (url, script):
        cfg = paid_config(bench_cfg, url, "prompts.n=6")
        cfg["providers"]["paid"]["concurrency"] = 6
        cfg["prices"]["entries"].append(
            {
                "provider": "paid",
                "model": "dall-e-3",
                "unit": "image",
                "usd": 0.04,
                "effective_date": "2026-01-01",
                "source_url": "test",
            }
        )
        cfg["max_cost_usd"] = 0.1
        assert execute_run(cfg, tmp_path / "run") == 0
    df = records(tmp_path / "run")
    # 6 could run at once, but only 2 fit under $0.10 at $0.04 each, counting those in flight.
    assert len(script.hits) == 2
    assert (df.status == "ok").sum() == 2 and (df.status == "skipped").sum() == 4
    assert df.loc[df.status == "ok", "cost_usd"].sum() <= 0.1
    assert set(df.loc[df.status == "ok", "cost_source"]) == {"price_table"}
    assert set(df.loc[df.status == "skipped", "error_type"]) == {"budget"}

    # A re-run with a larger cap sends exactly the skipped ones.
    with scripted([], default=slow_ok) as (url, script):
        cfg["providers"]["paid"]["base_url"] = url
        cfg["max_cost_usd"] = 1.0
        assert execute_run(cfg, tmp_path / "run") == 0
    assert len(script.hits) == 4
    assert (records(tmp_path / "run").status == "ok").sum() == 6


def test_budget_probes_a_target_of_unknown_cost_then_stops_it() -> None:
    budget = Budget(1.0)
    assert budget.try_reserve("t", None) == (True, "")
    assert budget.try_reserve("t", None) == (False, "wait")  # one probe at a time
    budget.charge(CostKey("t", "{}", "{}", None), None, float("nan"), reported=False)
    allowed, why = budget.try_reserve("t", None)
    assert not allowed and "cannot be enforced" in why


def test_backoff_grows_and_honours_retry_after() -> None:
    settings = RunnerSettings(backoff_base_s=1.0, backoff_max_s=8.0)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (5, 8.0), (9, 8.0)]:
        delays = [backoff_delay_s(attempt, settings, None) for _ in range(200)]
        assert min(delays) >= ceiling / 2 and max(delays) <= ceiling
    assert 5.0 <= backoff_delay_s(1, settings, 5.0) <= 5.5


class FakeClock:
    """Virtual time for the rate limiter: sleeping advances it at once (no wall-clock in the test)."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(0)


def run_in_process(cfg: dict[str, Any], store: RunStore, clock: Clock | None = None) -> RunSummary:
    """The runner on this config and store, without the CLI around it."""
    config, providers, plan = prepare(cfg, require_keys=True)
    runner = Runner(
        run_id="r",
        providers=providers,
        store=store,
        settings=config.runner,
        prices=config.prices,
        max_cost_usd=config.max_cost_usd,
        clock=clock,
    )
    return asyncio.run(_generate(runner, plan, providers))


def test_requests_per_minute_spaces_request_starts(bench_cfg: Any, tmp_path: Path) -> None:
    clock = FakeClock()
    with scripted([]) as (url, script):
        script.clock = clock.now
        cfg = paid_config(bench_cfg, url, "prompts.n=4")
        cfg["providers"]["paid"].update(concurrency=4, requests_per_minute=300)  # one start per 0.2 s
        summary = run_in_process(cfg, RunStore(tmp_path / "run"), clock)
    assert summary.ok == 4 and len(script.hits) == 4
    # The i-th request cannot reach the server before 0.2*i s of (virtual) time passed.
    # Concurrency alone (4) would have sent all four at virtual time 0.
    for i, hit in enumerate(sorted(script.hits)):
        assert hit >= 0.2 * i - 1e-9
    assert clock.t == pytest.approx(0.6)  # exactly three waits of one interval each
