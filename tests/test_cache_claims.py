"""One cache for many jobs: with a shared cache.dir, a request is paid once even when two jobs ask at once.

Two runners (each with its own cache object and store, sharing only the cache folder,
as two nodes would) run at the same time against one emulator on 127.0.0.1, whose
`submissions` counts what was sent. Stale claims are tested on an injected clock.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from _provider_harness import KEY, KEY_ENV, emulator, knobs

from bench.cache import ResponseCache
from bench.cli.run import _generate, prepare
from bench.emulators import openai_compat
from bench.runner import Runner, RunSummary
from bench.store import RunStore


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


class VirtualClock:
    """Claim waits on virtual time: each sleep advances it by what was asked, at once (a real
    event-loop turn, and `real_s` of wall time so that other jobs can progress meanwhile)."""

    def __init__(self, real_s: float = 0.0) -> None:
        self.t = 0.0
        self.real_s = real_s

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.t += seconds
        await asyncio.sleep(self.real_s)


def overrides(url: str, shared: Path, results: Path, *extra: str) -> list[str]:
    return [
        "targets=[openai:gpt-image-2]",
        f"providers.openai.base_url={url}",
        f"providers.openai.api_key_env={KEY_ENV}",
        "providers.openai.concurrency=4",
        "sweep=quick",
        "metrics=off",
        "report.write=false",
        "runner.progress=off",
        f"results_dir={results}",
        f"cache.dir={shared}",
        *extra,
    ]


class Job:
    """One job of a sweep: a runner over its own run folder."""

    def __init__(self, bench_cfg: Any, args: list[str], run_dir: Path, clock: VirtualClock | None = None):
        config, self.providers, self.plan = prepare(bench_cfg(args), require_keys=True)
        self.store = RunStore(run_dir)
        self.cache = ResponseCache(config.cache)
        timing = {"claim_clock": clock} if clock is not None else {}
        self.runner = Runner(
            run_id=run_dir.name,
            providers=self.providers,
            store=self.store,
            settings=config.runner,
            prices=config.prices,
            max_cost_usd=None,
            cache=self.cache,
            **timing,
        )

    async def run(self) -> RunSummary:
        summary = await _generate(self.runner, self.plan, self.providers)
        self.store.write_records({"run_id": self.store.run_dir.name})
        return summary

    def records(self) -> pd.DataFrame:
        return pd.read_parquet(self.store.run_dir / "records.parquet")


def run_together(*jobs: Job) -> list[RunSummary]:
    async def go() -> list[RunSummary]:
        return list(await asyncio.gather(*(job.run() for job in jobs)))

    return asyncio.run(go())


def test_two_jobs_asking_the_same_requests_at_once_pay_for_each_once(bench_cfg: Any, tmp_path: Path) -> None:
    shared, results = tmp_path / "shared-cache", tmp_path / "results"
    n = 4
    # Each answer takes 0.3 s: both jobs have asked for every request before any answer exists.
    with emulator(openai_compat.create_app(knobs(inference_s=(0.3, 0.3)), profile="openai")) as (url, emu):
        args = overrides(url, shared, results, f"prompts.n={n}")
        a = Job(bench_cfg, args, results / "a")
        b = Job(bench_cfg, args, results / "b")
        summaries = run_together(a, b)
        assert emu.submissions == n  # not 2n: each distinct request was paid once
    assert [s.ok for s in summaries] == [n, n]
    both = pd.concat([a.records(), b.records()], ignore_index=True)
    assert (both.status == "ok").all()
    for _, pair in both.groupby("request_key"):
        assert len(pair) == 2 and pair.cached.sum() == 1  # one job paid, the other replayed its answer
        payer, replay = pair[~pair.cached].iloc[0], pair[pair.cached].iloc[0]
        assert replay.cache_origin_run == payer.run_id and replay.image_sha256 == payer.image_sha256
    assert not list(shared.glob("claims/*/*.claim"))  # every claim was released


def test_an_errored_claimant_releases_and_the_waiter_sends_itself(bench_cfg: Any, tmp_path: Path) -> None:
    shared, results = tmp_path / "shared-cache", tmp_path / "results"
    # The first submission fails (500, no retries); errors are never cached.
    app = openai_compat.create_app(
        knobs(fault="server_error", fault_first=1, inference_s=(0.3, 0.3)), profile="openai"
    )
    with emulator(app) as (url, emu):
        args = overrides(
            url, shared, results, "prompts.n=1", "runner.max_attempts=1", "cache.claim_poll=20ms"
        )
        clocks = VirtualClock(real_s=0.02), VirtualClock(real_s=0.02)
        a = Job(bench_cfg, args, results / "a", clocks[0])
        b = Job(bench_cfg, args, results / "b", clocks[1])
        run_together(a, b)
        assert emu.submissions == 2  # the claimant's (error), then the waiter's own
    outcomes = sorted([a.records().status.iloc[0], b.records().status.iloc[0]])
    assert outcomes == ["error", "ok"]
    ok = pd.concat([a.records(), b.records()]).query("status == 'ok'").iloc[0]
    assert not ok.cached  # the waiter sent it itself, after the release ...
    # ... not after taking the claim over as stale (that needs 2 minutes of the waiter's clock).
    assert max(c.t for c in clocks) < 120
    assert not list(shared.glob("claims/*/*.claim"))


def test_a_stale_claim_is_taken_over_after_claim_stale_after_on_the_waiters_clock(
    bench_cfg: Any, tmp_path: Path
) -> None:
    from bench.cache_claims import Claims

    shared, results = tmp_path / "shared-cache", tmp_path / "results"
    clock = VirtualClock()
    with emulator(openai_compat.create_app(knobs(), profile="openai")) as (url, emu):
        args = overrides(
            url, shared, results, "prompts.n=1", "cache.claim_poll=0.5s", "cache.claim_stale_after=2m"
        )
        job = Job(bench_cfg, args, results / "a", clock)
        planned = next(job.plan.jobs())
        scope = job.providers["openai"].cache_scope(planned.spec)
        assert scope is not None
        # A job on another node claimed this request and died: its claim stays behind, untouched.
        dead = Claims(shared, owner="dead-run").try_claim(job.cache.name(planned.key, scope))
        assert dead is not None
        run_together(job)
        assert emu.submissions == 1
    assert 120 <= clock.t <= 120.5 + 1e-9  # waited exactly claim_stale_after (+ one poll), then took over
    row = job.records().iloc[0]
    assert row.status == "ok" and not row.cached
    assert not dead.path.exists()


def test_a_claim_is_exclusive_refreshed_by_its_holder_and_released_only_by_it(tmp_path: Path) -> None:
    from bench.cache_claims import Claims

    mine, theirs = Claims(tmp_path, owner="a"), Claims(tmp_path, owner="b")
    claim = mine.try_claim("ab" * 20)
    assert claim is not None and theirs.try_claim("ab" * 20) is None
    body = json.loads(claim.path.read_text())
    assert body["run"] == "a" and body["token"] == claim.token
    seen = theirs.observe("ab" * 20)
    mine.refresh()  # the heartbeat: a waiter sees the claim change, so it is alive
    assert theirs.observe("ab" * 20) not in (None, seen)
    # A takeover decided on an old look must not remove a claim made since: it is put back.
    theirs.take_over("ab" * 20, ("an-old-token", 0))
    assert claim.path.exists() and theirs.observe("ab" * 20) is not None
    mine.release(claim)
    assert theirs.observe("ab" * 20) is None
    assert theirs.try_claim("ab" * 20) is not None


@pytest.mark.parametrize(
    ("key", "value"), [("cache.claim_poll", "soon"), ("cache.claim_stale_after", "never")]
)
def test_bad_claim_settings_are_config_errors(bench_cfg: Any, tmp_path: Path, key: str, value: str) -> None:
    from bench.config import parse_config
    from bench.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        parse_config(bench_cfg([f"{key}={value}", f"results_dir={tmp_path}"]))
    assert key in str(info.value)
